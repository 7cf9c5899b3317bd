//! `[[upstream]]` tables: the OpenID providers people may sign in with ("Sign in with
//! NAME", issue 24). Read from the configuration file only (a table per provider has no
//! place among `PORTCULLIS_<KEY>` variables), each checked at start: a bad table stops the
//! server with a message naming it (`upstream[N]`, and its `id` when it has one).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{ConfigError, bad};
use crate::domain::{KeyAlgorithm, Secret};

/// How an upstream identity that no link names yet may be linked to a local account
/// (`link`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkMode {
    /// Only by proving both sides in one browser (a local sign-in, then a confirmation).
    Off,
    /// Also by the upstream's verified email, for addresses of `trusted_email_domains`
    /// (an explicit opt-in: the provider is trusted to own those addresses).
    VerifiedEmail,
}

/// How Portcullis authenticates to the upstream's token endpoint
/// (`token_endpoint_auth_method`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpstreamAuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    /// RFC 7523 §2.2 / OIDC Core §9: a client assertion signed with our own signing key
    /// of this algorithm (`token_endpoint_auth_signing_alg`, RS256 by default). The
    /// upstream knows the public key from our `/jwks` (its `jwks_uri` for us).
    PrivateKeyJwt(KeyAlgorithm),
}

/// How the upstream returns its authorization response (`response_mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpstreamResponseMode {
    /// A GET to the callback (the browser's one-time cookie is `SameSite=Lax`).
    Query,
    /// A cross-site POST to the callback (OAuth 2.0 Form Post Response Mode): the
    /// one-time cookie must be `SameSite=None` to come along, so it needs `Secure`.
    FormPost,
}

/// What kind of provider it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UpstreamKind {
    /// An OpenID provider: discovery, ID tokens.
    OpenId,
    /// GitHub (`preset = "github"`): plain OAuth 2.0 without ID tokens; who it is comes
    /// from `GET {api}/user`, the address and whether it is verified from
    /// `GET {api}/user/emails`. `web` is `https://github.com` (`github_url`), `api`
    /// `https://api.github.com` (`github_api_url`): settable, for GitHub Enterprise and
    /// for tests.
    Github { web: String, api: String },
    /// Microsoft Entra ID, multi-tenant (`preset = "microsoft"`): discovery is read from
    /// `discovery` (`https://login.microsoftonline.com/common/v2.0` by default,
    /// `discovery_url`), whose `issuer` is the template
    /// `https://login.microsoftonline.com/{tenantid}/v2.0`; each ID token's expected issuer
    /// is that template with the token's `tid`, and the issuer check stays on.
    Microsoft {
        discovery: String,
        /// The tenants (`tid`) accepted (`tenants = [...]`); `["*"]` any. Empty: any,
        /// allowed only without `jit` (anyone with a Microsoft account, personal ones
        /// included, would get an account).
        tenants: Vec<String>,
    },
}

/// One upstream provider, checked.
#[derive(Clone, Debug)]
pub struct UpstreamProvider {
    /// A path-safe slug (`[a-z0-9_-]`, 1 to 32 characters), unique: the callback's path
    /// segment and what the `idp` claim says.
    pub id: String,
    /// Shown on the button: "Sign in with NAME".
    pub name: String,
    /// The upstream's exact issuer (discovery at `{issuer}/.well-known/openid-configuration`).
    pub issuer: String,
    /// The preset it came from (`preset`), if any.
    pub preset: Option<String>,
    pub client_id: String,
    pub client_secret: Option<Secret<String>>,
    pub auth_method: UpstreamAuthMethod,
    /// Scopes asked for; `openid` is always among them.
    pub scopes: Vec<String>,
    /// A first sign-in with an unknown identity creates a local account.
    pub jit: bool,
    pub link: LinkMode,
    /// Lower-case domains this provider is trusted for (`link = "verified_email"`).
    pub trusted_email_domains: Vec<String>,
    /// Our claim name → the upstream's claim name (`[upstream.claims]`), for the claims a
    /// JIT account is given. The defaults are the same names.
    pub claims: BTreeMap<String, String>,
    /// Signing out here also sends the browser to the upstream's `end_session_endpoint`
    /// (OIDC RP-Initiated Logout), with the ID token of the sign-in as `id_token_hint`:
    /// kept, sealed, for such providers only.
    pub end_session: bool,
    pub response_mode: UpstreamResponseMode,
    pub kind: UpstreamKind,
    /// `allow_private_network = true`: the operator lets this provider's endpoints be on
    /// private (non-public) addresses, e.g. an intranet OP. Without it only public
    /// addresses are reached, unless the issuer itself is on a loopback or private
    /// address literal (or `localhost`): SSRF (a discovery document names any URL).
    pub allow_private_network: bool,
}

