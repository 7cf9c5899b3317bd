//! Property-based tests of the parsers that read what a client sends: whatever the input,
//! no panic, and a refusal is the error code the spec names for it.

use std::sync::LazyLock;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use portcullis::crypto::kek::KeyEncryptionKey;
use portcullis::crypto::keys::JwtExpectations;
use portcullis::crypto::{KeyAlgorithm, KeySet, SigningKey};
use portcullis::domain::{ApplicationType, Scopes, Secret};
use portcullis::http::endpoints::client_request::parse_basic;
use portcullis::protocol::client_auth::{JWT_BEARER_ASSERTION, PresentedCredentials};
use portcullis::protocol::registration::{check_redirect_uri, draft_from_json, register};
use portcullis::protocol::{ErrorCode, OAuthError, Params};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Map, Value, json};

/// Few enough cases that the whole file runs in seconds in a debug build; no regression
/// files written into the source tree (a failure prints its minimal input).
fn config() -> ProptestConfig {
    ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::with_cases(256)
    }
}

fn code<T>(result: &Result<T, OAuthError>) -> Option<ErrorCode> {
    result.as_ref().err().map(|e| e.code)
}

/// Any text, weighted towards the characters parsers split on or escape.
fn tricky_text() -> impl Strategy<Value = String> {
    let tricky = prop_oneof![
        4 => prop::char::range('a', 'f'),
        2 => prop::sample::select(vec![
            '=', '&', '%', '+', ' ', ':', '#', '/', '?', '@', '.', '[', ']', '\\', '"', '\0',
            '\t', '\n', '\x7f', 'é', '\u{202e}', '\u{fffd}',
        ]),
        1 => any::<char>(),
    ];
    prop_oneof![
        prop::collection::vec(tricky, 0..24).prop_map(|c| c.into_iter().collect()),
        any::<String>(),
    ]
}

// --- Params (RFC 6749 §3.1) -----------------------------------------------------------

const PARAM_NAMES: [&str; 6] = ["a", "client_id", "scope", "state", "", "x y"];

#[test]
fn properties_params_parse_any_text_or_refuse_with_invalid_request() {
    proptest!(config(), |(text in tricky_text())| {
        match Params::from_urlencoded(&text) {
            Err(e) => prop_assert_eq!(e.code, ErrorCode::InvalidRequest),
            Ok(params) => {
                for name in PARAM_NAMES {
                    let single = code(&params.single(name));
                    prop_assert!(matches!(single, None | Some(ErrorCode::InvalidRequest)));
                    let required = code(&params.required(name));
                    prop_assert!(matches!(required, None | Some(ErrorCode::InvalidRequest)));
                }
            }
        }
    });
}

fn pairs() -> impl Strategy<Value = Vec<(String, String)>> {
    let name = prop_oneof![
        prop::sample::select(PARAM_NAMES.to_vec()).prop_map(str::to_owned),
        tricky_text()
    ];
    let value = prop_oneof![Just(String::new()), tricky_text()];
    prop::collection::vec((name, value), 0..6)
}

fn urlencode(pairs: &[(String, String)]) -> String {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        out.append_pair(k, v);
    }
    out.finish()
}

#[test]
fn properties_params_repeated_non_empty_names_are_invalid_request() {
    let value = || tricky_text().prop_filter("non-empty", |v| !v.is_empty());
    proptest!(config(), |(
        name in tricky_text(),
        first in value(),
        second in value(),
        mut others in pairs(),
        at in any::<Index>(),
        encoded in any::<bool>(),
    )| {
        others.insert(0, (name.clone(), first));
        others.insert(at.index(others.len() + 1), (name.clone(), second));
        let params = if encoded {
            Params::from_urlencoded(&urlencode(&others)).unwrap()
        } else {
            Params::new(others)
        };
        prop_assert_eq!(code(&params.single(&name)), Some(ErrorCode::InvalidRequest));
        prop_assert_eq!(code(&params.required(&name)), Some(ErrorCode::InvalidRequest));
    });
}

#[test]
fn properties_params_a_single_value_round_trips_through_form_encoding() {
    proptest!(config(), |(name in tricky_text(), value in tricky_text(), others in pairs())| {
        let others: Vec<_> = others.into_iter().filter(|(k, _)| *k != name).collect();
        let mut all = others.clone();
        all.push((name.clone(), value.clone()));
        let params = Params::from_urlencoded(&urlencode(&all)).unwrap();
        let expected = (!value.is_empty()).then_some(value.as_str());
        prop_assert_eq!(params.single(&name).unwrap(), expected);
    });
}

