//! Where this provider's own pages, the admin console, the admin API, the static files and
//! the metrics are: every path of ours that is not a protocol endpoint (those are
//! `protocol::features`), each written once, here. The routes mount these constants,
//! redirects and `Location`s are built from them, and templates get their links from
//! [`Links`]: a test below fails on a path literal anywhere else in `http` or in
//! `templates/`. The URLs themselves are fixed by CONTRACT.md ("Browser pages", "HTTP").
//!
//! A `{name}` segment is a route parameter (actix's syntax); [`fill`] puts values in.

/// An interaction's login page (`?id=` names the interaction).
pub const LOGIN: &str = "/login";
/// The second step of a sign-in (`?id=` names the interaction): a second factor, the
/// enrolment of one, or a step-up.
pub const SECOND_FACTOR: &str = "/login/factor";
/// A passkey sign-in's ceremony (`static/passkey.js`): its options, then its answer.
pub const PASSKEY_SIGN_IN_OPTIONS: &str = "/login/passkey/options";
pub const PASSKEY_SIGN_IN_FINISH: &str = "/login/passkey/finish";
/// "Forgot your password?": the request form (input `email`).
pub const FORGOT_PASSWORD: &str = "/login/forgot";
/// A password-reset link's page (`?code=`): GET shows it, POST begins the reset.
pub const RESET_PASSWORD: &str = "/login/reset";
/// A reset's new password (`?id=` names the reset, once its second factors passed).
pub const RESET_NEW_PASSWORD: &str = "/login/reset/password";
/// An interaction's consent page (`?id=` names the interaction).
pub const CONSENT: &str = "/consent";
/// RFC 8628 §3.3: the verification URI, where a device's user types its user code.
pub const DEVICE: &str = "/device";
/// Where the RP-initiated logout page (`protocol::features::END_SESSION`) posts the
/// user's answer.
pub const LOGOUT_CONFIRM: &str = "/logout/confirm";
/// Upstream identity providers (issue 24): "Sign in with NAME" posts here (the login
/// page's form), and the upstream sends the browser back to the callback (CONTRACT.md:
/// `{issuer}/upstream/{id}/callback`).
pub const UPSTREAM_START: &str = "/upstream/{id}/start";
pub const UPSTREAM_CALLBACK: &str = "/upstream/{id}/callback";
/// Linking an upstream identity to the account just signed in to: the confirmation
/// (`?proof=`), GET shows it, POST links.
pub const UPSTREAM_LINK: &str = "/upstream/link";
/// Where a link proof begins a local sign-in (POST, from the "no account" page).
pub const UPSTREAM_LINK_SIGN_IN: &str = "/upstream/link/sign-in";
/// The callback the upstream's logout returns to (register it there as a
/// `post_logout_redirect_uri`).
pub const UPSTREAM_LOGGED_OUT: &str = "/upstream/{id}/logged-out";
/// The path the upstream cookies are limited to.
pub const UPSTREAM_COOKIE_PATH: &str = "/upstream/";
/// Prometheus metrics, served on their own listener (`metrics_bind`), not below the issuer.
pub const METRICS: &str = "/metrics";

/// The account page and its forms.
pub mod account {
    pub const HOME: &str = "/account";
    pub const END_SESSION: &str = "/account/sessions/end";
    pub const SIGN_OUT_EVERYWHERE: &str = "/account/sign-out-everywhere";
    pub const WITHDRAW_CONSENT: &str = "/account/consents/withdraw";
    /// Unlinking an upstream identity (issue 24): `csrf`, `issuer`, `subject`.
    pub const UNLINK_UPSTREAM: &str = "/account/upstream/unlink";
    /// Asking for a verification link (`action=verify`) or a change of address
    /// (`email`): each sends a link.
    pub const EMAIL: &str = "/account/email";
    /// An email-verification link's page (`?code=`): GET shows it, POST uses it.
    pub const VERIFY_EMAIL: &str = "/account/verify";
    /// How the account signs in: passkeys, the authenticator app, recovery codes.
    pub const SECURITY: &str = "/account/security";
    /// Adding a passkey (`static/passkey.js`): the ceremony's options, then its answer.
    pub const PASSKEY_OPTIONS: &str = "/account/security/passkey/options";
    pub const PASSKEY_FINISH: &str = "/account/security/passkey/finish";
}