/// The keys of an `[[upstream]]` table, as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProvider {
    id: Option<String>,
    name: Option<String>,
    issuer: Option<String>,
    preset: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    token_endpoint_auth_method: Option<String>,
    token_endpoint_auth_signing_alg: Option<String>,
    scopes: Option<Vec<String>>,
    #[serde(default)]
    jit: bool,
    link: Option<String>,
    #[serde(default)]
    trusted_email_domains: Vec<String>,
    #[serde(default)]
    claims: BTreeMap<String, String>,
    #[serde(default)]
    end_session: bool,
    response_mode: Option<String>,
    github_url: Option<String>,
    github_api_url: Option<String>,
    discovery_url: Option<String>,
    #[serde(default)]
    allow_private_network: bool,
    #[serde(default)]
    tenants: Vec<String>,
}

/// The claims a JIT account may be given from the upstream (OIDC Core §5.1 names).
pub const MAPPABLE_CLAIMS: [&str; 7] = [
    "name",
    "given_name",
    "family_name",
    "email",
    "preferred_username",
    "locale",
    "picture",
];

/// The presets this version knows: (name, issuer).
const PRESETS: [(&str, &str); 3] = [
    ("google", "https://accounts.google.com"),
    ("github", "https://github.com"),
    ("microsoft", MICROSOFT_ISSUER_TEMPLATE),
];

/// Entra ID's multi-tenant issuer: `{tenantid}` is each token's `tid`.
pub const MICROSOFT_ISSUER_TEMPLATE: &str = "https://login.microsoftonline.com/{tenantid}/v2.0";

/// Reads the `upstream` array of tables of the configuration file (none: no providers).
pub fn read(toml_text: Option<&str>) -> Result<Vec<UpstreamProvider>, ConfigError> {
    let Some(text) = toml_text else {
        return Ok(Vec::new());
    };
    let mut table: toml::Table =
        toml::from_str(text).map_err(|e| bad("config", e.message().to_owned()))?;
    let Some(value) = table.remove("upstream") else {
        return Ok(Vec::new());
    };
    let toml::Value::Array(items) = value else {
        return Err(bad(
            "upstream",
            "expected [[upstream]] tables (an array of tables)",
        ));
    };
    let mut providers: Vec<UpstreamProvider> = Vec::new();
    for (index, item) in items.into_iter().enumerate() {
        let where_ = |id: Option<&str>| match id {
            Some(id) => format!("upstream[{index}] ({id})"),
            None => format!("upstream[{index}]"),
        };
        let raw: RawProvider = item
            .try_into()
            .map_err(|e: toml::de::Error| bad(&where_(None), e.message().to_owned()))?;
        let id_hint = raw.id.clone();
        let provider = check(raw).map_err(|message| bad(&where_(id_hint.as_deref()), message))?;
        if providers.iter().any(|p| p.id == provider.id) {
            return Err(bad(
                &where_(Some(&provider.id)),
                "another [[upstream]] has this id",
            ));
        }
        providers.push(provider);
    }
    Ok(providers)
}