// --- HTTP Basic client credentials (RFC 6749 §2.3.1) ----------------------------------

#[test]
fn properties_basic_any_header_value_is_credentials_or_invalid_client() {
    let value = prop_oneof![
        tricky_text(),
        (
            prop::sample::select(vec!["Basic", "basic", "BASIC", "Bearer", ""]),
            prop::sample::select(vec![" ", "  ", "\t", ""]),
            prop::collection::vec(any::<u8>(), 0..40),
            tricky_text(),
        )
            .prop_map(|(scheme, gap, bytes, tail)| {
                let mut encoded = STANDARD.encode(bytes);
                if tail.len() % 3 == 0 {
                    encoded.push_str(&tail);
                }
                format!("{scheme}{gap}{encoded}")
            }),
    ];
    proptest!(config(), |(value in value)| {
        let parsed = parse_basic(&value);
        prop_assert!(parsed.is_ok() || code(&parsed) == Some(ErrorCode::InvalidClient));
    });
}

#[test]
fn properties_basic_form_encoded_id_and_secret_round_trip() {
    proptest!(config(), |(id in tricky_text(), secret in tricky_text())| {
        let escape = |s: &str| {
            url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>()
        };
        let joined = format!("{}:{}", escape(&id), escape(&secret));
        let header = format!("Basic {}", STANDARD.encode(joined));
        let (parsed_id, parsed_secret) = parse_basic(&header).unwrap();
        prop_assert_eq!(parsed_id, id);
        prop_assert_eq!(parsed_secret.expose(), &secret);
    });
}

// --- JWTs we issued (RFC 7519, RFC 9068) ----------------------------------------------

const ISSUER: &str = "https://op.example";
const NOW: i64 = 1_700_000_000;

struct Keys {
    set: KeySet,
    kids: Vec<String>,
}

static KEYS: LazyLock<Keys> = LazyLock::new(|| {
    let rsa = SigningKey::generate(KeyAlgorithm::Rs256).unwrap().0;
    let ec = SigningKey::generate(KeyAlgorithm::Es256).unwrap().0;
    let kids = vec![rsa.kid().to_owned(), ec.kid().to_owned()];
    Keys {
        set: KeySet::new(vec![rsa, ec]),
        kids,
    }
});

fn expectations() -> JwtExpectations<'static> {
    JwtExpectations {
        issuer: ISSUER,
        typ: Some("at+jwt"),
        now: Some(NOW),
        audience: None,
    }
}

fn verify(token: &str) -> Result<Value, portcullis::crypto::keys::JwtError> {
    KEYS.set.verify::<Value>(token, &expectations())
}

fn valid_token(alg: KeyAlgorithm) -> String {
    let claims = json!({"iss": ISSUER, "sub": "alice", "exp": NOW + 60, "client_id": "rp"});
    KEYS.set
        .signing_key(alg, NOW)
        .unwrap()
        .sign_jwt("at+jwt", &claims)
        .unwrap()
}

fn algorithm() -> impl Strategy<Value = KeyAlgorithm> {
    prop::sample::select(vec![KeyAlgorithm::Rs256, KeyAlgorithm::Es256])
}

#[test]
fn properties_jwt_arbitrary_text_is_refused() {
    let part = "[A-Za-z0-9_-]{0,60}";
    let token = prop_oneof![
        tricky_text(),
        (part, part, part).prop_map(|(h, p, s)| format!("{h}.{p}.{s}")),
    ];
    proptest!(config(), |(token in token)| {
        prop_assert!(verify(&token).is_err());
    });
}

/// A JSON value for a header or claims member: what a forger would try.
fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        prop::sample::select(vec![
            "RS256", "ES256", "none", "HS256", "at+jwt", "JWT", ISSUER
        ])
        .prop_map(Value::from),
        tricky_text().prop_map(Value::from),
    ]
}

/// A `typ` header: any JSON value, or text around the optional `application/` prefix with
/// a multi-byte character near its end (where a byte-indexed slice would panic).
fn typ() -> impl Strategy<Value = Value> {
    let near_prefix = (
        prop::sample::select(vec![
            "application/at+jwt",
            "APPLICATION/AT+JWT",
            "aaaaaaaaaaaaaaaa",
        ]),
        0usize..15,
        prop::sample::select(vec!['é', '\u{202e}', '\u{1f600}']),
        tricky_text(),
    )
        .prop_map(|(ascii, len, wide, tail)| format!("{}{wide}{tail}", &ascii[..len]));
    prop_oneof![
        2 => json_leaf(),
        1 => prop::sample::select(vec!["at+jwt", "AT+JWT", "application/at+jwt", " at+jwt "])
            .prop_map(Value::from),
        3 => near_prefix.prop_map(Value::from),
    ]
}

