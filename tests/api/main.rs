// One test binary (each file under tests/ would link separately); see helpers.rs.
mod authorize;
mod cli;
mod discovery;
mod flow;
mod helpers;
mod login;
mod logout;
mod registration;
mod sso;
mod token;
mod userinfo;
