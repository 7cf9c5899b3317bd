//! Portcullis: an OpenID Connect provider and OAuth 2.0 authorization server.
//!
//! Layers (see `../shared/DESIGN.md`): `http` adapts actix-web to `protocol`, which is plain
//! Rust over the `store` and `sessions` traits and the `crypto` signer.

pub mod admin;
pub mod audit;
pub mod cli;
pub mod client_keys;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod http;
pub mod keyring;
pub mod liveness_sync;
pub mod logout_delivery;
pub mod mail;
pub mod mail_delivery;
pub mod memory_only;
pub mod metrics;
pub mod protocol;
pub mod sessions;
pub mod startup;
pub mod store;
pub mod store_loss;
pub mod telemetry;
pub mod upstream;

/// The layers, lowest first (`../shared/DESIGN.md`). A module may use the modules of the
/// layers below its own, never one of its own layer or above: so no import climbs, and
/// none closes a circle. `architecture_tests` reads every `crate::` path in `src/` and
/// holds the code to this list.
pub const LAYERS: [&[&str]; 11] = [
    &["domain", "memory_only"],
    &["crypto"],
    &["audit", "config", "sessions", "store"],
    // The messages mail says, and how it leaves: use-cases in `protocol` queue mail.
    &["mail"],
    &["protocol", "keyring", "liveness_sync", "telemetry"],
    &["admin", "client_keys", "metrics", "upstream"],
    &["logout_delivery", "mail_delivery"],
    // Ends sessions lost with the session store, and wakes the logout outbox.
    &["store_loss"],
    &["http"],
    &["startup"],
    &["cli"],
];

#[cfg(test)]
mod architecture_tests {
    use std::path::Path;

    use super::LAYERS;

    fn layer_of(module: &str) -> Option<usize> {
        LAYERS.iter().position(|layer| layer.contains(&module))
    }

    /// `(module, text)`: the top-level module a file belongs to, and its code outside
    /// comments and test modules.
    fn sources(dir: &Path, out: &mut Vec<(String, String)>) {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                sources(&path, out);
                continue;
            }
            let relative = path
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if !relative.ends_with(".rs") || relative == "lib.rs" || relative == "main.rs" {
                continue;
            }
            let module = relative
                .split('/')
                .next()
                .unwrap()
                .trim_end_matches(".rs")
                .to_owned();
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text
                .split("#[cfg(test)]\nmod tests")
                .next()
                .unwrap()
                .lines()
                .map(|line| line.split("//").next().unwrap())
                .collect::<Vec<_>>()
                .join("\n");
            out.push((module, code));
        }
    }

    /// Every `crate::` path that runs against the layer list, as "from -> to".
    fn violations(files: &[(String, String)]) -> Vec<String> {
        let mut found = Vec::new();
        for (module, code) in files {
            let Some(from) = layer_of(module) else {
                found.push(format!("{module} is in no layer of LAYERS"));
                continue;
            };
            for (at, _) in code.match_indices("crate::") {
                let target: String = code[at + "crate::".len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if target == *module || target.is_empty() {
                    continue;
                }
                match layer_of(&target) {
                    Some(to) if to < from => {}
                    _ => found.push(format!("{module} -> {target}")),
                }
            }
        }
        found.sort();
        found.dedup();
        found
    }

    #[test]
    fn no_module_uses_one_of_its_own_layer_or_above() {
        let mut files = Vec::new();
        sources(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut files,
        );
        assert!(files.len() > 50, "read {} files", files.len());
        assert_eq!(violations(&files), Vec::<String>::new());
    }

    #[test]
    fn an_import_that_climbs_or_stays_on_its_layer_is_found() {
        let file = |module: &str, code: &str| (module.to_owned(), code.to_owned());
        assert_eq!(
            violations(&[
                file("domain", "use crate::http::State;"),
                file("store", "let x = crate::sessions::Sessions::new();"),
                file(
                    "http",
                    "use crate::protocol::Context; use crate::http::error;"
                ),
                file("elsewhere", ""),
            ]),
            [
                "domain -> http",
                "elsewhere is in no layer of LAYERS",
                "store -> sessions"
            ]
        );
    }
}
