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
pub mod memory_only;
pub mod protocol;
pub mod sessions;
pub mod startup;
pub mod store;
pub mod telemetry;
