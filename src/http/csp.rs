//! Widening a page's Content-Security-Policy for what that one page needs (frames, a
//! script, a form's destination), and nothing more.

/// The CSP source that allows exactly the frame `uri` (scheme, host, port and path; CSP
/// ignores the query), or `None` for a URI no source can name (a frame we then do not
/// load at all).
pub fn frame_source(uri: &str) -> Option<String> {
    let url = url::Url::parse(uri).ok()?;
    if !matches!(url.scheme(), "https" | "http") {
        return None;
    }
    let source = format!("{}{}", url.origin().ascii_serialization(), url.path());
    // ';' and ',' would end the directive or the policy.
    (!source.contains([';', ',', ' '])).then_some(source)
}

/// Lets a page load `frames` (Front-Channel Logout iframes) and nothing more, and with
/// `script` our own script that continues once they have loaded.
pub fn allow_frames(response: &mut actix_web::HttpResponse, frames: &[String], script: bool) {
    let sources: Vec<String> = frames.iter().filter_map(|f| frame_source(f)).collect();
    if sources.is_empty() {
        return;
    }
    rewrite_csp(response, |policy| {
        let mut widened = format!("{policy}; frame-src {}", sources.join(" "));
        if script {
            widened.push_str("; script-src 'self'");
        }
        widened
    });
}

/// Lets a page run `/static/passkey.js` and let it fetch the passkey options and post the
/// answer to its own origin (`fetch` falls under `connect-src`, which `default-src 'none'`
/// closes). Nothing else: no inline script, no other origin.
pub fn allow_passkey_script(response: &mut actix_web::HttpResponse) {
    rewrite_csp(response, |policy| {
        format!("{policy}; script-src 'self'; connect-src 'self'")
    });
}

/// Lets the page run the inline scripts that carry `nonce` (CSP3 `'nonce-…'`), and no
/// other.
pub fn allow_script_nonce(response: &mut actix_web::HttpResponse, nonce: &str) {
    rewrite_csp(response, |policy| {
        format!("{policy}; script-src 'nonce-{nonce}'")
    });
}

/// Replaces the response's Content-Security-Policy by `rewrite` of it (pages only: a
/// response without one is left alone).
fn rewrite_csp(response: &mut actix_web::HttpResponse, rewrite: impl FnOnce(&str) -> String) {
    use actix_web::http::header::{CONTENT_SECURITY_POLICY, HeaderValue};
    let Some(policy) = response
        .headers()
        .get(CONTENT_SECURITY_POLICY)
        .and_then(|v| v.to_str().ok())
    else {
        return;
    };
    if let Ok(value) = HeaderValue::from_str(&rewrite(policy)) {
        response
            .headers_mut()
            .insert(CONTENT_SECURITY_POLICY, value);
    }
}

/// Widens a page's `form-action 'self'` to where its form's submission ends up (the
/// client's `redirect_uri`, a `post_logout_redirect_uri`): Chrome and Safari check the
/// directive against the redirect that follows a submission too, so without it a consent
/// or sign-out page could never send the browser on to the client. An http(s) target
/// adds its origin, a native app's private-use scheme (RFC 8252 §7.1) the scheme.
pub fn allow_form_redirect(response: &mut actix_web::HttpResponse, target: &str) {
    let Ok(url) = url::Url::parse(target) else {
        return;
    };
    let source = match url.origin() {
        origin @ url::Origin::Tuple(..) => origin.ascii_serialization(),
        url::Origin::Opaque(_) => format!("{}:", url.scheme()),
    };
    rewrite_csp(response, |policy| {
        policy.replacen(
            "form-action 'self'",
            &format!("form-action 'self' {source}"),
            1,
        )
    });
}