#[test]
fn properties_jwt_forged_tokens_naming_our_keys_are_refused() {
    // Headers that get past the kid lookup (a real kid, the matching alg) to the checks
    // behind it, with an arbitrary typ, claims and signature.
    let header = (any::<Index>(), prop::option::of(typ()), any::<bool>()).prop_map(
        |(kid, typ, right_alg)| {
            let kid = kid.index(KEYS.kids.len());
            let alg = match (kid, right_alg) {
                (0, true) | (1, false) => "RS256",
                _ => "ES256",
            };
            let mut header = json!({"alg": alg, "kid": KEYS.kids[kid]});
            if let Some(typ) = typ {
                header["typ"] = typ;
            }
            header
        },
    );
    let claims = prop::collection::btree_map(
        prop::sample::select(vec!["iss", "sub", "exp", "nbf", "aud", "x"]),
        json_leaf(),
        0..6,
    );
    let signature = prop::collection::vec(any::<u8>(), 0..300);
    proptest!(config(), |(header in header, claims in claims, signature in signature)| {
        let claims: Map<String, Value> =
            claims.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        let token = format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(Value::Object(claims).to_string()),
            URL_SAFE_NO_PAD.encode(signature),
        );
        prop_assert!(verify(&token).is_err());
    });
}

#[test]
fn properties_jwt_a_valid_token_with_one_byte_flipped_is_refused() {
    proptest!(config(), |(alg in algorithm(), at in any::<Index>(), bit in 0u8..7)| {
        let token = valid_token(alg);
        prop_assert!(verify(&token).is_ok());
        let mut bytes = token.into_bytes();
        let at = at.index(bytes.len());
        bytes[at] ^= 1 << bit;
        // ASCII with one of its low seven bits flipped is still ASCII.
        let flipped = String::from_utf8(bytes).unwrap();
        prop_assert!(verify(&flipped).is_err(), "byte {} bit {}: {}", at, bit, flipped);
    });
}

/// The `typ` check runs before the signature's and used to slice the header's `typ` at
/// byte 12: a `typ` whose 12th byte falls inside a multi-byte character panicked there.
#[test]
fn properties_jwt_a_multibyte_typ_is_refused_not_a_panic() {
    let header = json!({"alg": "ES256", "kid": KEYS.kids[1], "typ": "aaaaaaaaaaaé"});
    let token = format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(json!({"iss": ISSUER}).to_string()),
        URL_SAFE_NO_PAD.encode([0u8; 64]),
    );
    assert!(verify(&token).is_err());
}

// --- Dynamic registration (RFC 7591, OIDC Registration) ---------------------------------

const REGISTRATION_KEYS: [&str; 12] = [
    "redirect_uris",
    "grant_types",
    "response_types",
    "scope",
    "token_endpoint_auth_method",
    "application_type",
    "jwks",
    "jwks_uri",
    "client_name",
    "require_pkce",
    "contacts",
    "logo_uri",
];

/// Strings a registration would carry, valid and not.
fn metadata_string() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => prop::sample::select(vec![
            "https://rp.example/cb",
            "https://rp.example/cb#x",
            "http://127.0.0.1:8080/cb",
            "http://localhost/cb",
            "http://[::1]/cb",
            "http://rp.example/cb",
            "https:///cb",
            "https://user:pw@rp.example/cb",
            "com.example.app:/cb",
            "javascript:alert(1)",
            "about:blank",
            "/relative",
            "authorization_code",
            "client_credentials",
            "refresh_token",
            "implicit",
            "code",
            "token",
            "openid email offline_access",
            "openid api:admin",
            "none",
            "client_secret_basic",
            "client_secret_post",
            "client_secret_jwt",
            "private_key_jwt",
            "web",
            "native",
            "",
        ])
        .prop_map(str::to_owned),
        1 => tricky_text(),
    ]
}

fn metadata_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::from),
        1 => any::<i64>().prop_map(Value::from),
        1 => any::<f64>().prop_map(|f| json!(f)),
        3 => metadata_string().prop_map(Value::from),
    ]
}