// ---- Sign-up and invitations (issue 23 §4) ----
/// Accounts people make themselves (`signup`): the form, and the pages of the links
/// mailed for it (`?token=`; GET shows, POST acts).
pub mod signup {
    /// "Create an account" (`signup = open`): the form (`?id=` may name the sign-in it
    /// came from).
    pub const FORM: &str = "/signup";
    /// An invitation's link: choose a username and a password.
    pub const INVITATION: &str = "/signup/invitation";
    /// A sign-up's link: verify the address, which creates the account.
    pub const VERIFY: &str = "/signup/verify";
    /// A passkey instead of a password on an invitation's page (`static/passkey.js`):
    /// the ceremony's options, then its answer, which creates the account.
    pub const INVITATION_PASSKEY_OPTIONS: &str = "/signup/invitation/passkey/options";
    pub const INVITATION_PASSKEY_FINISH: &str = "/signup/invitation/passkey/finish";

    /// The absolute URL a mail carries for `token` at `path` (one of the above) under
    /// `issuer`.
    pub fn link(issuer: &str, path: &str, token: &str) -> String {
        format!("{issuer}{path}?token={token}")
    }
}
// ---- end sign-up and invitations ----

/// The files the pages load.
pub mod assets {
    pub const STYLESHEET: &str = "/static/style.css";
    /// The operator's branding (`brand_accent_color`, `brand_stylesheet`), after ours.
    pub const BRAND_STYLESHEET: &str = "/static/brand.css";
    pub const FAVICON: &str = "/static/favicon.svg";
    /// The signed-out page's script: it continues once the front-channel frames loaded.
    pub const FRONTCHANNEL_SCRIPT: &str = "/static/frontchannel.js";
    /// The passkey ceremonies' script (login, second-factor and security pages).
    pub const PASSKEY_SCRIPT: &str = "/static/passkey.js";
}

/// The admin console. Its cookies are limited to `HOME`, so every page of it is below.
pub mod console {
    pub const HOME: &str = "/admin";
    /// The redirect URI of the console's own client registration.
    pub const CALLBACK: &str = "/admin/callback";
    pub const LOGOUT: &str = "/admin/logout";
    pub const USERS: &str = "/admin/users";
    pub const USER: &str = "/admin/users/{id}";
    /// `action`: `enable`, `disable`, `password`, `withdraw`, `delete`, `require_mfa`,
    /// `waive_mfa`, `reset_factors`.
    pub const USER_ACTION: &str = "/admin/users/{id}/{action}";
    pub const END_SESSION: &str = "/admin/sessions/end";
    pub const CLIENTS: &str = "/admin/clients";
    /// `action`: `secret`, `delete`, `require_mfa`, `waive_mfa`.
    pub const CLIENT_ACTION: &str = "/admin/clients/{id}/{action}";
    pub const KEYS: &str = "/admin/keys";
    pub const ROTATE_KEYS: &str = "/admin/keys/rotate";
    pub const AUDIT: &str = "/admin/audit";
    /// The upstream identity providers and their health (issue 24).
    pub const UPSTREAMS: &str = "/admin/upstreams";
    /// The groups (GET), and creating one (POST).
    pub const GROUPS: &str = "/admin/groups";
    /// One group: its members, renaming, deleting, adding a member.
    pub const GROUP: &str = "/admin/groups/{id}";
    /// `action`: `rename`, `delete`, `add_member`, `remove_member`.
    pub const GROUP_ACTION: &str = "/admin/groups/{id}/{action}";
    /// Sending an invitation (POST; the form is on the users page).
    pub const INVITATIONS: &str = "/admin/invitations";
}

