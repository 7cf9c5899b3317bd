//! `users import FILE [--dry-run]` and `users export` (README, "Moving in"): the file and
//! the terminal; `admin::import` checks and writes.

use std::io::{BufReader, BufWriter};
use std::path::Path;

use anyhow::Context as _;

use super::as_operator;
use crate::admin::ImportReport;
use crate::config::Settings;
use crate::store::sql::SqlStore;

/// Imports `file` (`-`: standard input) and says what was done, or would be.
pub(super) fn import(
    settings: &Settings,
    store: &SqlStore,
    file: &Path,
    dry_run: bool,
) -> anyhow::Result<()> {
    let report = if file == Path::new("-") {
        let stdin = std::io::stdin().lock();
        as_operator(settings, store, |a| a.import_users(stdin, "stdin", dry_run))?
    } else {
        let source = file.display().to_string();
        let opened = std::fs::File::open(file).with_context(|| format!("cannot open {source}"))?;
        as_operator(settings, store, |a| {
            a.import_users(BufReader::new(opened), &source, dry_run)
        })?
    };
    print!("{}", summary(&report));
    Ok(())
}

/// What an import did, or (a dry run) would do: one line per user that would be created,
/// then the counts.
fn summary(report: &ImportReport) -> String {
    let mut out = String::new();
    if report.dry_run {
        out.push_str("dry run: nothing was written\n");
        for (line, username) in &report.planned {
            out.push_str(&format!("would create {username} (line {line})\n"));
        }
    }
    out.push_str(&format!(
        "{} {} users (password hashes: {}); {} disabled; {} group memberships\n",
        if report.dry_run {
            "would import"
        } else {
            "imported"
        },
        report.users,
        report.kinds(),
        report.disabled,
        report.group_memberships,
    ));
    out
}

/// Every user, one JSON line each, on standard output.
pub(super) fn export(settings: &Settings, store: &SqlStore) -> anyhow::Result<()> {
    let mut out = BufWriter::new(std::io::stdout().lock());
    as_operator(settings, store, |a| a.export_users(&mut out))?;
    Ok(())
}
