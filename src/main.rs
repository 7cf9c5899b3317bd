use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    portcullis::startup::tune_allocator();
    let cli = portcullis::cli::Cli::parse();
    match portcullis::cli::run_cli(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
