//! The signed-out page: shown after RP-initiated logout, a sign-out from the account
//! page, or the way back from an upstream's logout.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use askama::Template;

use super::render;
use crate::http::interaction::redirect;
use crate::http::paths::Links;

#[derive(Template)]
#[template(path = "logged_out.html")]
pub(super) struct LoggedOutPage<'a> {
    pub(super) ui: crate::http::ui::Ui,
    pub(super) links: Links,
    pub(super) signed_out: bool,
    /// Front-Channel Logout §3: each client's logout URI, loaded in a hidden iframe.
    pub(super) frames: &'a [String],
    /// Where the page goes once the frames have loaded (the post-logout redirect).
    pub(super) continue_to: Option<&'a str>,
    /// Why this browser was signed out, when it did not ask to be (a password change).
    pub(super) message: Option<&'a str>,
}

/// The signed-out page: it loads the front-channel frames, then continues to `target`
/// (by its script, or the user's click). Without frames the browser is redirected at once.
pub fn signed_out_page(
    base: &str,
    frames: &[String],
    target: Option<&str>,
    message: Option<&str>,
) -> HttpResponse {
    let frames: Vec<String> = frames
        .iter()
        .filter(|f| crate::http::csp::frame_source(f).is_some())
        .cloned()
        .collect();
    if frames.is_empty()
        && let Some(target) = target
    {
        return redirect(StatusCode::SEE_OTHER, target);
    }
    let mut response = render(
        StatusCode::OK,
        &LoggedOutPage {
            ui: crate::http::ui::Ui::current(),
            links: Links::new(base),
            signed_out: true,
            frames: &frames,
            continue_to: target,
            message,
        },
    );
    crate::http::csp::allow_frames(&mut response, &frames, target.is_some());
    response
}