/// The admin API: JSON, its errors too (`http::error::answers_json` reads `PREFIX`).
pub mod admin_api {
    pub const PREFIX: &str = "/admin/api";
    pub const USERS: &str = "/admin/api/users";
    pub const USER: &str = "/admin/api/users/{id}";
    pub const USER_PASSWORD: &str = "/admin/api/users/{id}/password";
    pub const USER_SESSIONS: &str = "/admin/api/users/{id}/sessions";
    /// The user's second factors: listed (never a secret), or all removed.
    pub const USER_FACTORS: &str = "/admin/api/users/{id}/factors";
    pub const USER_CONSENTS: &str = "/admin/api/users/{id}/consents";
    pub const USER_CONSENT: &str = "/admin/api/users/{id}/consents/{client_id}";
    pub const SESSION: &str = "/admin/api/sessions/{sid}";
    pub const CLIENTS: &str = "/admin/api/clients";
    pub const CLIENT: &str = "/admin/api/clients/{id}";
    pub const CLIENT_SECRET: &str = "/admin/api/clients/{id}/secret";
    pub const KEYS: &str = "/admin/api/keys";
    /// The upstream identity providers and their health (issue 24).
    pub const UPSTREAMS: &str = "/admin/api/upstreams";
    pub const ROTATE_KEYS: &str = "/admin/api/keys/rotate";
    pub const AUDIT: &str = "/admin/api/audit";
    pub const GROUPS: &str = "/admin/api/groups";
    pub const GROUP: &str = "/admin/api/groups/{id}";
    pub const GROUP_MEMBERS: &str = "/admin/api/groups/{id}/members";
    pub const GROUP_MEMBER: &str = "/admin/api/groups/{id}/members/{user_id}";
    /// Sending an invitation (issue 23 §4).
    pub const INVITATIONS: &str = "/admin/api/invitations";
}

/// Every byte but RFC 3986's unreserved characters (§2.3) is percent-encoded in a filled
/// segment: actix decodes path parameters, so a value written as it is could name
/// another resource (a user id `%76ictim` would reach user `victim`) or another path
/// (`a/b`, `..`).
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `pattern` with its `{name}` parameters replaced, in order, by `values`, each
/// percent-encoded as one path segment (so the route decodes it back to the value);
/// a parameter without a value stays as it was.
pub fn fill(pattern: &str, values: &[&str]) -> String {
    let mut filled = String::with_capacity(pattern.len());
    let mut values = values.iter();
    let mut rest = pattern;
    while let Some((before, parameter)) = rest.split_once('{') {
        filled.push_str(before);
        let (name, after) = parameter.split_once('}').unwrap_or((parameter, ""));
        match values.next() {
            Some(value) => {
                filled.extend(percent_encoding::utf8_percent_encode(value, SEGMENT));
            }
            None => {
                filled.push('{');
                filled.push_str(name);
                filled.push('}');
            }
        }
        rest = after;
    }
    filled.push_str(rest);
    filled
}

/// The registry's paths as a page links to them: below the issuer's path. Every page
/// template gets one (`links`) and writes no path of its own.
#[derive(Clone, Debug)]
pub struct Links {
    /// `Settings::issuer_path`: "" or "/something".
    base: String,
}

impl Links {
    pub fn new(issuer_path: &str) -> Self {
        Self {
            base: issuer_path.to_owned(),
        }
    }