/// A path-safe slug: what the callback URL and the `idp` claim carry.
fn is_slug(id: &str) -> bool {
    (1..=32).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn check(raw: RawProvider) -> Result<UpstreamProvider, String> {
    let id = raw.id.ok_or("id is required")?;
    if !is_slug(&id) {
        return Err("id must be 1 to 32 of a-z, 0-9, - and _".into());
    }
    let name = raw
        .name
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty())
        .ok_or("name is required")?;
    let (issuer, preset) = match (raw.issuer, raw.preset) {
        (Some(_), Some(_)) => return Err("give issuer or preset, not both".into()),
        (None, None) => return Err("issuer (or preset) is required".into()),
        (Some(issuer), None) => (issuer, None),
        (None, Some(preset)) => {
            let Some((_, issuer)) = PRESETS.iter().find(|(p, _)| *p == preset) else {
                return Err(format!(
                    "preset {preset:?} is not known (this version knows: google, github, microsoft)"
                ));
            };
            ((*issuer).to_owned(), Some(preset))
        }
    };
    let github = preset.as_deref() == Some("github");
    let microsoft = preset.as_deref() == Some("microsoft");
    if !microsoft && !raw.tenants.is_empty() {
        return Err("tenants is for preset = \"microsoft\"".into());
    }
    if microsoft && raw.jit && raw.tenants.is_empty() {
        return Err(
            "preset = \"microsoft\" with jit = true needs tenants = [\"<tenant id>\", ...] (or [\"*\"] for every Microsoft account)"
                .into(),
        );
    }
    if microsoft {
        for t in &raw.tenants {
            if t.trim() != "*" && !is_tenant_id(t.trim()) {
                return Err(format!(
                    "tenants: {t:?} is not a tenant id (a GUID such as 9188040d-6c67-4c5b-b112-36a304b66dad; not common, organizations, consumers or a domain name)"
                ));
            }
        }
    }
    // Linking by a verified address trusts the provider for its domains: for multi-tenant
    // Entra ID that is the operator's own tenants, never every tenant (personal accounts
    // and unmanaged tenants included).
    if microsoft
        && raw.link.as_deref() == Some("verified_email")
        && (raw.tenants.is_empty() || raw.tenants.iter().any(|t| t.trim() == "*"))
    {
        return Err(
            "preset = \"microsoft\" with link = \"verified_email\" needs tenants = [\"<tenant id>\", ...] (your tenants' GUIDs; not \"*\")"
                .into(),
        );
    }
    if !microsoft && raw.discovery_url.is_some() {
        return Err("discovery_url is for preset = \"microsoft\"".into());
    }
    if !github && (raw.github_url.is_some() || raw.github_api_url.is_some()) {
        return Err("github_url and github_api_url are for preset = \"github\"".into());
    }
    // GitHub's identities are keyed by its web origin (`github_url`).
    let issuer = match (&raw.github_url, github) {
        (Some(web), true) => web.trim_end_matches('/').to_owned(),
        _ => issuer,
    };
    let parsed = url::Url::parse(&issuer).map_err(|_| "issuer must be an absolute URL")?;
    let local = match parsed.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    if parsed.scheme() != "https" && !(parsed.scheme() == "http" && local) {
        return Err("issuer must be https (http only for localhost)".into());
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err("issuer must have no query or fragment (OIDC Discovery §2)".into());
    }
    let client_id = raw
        .client_id
        .filter(|c| !c.is_empty())
        .ok_or("client_id is required")?;
    let auth_method = match raw.token_endpoint_auth_method.as_deref() {
        None | Some("client_secret_basic") => UpstreamAuthMethod::ClientSecretBasic,
        Some("client_secret_post") => UpstreamAuthMethod::ClientSecretPost,
        Some("private_key_jwt") => {
            let alg = raw
                .token_endpoint_auth_signing_alg
                .as_deref()
                .unwrap_or("RS256");
            let alg = KeyAlgorithm::parse(alg).ok_or_else(|| {
                format!(
                    "token_endpoint_auth_signing_alg {alg:?}: expected RS256, PS256, ES256 or EdDSA"
                )
            })?;
            UpstreamAuthMethod::PrivateKeyJwt(alg)
        }
        Some(other) => {
            return Err(format!(
                "token_endpoint_auth_method {other:?}: expected client_secret_basic, client_secret_post or private_key_jwt"
            ));
        }
    };
    if raw.token_endpoint_auth_signing_alg.is_some()
        && !matches!(auth_method, UpstreamAuthMethod::PrivateKeyJwt(_))
    {
        return Err(
            "token_endpoint_auth_signing_alg is for token_endpoint_auth_method = \"private_key_jwt\""
                .into(),
        );
    }
    let client_secret = match auth_method {
        UpstreamAuthMethod::PrivateKeyJwt(_) => {
            if github {
                return Err(
                    "preset = \"github\" has no private_key_jwt (GitHub takes a client_secret)"
                        .into(),
                );
            }
            // A secret that is never sent would only be a secret to leak.
            if raw.client_secret.is_some() {
                return Err("client_secret is not used with private_key_jwt (leave it out)".into());
            }
            None
        }
        _ => Some(
            raw.client_secret
                .filter(|s| !s.is_empty())
                .map(Secret::new)
                .ok_or("client_secret is required")?,
        ),
    };
    let mut scopes = raw.scopes.unwrap_or_else(|| {
        if github {
            vec!["read:user".into(), "user:email".into()]
        } else {
            vec!["openid".into(), "email".into(), "profile".into()]
        }
    });
    if scopes
        .iter()
        .any(|s| s.is_empty() || s.contains(char::is_whitespace))
    {
        return Err("scopes must be single words".into());
    }
    if !github && !scopes.iter().any(|s| s == "openid") {
        scopes.insert(0, "openid".into());
    }
    let link = match raw.link.as_deref() {
        None | Some("off") => LinkMode::Off,
        Some("verified_email") => LinkMode::VerifiedEmail,
        Some(other) => {
            return Err(format!("link {other:?}: expected off or verified_email"));
        }
    };
    let trusted_email_domains: Vec<String> = raw
        .trusted_email_domains
        .iter()
        .map(|d| d.trim().trim_start_matches('@').to_ascii_lowercase())
        .collect();
    if trusted_email_domains
        .iter()
        .any(|d| d.is_empty() || !d.contains('.') || d.contains(['@', '*', ' ', '/']))
    {
        return Err("trusted_email_domains must be plain domains like example.com".into());
    }
    // GitHub never checks a verified address again: a former employee keeps a
    // "verified" alice@corp.example after leaving, and would be linked to whoever has
    // that address here now.
    if link == LinkMode::VerifiedEmail && preset.as_deref() == Some("github") {
        return Err(
            "link = \"verified_email\" is refused for preset = \"github\" (GitHub's verified addresses are never checked again)"
                .into(),
        );
    }
    // JIT copies an address vouched for by the provider as verified; GitHub's flag is as
    // stale for that as for linking (review M3): refused rather than half-trusted.
    if github && !trusted_email_domains.is_empty() {
        return Err(
            "trusted_email_domains is refused for preset = \"github\" (GitHub's verified addresses are never checked again)"
                .into(),
        );
    }
    if link == LinkMode::VerifiedEmail && trusted_email_domains.is_empty() {
        return Err(
            "link = \"verified_email\" needs trusted_email_domains (the domains this provider owns)"
                .into(),
        );
    }
    if link == LinkMode::Off && !raw.jit && !trusted_email_domains.is_empty() {
        return Err(
            "trusted_email_domains is only read with link = \"verified_email\" or jit = true"
                .into(),
        );
    }
    for ours in raw.claims.keys() {
        if !MAPPABLE_CLAIMS.contains(&ours.as_str()) {
            return Err(format!(
                "claims: {ours:?} cannot be mapped (one of: {})",
                MAPPABLE_CLAIMS.join(", ")
            ));
        }
    }
    if raw.end_session && github {
        return Err(
            "end_session is not for preset = \"github\" (GitHub has no logout endpoint)".into(),
        );
    }
    if raw.end_session && preset.as_deref() == Some("google") {
        return Err(
            "end_session is not for preset = \"google\" (Google has no end_session_endpoint)"
                .into(),
        );
    }
    let response_mode = match raw.response_mode.as_deref() {
        None | Some("query") => UpstreamResponseMode::Query,
        Some("form_post") if github => {
            return Err(
                "response_mode = \"form_post\" is not for preset = \"github\" (GitHub answers by query)"
                    .into(),
            );
        }
        Some("form_post") => UpstreamResponseMode::FormPost,
        Some(other) => {
            return Err(format!(
                "response_mode {other:?}: expected query or form_post"
            ));
        }
    };
    let kind = if github {
        let api = raw
            .github_api_url
            .unwrap_or_else(|| "https://api.github.com".into());
        for url in [&issuer, &api] {
            let parsed = url::Url::parse(url)
                .map_err(|_| "github_url and github_api_url must be absolute URLs")?;
            let loopback = match parsed.host() {
                Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                None => false,
            };
            if parsed.scheme() != "https" && !(parsed.scheme() == "http" && loopback) {
                return Err(
                    "github_url and github_api_url must be https (http only for loopback)".into(),
                );
            }
        }
        UpstreamKind::Github {
            web: issuer.clone(),
            api: api.trim_end_matches('/').to_owned(),
        }
    } else if microsoft {
        UpstreamKind::Microsoft {
            discovery: raw
                .discovery_url
                .unwrap_or_else(|| "https://login.microsoftonline.com/common/v2.0".into())
                .trim_end_matches('/')
                .to_owned(),
            tenants: raw
                .tenants
                .iter()
                .map(|t| t.trim().to_ascii_lowercase())
                .collect(),
        }
    } else {
        UpstreamKind::OpenId
    };
    Ok(UpstreamProvider {
        kind,
        id,
        name,
        // Exactly as configured: the ID token's `iss` and RFC 9207's are compared to it
        // exactly (OIDC Core §3.1.3.7 step 2), and some issuers end with a slash.
        issuer,
        allow_private_network: raw.allow_private_network,
        preset,
        client_id,
        client_secret,
        auth_method,
        scopes,
        jit: raw.jit,
        link,
        trusted_email_domains,
        claims: raw.claims,
        end_session: raw.end_session,
        response_mode,
    })
}