/// A JWK Set, or something shaped like one: keys with arbitrary members.
fn jwks_like() -> impl Strategy<Value = Value> {
    let member = prop::sample::select(vec![
        "kty", "kid", "alg", "use", "n", "e", "crv", "x", "y", "d", "k",
    ]);
    let value = prop_oneof![
        prop::sample::select(vec!["RSA", "EC", "oct", "P-256", "AQAB", "RS256", "sig"])
            .prop_map(Value::from),
        metadata_leaf(),
    ];
    let key = prop::collection::btree_map(member, value, 0..6)
        .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()));
    prop_oneof![
        prop::collection::vec(key, 0..3).prop_map(|keys| json!({ "keys": keys })),
        Just(json!({"keys": [KEYS_JWK.clone()]})),
    ]
}

/// A real public key, so that some generated sets are valid.
static KEYS_JWK: LazyLock<Value> = LazyLock::new(|| {
    let es256 = KEYS.set.signing_key(KeyAlgorithm::Es256, NOW).unwrap();
    es256.public_jwk().clone()
});

fn metadata_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        2 => metadata_leaf(),
        2 => prop::collection::vec(metadata_leaf(), 0..4).prop_map(Value::Array),
        2 => prop::collection::vec(metadata_string(), 0..4).prop_map(|v| json!(v)),
        1 => jwks_like(),
    ]
}

fn registration_body() -> impl Strategy<Value = Value> {
    prop_oneof![
        8 => prop::collection::btree_map(
            prop::sample::select(REGISTRATION_KEYS.to_vec()),
            metadata_value(),
            0..8,
        )
        .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
        1 => metadata_value(),
    ]
}

#[test]
fn properties_registration_is_accepted_or_invalid_client_metadata_or_redirect_uri() {
    let kek = KeyEncryptionKey::from_bytes(&[7; 32]).unwrap();
    proptest!(config(), |(body in registration_body())| {
        let result = draft_from_json(&body).and_then(|draft| register(draft, ISSUER, &kek, 0));
        prop_assert!(
            matches!(
                code(&result),
                None | Some(ErrorCode::InvalidClientMetadata | ErrorCode::InvalidRedirectUri)
            ),
            "{} gave {:?}",
            body,
            result.err()
        );
        if let Ok(registered) = result {
            let client = registered.client;
            for uri in &client.redirect_uris {
                prop_assert!(check_redirect_uri(uri, client.application_type).is_ok());
            }
        }
    });
}

// --- Redirect URIs (RFC 6749 §3.1.2, RFC 8252 §7) -------------------------------------

fn uri_like() -> impl Strategy<Value = String> {
    let scheme = prop_oneof![
        prop::sample::select(vec![
            "https",
            "http",
            "HTTPS",
            "HtTp",
            "javascript",
            "data",
            "file",
            "vbscript",
            "com.example.app",
            "about",
            "blob",
            "ftp",
            "",
        ])
        .prop_map(str::to_owned),
        "[a-zA-Z][a-zA-Z0-9+.-]{0,8}",
    ];
    let separator = prop::sample::select(vec!["://", ":", ":/", ":///", ":\\\\", "//", " ://"]);
    let authority = prop_oneof![
        prop::sample::select(vec![
            "rp.example",
            "localhost",
            "LOCALHOST",
            "127.0.0.1",
            "127.1",
            "0x7f.1",
            "[::1]",
            "[0:0:0:0:0:0:0:1]",
            "localhost:8080",
            "localhost.",
            "localhost.rp.example",
            "user:pw@rp.example",
            "localhost@rp.example",
            "rp.example@localhost",
            "",
        ])
        .prop_map(str::to_owned),
        tricky_text(),
    ];
    let path = prop_oneof![Just(String::new()), Just("/cb".to_owned()), tricky_text()];
    let suffix = prop::sample::select(vec!["", "#", "#frag", "?q=1", "?#", "%23", "\t#x", "\n"]);
    prop_oneof![
        4 => (scheme, separator, authority, path, suffix)
            .prop_map(|(s, sep, a, p, x)| format!("{s}{sep}{a}{p}{x}")),
        1 => tricky_text(),
    ]
}

#[test]
fn properties_redirect_uri_is_accepted_or_invalid_redirect_uri() {
    proptest!(config(), |(uri in uri_like(), native in any::<bool>())| {
        let application_type = if native { ApplicationType::Native } else { ApplicationType::Web };
        let result = check_redirect_uri(&uri, application_type);
        prop_assert!(
            matches!(code(&result), None | Some(ErrorCode::InvalidRedirectUri)),
            "{:?} ({}) gave {:?}", uri, application_type.as_str(), result
        );
    });
}