    fn at(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn login(&self) -> String {
        self.at(LOGIN)
    }

    pub fn forgot_password(&self) -> String {
        self.at(FORGOT_PASSWORD)
    }

    pub fn reset_password(&self) -> String {
        self.at(RESET_PASSWORD)
    }

    pub fn reset_new_password(&self) -> String {
        self.at(RESET_NEW_PASSWORD)
    }

    pub fn account_email(&self) -> String {
        self.at(account::EMAIL)
    }

    pub fn verify_email(&self) -> String {
        self.at(account::VERIFY_EMAIL)
    }

    pub fn device(&self) -> String {
        self.at(DEVICE)
    }

    pub fn consent(&self) -> String {
        self.at(CONSENT)
    }

    pub fn second_factor(&self) -> String {
        self.at(SECOND_FACTOR)
    }

    /// The second-factor page of interaction `handle`, showing `factor`.
    pub fn second_factor_choice(&self, handle: &str, factor: &str) -> String {
        format!("{}?id={handle}&factor={factor}", self.at(SECOND_FACTOR))
    }

    pub fn passkey_sign_in_options(&self) -> String {
        self.at(PASSKEY_SIGN_IN_OPTIONS)
    }

    pub fn passkey_sign_in_finish(&self) -> String {
        self.at(PASSKEY_SIGN_IN_FINISH)
    }

    pub fn security(&self) -> String {
        self.at(account::SECURITY)
    }

    pub fn passkey_options(&self) -> String {
        self.at(account::PASSKEY_OPTIONS)
    }

    pub fn passkey_finish(&self) -> String {
        self.at(account::PASSKEY_FINISH)
    }

    pub fn passkey_script(&self) -> String {
        self.at(assets::PASSKEY_SCRIPT)
    }

    pub fn logout_confirm(&self) -> String {
        self.at(LOGOUT_CONFIRM)
    }

    pub fn account(&self) -> String {
        self.at(account::HOME)
    }

    pub fn account_end_session(&self) -> String {
        self.at(account::END_SESSION)
    }

    pub fn account_sign_out_everywhere(&self) -> String {
        self.at(account::SIGN_OUT_EVERYWHERE)
    }

    pub fn upstream_start(&self, id: &str) -> String {
        self.at(&fill(UPSTREAM_START, &[id]))
    }

    pub fn upstream_link(&self) -> String {
        self.at(UPSTREAM_LINK)
    }

    pub fn upstream_link_sign_in(&self) -> String {
        self.at(UPSTREAM_LINK_SIGN_IN)
    }

    pub fn account_unlink_upstream(&self) -> String {
        self.at(account::UNLINK_UPSTREAM)
    }

    pub fn account_withdraw_consent(&self) -> String {
        self.at(account::WITHDRAW_CONSENT)
    }

    pub fn stylesheet(&self) -> String {
        self.at(assets::STYLESHEET)
    }

    pub fn brand_stylesheet(&self) -> String {
        self.at(assets::BRAND_STYLESHEET)
    }

    pub fn favicon(&self) -> String {
        self.at(assets::FAVICON)
    }

    pub fn frontchannel_script(&self) -> String {
        self.at(assets::FRONTCHANNEL_SCRIPT)
    }

    pub fn console_logout(&self) -> String {
        self.at(console::LOGOUT)
    }

    pub fn console_users(&self) -> String {
        self.at(console::USERS)
    }

    pub fn console_user(&self, id: &str) -> String {
        self.at(&fill(console::USER, &[id]))
    }

    pub fn console_user_action(&self, id: &str, action: &str) -> String {
        self.at(&fill(console::USER_ACTION, &[id, action]))
    }

    pub fn console_end_session(&self) -> String {
        self.at(console::END_SESSION)
    }

    pub fn console_clients(&self) -> String {
        self.at(console::CLIENTS)
    }

    pub fn console_client_action(&self, id: &str, action: &str) -> String {
        self.at(&fill(console::CLIENT_ACTION, &[id, action]))
    }

    pub fn console_keys(&self) -> String {
        self.at(console::KEYS)
    }

    pub fn console_rotate_keys(&self) -> String {
        self.at(console::ROTATE_KEYS)
    }

    pub fn console_upstreams(&self) -> String {
        self.at(console::UPSTREAMS)
    }

    pub fn console_audit(&self) -> String {
        self.at(console::AUDIT)
    }

    pub fn console_groups(&self) -> String {
        self.at(console::GROUPS)
    }

    pub fn console_group(&self, id: &str) -> String {
        self.at(&fill(console::GROUP, &[id]))
    }

    pub fn console_group_action(&self, id: &str, action: &str) -> String {
        self.at(&fill(console::GROUP_ACTION, &[id, action]))
    }

    // ---- Sign-up and invitations (issue 23 §4) ----
    pub fn console_invitations(&self) -> String {
        self.at(console::INVITATIONS)
    }

    pub fn signup(&self) -> String {
        self.at(signup::FORM)
    }

    /// "Create an account" from the login page of interaction `handle`.
    pub fn signup_from(&self, handle: &str) -> String {
        format!("{}?id={handle}", self.at(signup::FORM))
    }

    pub fn signup_invitation(&self) -> String {
        self.at(signup::INVITATION)
    }

    pub fn invitation_passkey_options(&self) -> String {
        self.at(signup::INVITATION_PASSKEY_OPTIONS)
    }

    pub fn invitation_passkey_finish(&self) -> String {
        self.at(signup::INVITATION_PASSKEY_FINISH)
    }

    pub fn signup_verify(&self) -> String {
        self.at(signup::VERIFY)
    }
    // ---- end sign-up and invitations ----
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;

    const TEST_MODULE: &str = "#[cfg(test)]\nmod tests";

    fn root() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
    }

    /// `(name, path)` of every `const NAME: &str = "/...";` of the registry (this file).
    fn registry() -> Vec<(String, String)> {
        let text = std::fs::read_to_string(root().join("src/http/paths.rs")).unwrap();
        let code = text.split(TEST_MODULE).next().unwrap();
        code.lines()
            .filter_map(|line| {
                let definition = line.trim().strip_prefix("pub const ")?;
                let (name, value) = definition.split_once(": &str = \"")?;
                Some((name.to_owned(), value.strip_suffix("\";")?.to_owned()))
            })
            .collect()
    }