/// The issuer a multi-tenant template expects of a token from tenant `tid`: `None` for a
/// `tid` that is not a tenant id (a GUID's characters only), so that no token can steer
/// the expected issuer anywhere else.
pub fn issuer_for_tenant(template: &str, tid: &str) -> Option<String> {
    // Entra ID writes tenant ids in lowercase; any other spelling of the same GUID would
    // be another issuer, hence another identity key, for the same tenant (review L7).
    let canonical = is_tenant_id(tid) && !tid.bytes().any(|b| b.is_ascii_uppercase());
    canonical.then(|| template.replace("{tenantid}", tid))
}

/// Whether `id` is a GUID (8-4-4-4-12 hex digits, either case): an Entra ID tenant id.
pub fn is_tenant_id(id: &str) -> bool {
    let groups: Vec<&str> = id.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

impl UpstreamProvider {
    /// The upstream claim that fills our claim `ours`.
    pub fn claim_source<'a>(&'a self, ours: &'a str) -> &'a str {
        self.claims.get(ours).map(String::as_str).unwrap_or(ours)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(table: &str) -> Result<UpstreamProvider, ConfigError> {
        read(Some(&format!("[[upstream]]\n{table}"))).map(|mut v| v.remove(0))
    }

    const GOOD: &str = "id = \"corp\"\nname = \"Corp\"\nissuer = \"https://id.corp.example/\"\nclient_id = \"c\"\nclient_secret = \"s\"\n";

    #[test]
    fn a_provider_gets_its_defaults() {
        let p = one(GOOD).unwrap();
        assert_eq!(p.id, "corp");
        assert_eq!(p.issuer, "https://id.corp.example/", "kept exactly");
        assert!(!p.allow_private_network);
        assert_eq!(p.scopes, ["openid", "email", "profile"]);
        assert!(!p.jit);
        assert_eq!(p.link, LinkMode::Off);
        assert_eq!(p.auth_method, UpstreamAuthMethod::ClientSecretBasic);
        assert_eq!(p.response_mode, UpstreamResponseMode::Query);
        assert!(!p.end_session);
        assert_eq!(p.claim_source("name"), "name");
    }

    #[test]
    fn no_file_or_no_tables_is_no_provider() {
        assert!(read(None).unwrap().is_empty());
        assert!(
            read(Some("issuer = \"http://localhost:1\""))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn each_bad_table_is_named() {
        let cases = [
            (
                "name = \"x\"\nissuer = \"https://a.example\"\nclient_id = \"c\"\nclient_secret = \"s\"",
                "upstream[0]",
                "id is required",
            ),
            (
                "id = \"Bad/Id\"\nname = \"x\"\nissuer = \"https://a.example\"\nclient_id = \"c\"\nclient_secret = \"s\"",
                "upstream[0] (Bad/Id)",
                "id must be",
            ),
            (
                "id = \"a\"\nname = \"x\"\nissuer = \"https://a.example\"\npreset = \"google\"\nclient_id = \"c\"\nclient_secret = \"s\"",
                "upstream[0] (a)",
                "not both",
            ),
            (
                "id = \"a\"\nname = \"x\"\nclient_id = \"c\"\nclient_secret = \"s\"",
                "upstream[0] (a)",
                "issuer (or preset) is required",
            ),
            (
                "id = \"a\"\nname = \"x\"\nissuer = \"http://a.example\"\nclient_id = \"c\"\nclient_secret = \"s\"",
                "upstream[0] (a)",
                "https",
            ),
            (
                "id = \"a\"\nname = \"x\"\nissuer = \"https://a.example\"\nclient_id = \"c\"\nclient_secret = \"s\"\nlink = \"email\"",
                "upstream[0] (a)",
                "link",
            ),
            (
                "id = \"a\"\nname = \"x\"\nissuer = \"https://a.example\"\nclient_id = \"c\"\nclient_secret = \"s\"\nlink = \"verified_email\"",
                "upstream[0] (a)",
                "trusted_email_domains",
            ),
            (
                "id = \"a\"\nname = \"x\"\nissuer = \"https://a.example\"\nclient_id = \"c\"",
                "upstream[0] (a)",
                "client_secret",
            ),
            (
                "id = \"a\"\nname = \"x\"\nissuer = \"https://a.example\"\nclient_id = \"c\"\nclient_secret = \"s\"\nclaims = { sub = \"oid\" }",
                "upstream[0] (a)",
                "claims",
            ),
            (
                "id = \"a\"\nname = \"x\"\nissuer = \"https://a.example\"\nclient_id = \"c\"\nclient_secret = \"s\"\nfoo = 1",
                "upstream[0]",
                "unknown field",
            ),
        ];
        for (table, key, message) in cases {
            let error = one(table).unwrap_err();
            assert_eq!(error.key, key, "{table}");
            assert!(
                error.message.contains(message),
                "{table}: {}",
                error.message
            );
        }
    }

    #[test]
    fn the_github_preset_is_plain_oauth_at_settable_urls() {
        let p = one("id = \"gh\"\nname = \"GitHub\"\npreset = \"github\"\nclient_id = \"c\"\nclient_secret = \"s\"").unwrap();
        assert_eq!(p.issuer, "https://github.com");
        assert_eq!(p.scopes, ["read:user", "user:email"]);
        assert_eq!(
            p.kind,
            UpstreamKind::Github {
                web: "https://github.com".into(),
                api: "https://api.github.com".into()
            }
        );
        let refused = one("id = \"gh\"\nname = \"GitHub\"\npreset = \"github\"\nclient_id = \"c\"\nclient_secret = \"s\"\nlink = \"verified_email\"\ntrusted_email_domains = [\"corp.example\"]").unwrap_err();
        assert!(
            refused.message.contains("refused for preset"),
            "{}",
            refused.message
        );
        let local = one("id = \"gh\"\nname = \"GitHub\"\npreset = \"github\"\ngithub_url = \"http://127.0.0.4:1/\"\ngithub_api_url = \"http://127.0.0.4:2\"\nclient_id = \"c\"\nclient_secret = \"s\"").unwrap();
        assert_eq!(local.issuer, "http://127.0.0.4:1");
        let error = one("id = \"x\"\nname = \"X\"\nissuer = \"https://x.example\"\ngithub_url = \"https://github.com\"\nclient_id = \"c\"\nclient_secret = \"s\"").unwrap_err();
        assert!(
            error.message.contains("preset = \"github\""),
            "{}",
            error.message
        );
    }

    #[test]
    fn the_microsoft_preset_expects_the_issuer_of_the_tokens_tenant() {
        let p = one("id = \"ms\"\nname = \"Microsoft\"\npreset = \"microsoft\"\nclient_id = \"c\"\nclient_secret = \"s\"").unwrap();
        assert_eq!(p.issuer, MICROSOFT_ISSUER_TEMPLATE);
        assert_eq!(
            p.kind,
            UpstreamKind::Microsoft {
                discovery: "https://login.microsoftonline.com/common/v2.0".into(),
                tenants: Vec::new(),
            }
        );
        let tid = "9188040d-6c67-4c5b-b112-36a304b66dad";
        assert_eq!(
            issuer_for_tenant(MICROSOFT_ISSUER_TEMPLATE, tid).as_deref(),
            Some("https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0")
        );
        for bad in ["", "evil.example/x", "../common", "a b", "9188040d?x"] {
            assert_eq!(
                issuer_for_tenant(MICROSOFT_ISSUER_TEMPLATE, bad),
                None,
                "{bad}"
            );
        }
    }

    #[test]
    fn the_microsoft_preset_links_by_address_only_for_listed_tenant_ids() {
        let base = "id = \"ms\"\nname = \"Microsoft\"\npreset = \"microsoft\"\nclient_id = \"c\"\nclient_secret = \"s\"\nlink = \"verified_email\"\ntrusted_email_domains = [\"corp.example\"]\n";
        let error = one(base).unwrap_err();
        assert!(error.message.contains("needs tenants"), "{}", error.message);
        let error = one(&format!("{base}tenants = [\"*\"]")).unwrap_err();
        assert!(error.message.contains("needs tenants"), "{}", error.message);
        for bad in [
            "organizations",
            "common",
            "consumers",
            "corp.example",
            "9188040d",
        ] {
            let error = one(&format!("{base}tenants = [\"{bad}\"]")).unwrap_err();
            assert!(
                error.message.contains("not a tenant id"),
                "{bad}: {}",
                error.message
            );
        }
        let p = one(&format!(
            "{base}tenants = [\"9188040D-6C67-4C5B-B112-36A304B66DAD\"]"
        ))
        .unwrap();
        assert_eq!(p.link, LinkMode::VerifiedEmail);
        assert_eq!(
            p.kind,
            UpstreamKind::Microsoft {
                discovery: "https://login.microsoftonline.com/common/v2.0".into(),
                tenants: vec!["9188040d-6c67-4c5b-b112-36a304b66dad".into()],
            }
        );
    }

    #[test]
    fn github_takes_no_trusted_domains_and_no_form_post() {
        let gh = "id = \"gh\"\nname = \"GitHub\"\npreset = \"github\"\nclient_id = \"c\"\nclient_secret = \"s\"\n";
        let error = one(&format!(
            "{gh}jit = true\ntrusted_email_domains = [\"corp.example\"]"
        ))
        .unwrap_err();
        assert!(
            error.message.contains("trusted_email_domains is refused"),
            "{}",
            error.message
        );
        let error = one(&format!("{gh}response_mode = \"form_post\"")).unwrap_err();
        assert!(
            error.message.contains("GitHub answers by query"),
            "{}",
            error.message
        );
        assert!(one(&format!("{gh}jit = true")).is_ok());
    }

    #[test]
    fn google_takes_no_end_session() {
        let error = one("id = \"g\"\nname = \"Google\"\npreset = \"google\"\nclient_id = \"c\"\nclient_secret = \"s\"\nend_session = true").unwrap_err();
        assert!(
            error.message.contains("no end_session_endpoint"),
            "{}",
            error.message
        );
    }

    #[test]
    fn a_tenant_id_is_a_lowercase_guid_in_an_issuer() {
        assert!(is_tenant_id("9188040D-6c67-4c5b-b112-36a304b66dad"));
        assert!(!is_tenant_id("9188040d-6c67-4c5b-b112-36a304b66da"));
        assert!(!is_tenant_id("9188040d6c674c5bb11236a304b66dad"));
        assert_eq!(
            issuer_for_tenant(
                MICROSOFT_ISSUER_TEMPLATE,
                "9188040D-6C67-4C5B-B112-36A304B66DAD"
            ),
            None
        );
    }

    #[test]
    fn private_key_jwt_needs_no_secret_and_names_one_of_our_algorithms() {
        let base = "id = \"corp\"\nname = \"Corp\"\nissuer = \"https://id.corp.example\"\nclient_id = \"c\"\ntoken_endpoint_auth_method = \"private_key_jwt\"\n";
        let p = one(base).unwrap();
        assert_eq!(
            p.auth_method,
            UpstreamAuthMethod::PrivateKeyJwt(KeyAlgorithm::Rs256)
        );
        assert!(p.client_secret.is_none());
        let es = one(&format!(
            "{base}token_endpoint_auth_signing_alg = \"ES256\""
        ))
        .unwrap();
        assert_eq!(
            es.auth_method,
            UpstreamAuthMethod::PrivateKeyJwt(KeyAlgorithm::Es256)
        );
        for (extra, message) in [
            (
                "token_endpoint_auth_signing_alg = \"HS256\"",
                "expected RS256",
            ),
            ("client_secret = \"s\"", "not used with private_key_jwt"),
        ] {
            let error = one(&format!("{base}{extra}")).unwrap_err();
            assert!(error.message.contains(message), "{}", error.message);
        }
        let error = one(&format!(
            "{GOOD}token_endpoint_auth_signing_alg = \"RS256\""
        ))
        .unwrap_err();
        assert!(error.message.contains("is for"), "{}", error.message);
        let error = one("id = \"gh\"\nname = \"GitHub\"\npreset = \"github\"\nclient_id = \"c\"\ntoken_endpoint_auth_method = \"private_key_jwt\"").unwrap_err();
        assert!(error.message.contains("github"), "{}", error.message);
    }

    #[test]
    fn ids_are_unique() {
        let text = format!("[[upstream]]\n{GOOD}\n[[upstream]]\n{GOOD}");
        let error = read(Some(&text)).unwrap_err();
        assert_eq!(error.key, "upstream[1] (corp)");
    }

    #[test]
    fn verified_email_linking_names_its_domains_and_a_preset_its_issuer() {
        let p = one("id = \"g\"\nname = \"Google\"\npreset = \"google\"\nclient_id = \"c\"\nclient_secret = \"s\"\nlink = \"verified_email\"\ntrusted_email_domains = [\"@Corp.Example\"]\njit = true").unwrap();
        assert_eq!(p.issuer, "https://accounts.google.com");
        assert_eq!(p.link, LinkMode::VerifiedEmail);
        assert_eq!(p.trusted_email_domains, ["corp.example"]);
        assert!(p.jit);
    }
}
