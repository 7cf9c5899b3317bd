// One test binary (each file under tests/ would link separately); see helpers.rs.
mod authorize;
mod backends;
mod cli;
mod cluster;
mod discovery;
mod faults;
mod flow;
mod helpers;
mod keys;
mod login;
mod logout;
mod registration;
mod session_contract;
mod sso;
mod store_contract;
mod token;
mod userinfo;