    /// The first segment of a path (`admin` of `/admin/users/{id}`).
    fn first_segment(path: &str) -> &str {
        path.trim_start_matches('/')
            .split(['/', '"', '{', '?'])
            .next()
            .unwrap_or("")
    }

    /// Where a path starts in `line`: `"/x` (a literal path) or `}/x` (a path written after
    /// a value, `{base}/x` or `{{ base }}/x`), `x` a letter or a dot. Template attributes
    /// may be single-quoted too.
    fn path_starts(line: &str, template: bool) -> Vec<usize> {
        let bytes = line.as_bytes();
        (1..bytes.len().saturating_sub(1))
            .filter(|&i| {
                bytes[i] == b'/'
                    && (matches!(bytes[i - 1], b'"' | b'}') || (template && bytes[i - 1] == b'\''))
                    && (bytes[i + 1].is_ascii_alphabetic() || bytes[i + 1] == b'.')
            })
            .collect()
    }

    /// The path literals of Rust `code` (outside comments): each must be the whole value
    /// of a named constant (`const NAME: &str = "/...";`, a protocol-side path such as the
    /// health probes), and none of those may take a path the registry's segments own.
    fn stray_in_rust(code: &str, owned: &[&str]) -> Vec<String> {
        let mut found = Vec::new();
        for line in code.lines().map(|l| l.split("//").next().unwrap_or("")) {
            let named = line.contains("const ") && line.trim_end().ends_with("\";");
            for at in path_starts(line, false) {
                let constant = named && line[..at].ends_with(": &str = \"");
                if !constant || owned.contains(&first_segment(&line[at..])) {
                    found.push(line.trim().to_owned());
                }
            }
        }
        found.dedup();
        found
    }

    /// A template writes no path: its links come from `links`.
    fn stray_in_template(text: &str) -> Vec<String> {
        text.lines()
            .filter(|line| !path_starts(line, true).is_empty())
            .map(|line| line.trim().to_owned())
            .collect()
    }

    fn shown(file: &Path) -> String {
        let root = root();
        file.strip_prefix(&root)
            .unwrap_or(file)
            .display()
            .to_string()
    }

    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    #[test]
    fn no_path_is_written_outside_the_registry() {
        let registry = registry();
        assert!(registry.len() > 30, "read {} paths", registry.len());
        let mut owned: Vec<&str> = registry.iter().map(|(_, p)| first_segment(p)).collect();
        owned.sort_unstable();
        owned.dedup();
        assert_eq!(
            owned,
            [
                "account", "admin", "consent", "device", "login", "logout", "metrics", "signup",
                "static", "upstream"
            ]
        );
        let mut stray = Vec::new();
        let mut files = Vec::new();
        rust_files(&root().join("src/http"), &mut files);
        assert!(files.len() > 30, "read {} files", files.len());
        for file in files.iter().filter(|f| !f.ends_with("http/paths.rs")) {
            let text = std::fs::read_to_string(file).unwrap();
            let code = text.split(TEST_MODULE).next().unwrap();
            for line in stray_in_rust(code, &owned) {
                stray.push(format!("{}: {line}", shown(file)));
            }
        }
        let mut templates = 0;
        for entry in std::fs::read_dir(root().join("templates")).unwrap() {
            let file = entry.unwrap().path();
            if file.extension().is_some_and(|e| e == "html") {
                templates += 1;
                let text = std::fs::read_to_string(&file).unwrap();
                for line in stray_in_template(&text) {
                    stray.push(format!("{}: {line}", shown(&file)));
                }
            }
        }
        assert!(templates > 10, "read {templates} templates");
        assert_eq!(stray, Vec::<String>::new());
    }