#[test]
fn properties_redirect_uri_accepted_for_web_is_https_or_loopback_http_without_fragment() {
    proptest!(config(), |(uri in uri_like())| {
        if check_redirect_uri(&uri, ApplicationType::Web).is_ok() {
            let url = url::Url::parse(&uri);
            prop_assert!(url.is_ok(), "{:?} accepted but does not parse", uri);
            let url = url.unwrap();
            prop_assert!(url.fragment().is_none() && !uri.contains('#'), "{:?}", uri);
            let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
            let secure = url.scheme() == "https" && url.host_str().is_some_and(|h| !h.is_empty());
            prop_assert!(
                secure || (url.scheme() == "http" && loopback),
                "{:?} accepted for a web client", uri
            );
        }
    });
}

#[test]
fn properties_redirect_uri_accepted_for_native_parses_without_fragment_or_script_scheme() {
    proptest!(config(), |(uri in uri_like())| {
        if check_redirect_uri(&uri, ApplicationType::Native).is_ok() {
            let url = url::Url::parse(&uri);
            prop_assert!(url.is_ok(), "{:?} accepted but does not parse", uri);
            let url = url.unwrap();
            prop_assert!(url.fragment().is_none() && !uri.contains('#'), "{:?}", uri);
            prop_assert!(
                !matches!(url.scheme(), "javascript" | "data" | "file" | "vbscript"),
                "{:?} accepted for a native client", uri
            );
        }
    });
}

// --- Scopes (RFC 6749 §3.3) -------------------------------------------------------------

fn is_scope_token(token: &str) -> bool {
    !token.is_empty()
        && token
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}

fn scope_text() -> impl Strategy<Value = String> {
    let c = prop_oneof![
        6 => prop::char::range('a', 'e'),
        3 => Just(' '),
        2 => prop::sample::select(vec![
            '!', '"', '#', '[', '\\', ']', '~', '\x7f', '\t', '\0', ':', 'é',
        ]),
        1 => any::<char>(),
    ];
    prop_oneof![
        4 => prop::collection::vec(c, 0..30).prop_map(|c| c.into_iter().collect()),
        1 => any::<String>(),
    ]
}

#[test]
fn properties_scopes_parse_exactly_the_well_formed_tokens_and_print_reparseably() {
    proptest!(config(), |(text in scope_text())| {
        let tokens: std::collections::BTreeSet<&str> =
            text.split(' ').filter(|t| !t.is_empty()).collect();
        match Scopes::parse(&text) {
            None => prop_assert!(tokens.iter().any(|t| !is_scope_token(t)), "{:?}", text),
            Some(scopes) => {
                prop_assert!(scopes.iter().all(is_scope_token), "{:?}", text);
                prop_assert_eq!(&scopes.iter().collect::<std::collections::BTreeSet<_>>(), &tokens);
                let printed = scopes.to_string();
                prop_assert_eq!(Scopes::parse(&printed), Some(scopes));
            }
        }
    });
}

// --- Client credentials in the body (RFC 6749 §2.3, RFC 7523 §2.2) ----------------------

#[test]
fn properties_presented_credentials_are_read_or_invalid_request_or_invalid_client() {
    let name = prop::sample::select(vec![
        "client_id",
        "client_secret",
        "client_assertion_type",
        "client_assertion",
        "grant_type",
    ])
    .prop_map(str::to_owned);
    let value = prop_oneof![
        Just(String::new()),
        Just(JWT_BEARER_ASSERTION.to_owned()),
        Just("rp".to_owned()),
        tricky_text(),
    ];
    let basic = prop::option::of((
        prop_oneof![Just("rp".to_owned()), tricky_text()],
        tricky_text(),
    ));
    proptest!(config(), |(
        pairs in prop::collection::vec((name, value), 0..6),
        basic in basic,
        with_basic in prop::bool::weighted(0.25),
    )| {
        let params = Params::new(pairs);
        let basic = basic
            .filter(|_| with_basic)
            .map(|(id, secret)| (id, Secret::new(secret)));
        let result = PresentedCredentials::from_request(basic, &params);
        prop_assert!(
            matches!(
                code(&result),
                None | Some(ErrorCode::InvalidRequest | ErrorCode::InvalidClient)
            ),
            "{:?} gave {:?}", params, result
        );
    });
}