    #[test]
    fn a_path_written_outside_the_registry_is_found() {
        let owned = ["account", "admin", "static"];
        let code = r#"
            cfg.service(at("/admin/users").get(users).done())
            let back = format!("{}/admin/clients/{id}", base);
            Ok(see_other(&state, "/users"))
            pub const MINE: &str = "/account/elsewhere";
            pub const LIVENESS: &str = "/healthz";
            const WELL_KNOWN: &str = "/.well-known/";
            const STYLESHEET: &str = include_str!("../../../static/style.css");
            .content_type("text/html; charset=utf-8")
            .path("/")
            at(paths::account::HOME) // not at("/account")
        "#;
        assert_eq!(
            stray_in_rust(code, &owned),
            [
                r#"cfg.service(at("/admin/users").get(users).done())"#,
                r#"let back = format!("{}/admin/clients/{id}", base);"#,
                r#"Ok(see_other(&state, "/users"))"#,
                r#"pub const MINE: &str = "/account/elsewhere";"#,
            ]
        );
        let template = r#"
<link rel="stylesheet" href="{{ base }}/static/style.css">
<form method="post" action="/login">
<a href='/account'>
<link rel="stylesheet" href="{{ links.stylesheet() }}">
<p><a href="{{ links.console_users() }}?after={{ next|urlencode }}">
<img class="logo" src="{{ logo }}" alt="">
        "#;
        assert_eq!(stray_in_template(template).len(), 3);
    }

    #[test]
    fn the_registry_keeps_the_urls_users_rely_on() {
        // CONTRACT.md: "Browser pages" and "HTTP".
        assert_eq!(account::HOME, "/account");
        assert_eq!(account::END_SESSION, "/account/sessions/end");
        assert_eq!(account::SIGN_OUT_EVERYWHERE, "/account/sign-out-everywhere");
        assert_eq!(account::WITHDRAW_CONSENT, "/account/consents/withdraw");
        assert_eq!(console::HOME, "/admin");
        assert_eq!(admin_api::PREFIX, "/admin/api");
        assert_eq!(METRICS, "/metrics");
    }

    #[test]
    fn paths_are_distinct_and_sit_below_their_parts() {
        let registry = registry();
        for (i, (name, path)) in registry.iter().enumerate() {
            for (other, again) in &registry[i + 1..] {
                assert_ne!(path, again, "{name} and {other}");
            }
            let below = |home: &str| path == home || path.starts_with(&format!("{home}/"));
            let expected = match first_segment(path) {
                "account" => below(account::HOME),
                "static" => below("/static"),
                // The console's cookies are limited to its home: its pages must be below.
                "admin" if below(admin_api::PREFIX) => true,
                "admin" => below(console::HOME),
                _ => true,
            };
            assert!(expected, "{name} = {path}");
        }
    }

    #[test]
    fn links_are_the_registry_below_the_issuer() {
        let links = Links::new("/auth");
        assert_eq!(links.account_end_session(), "/auth/account/sessions/end");
        assert_eq!(links.stylesheet(), "/auth/static/style.css");
        assert_eq!(links.console_user("u1"), "/auth/admin/users/u1");
        assert_eq!(
            links.console_user_action("u1", "withdraw"),
            "/auth/admin/users/u1/withdraw"
        );
        assert_eq!(
            links.console_client_action("c1", "secret"),
            "/auth/admin/clients/c1/secret"
        );
        assert_eq!(
            links.console_group_action("g1", "rename"),
            "/auth/admin/groups/g1/rename"
        );
        assert_eq!(Links::new("").login(), "/login");
    }

    #[test]
    fn fill_puts_values_in_order_and_leaves_missing_ones() {
        assert_eq!(
            fill(admin_api::USER_CONSENT, &["u1", "c1"]),
            "/admin/api/users/u1/consents/c1"
        );
        assert_eq!(
            fill(console::USER_ACTION, &["u1"]),
            "/admin/users/u1/{action}"
        );
        assert_eq!(fill(account::HOME, &["ignored"]), "/account");
    }

    #[test]
    fn fill_encodes_each_value_as_one_segment() {
        assert_eq!(
            fill(admin_api::USER, &["auth0|abc:1@x"]),
            "/admin/api/users/auth0%7Cabc%3A1%40x"
        );
        // Decoded by the router, `%76ictim` is `victim`: written as is, it would be.
        assert_eq!(
            fill(admin_api::USER, &["%76ictim"]),
            "/admin/api/users/%2576ictim"
        );
        assert_eq!(fill(admin_api::USER, &["a/.."]), "/admin/api/users/a%2F..");
        assert_eq!(fill(admin_api::USER, &["Zoë"]), "/admin/api/users/Zo%C3%AB");
        assert_eq!(
            fill(admin_api::USER, &["A-z_0.9~"]),
            "/admin/api/users/A-z_0.9~"
        );
    }
}
