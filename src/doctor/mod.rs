//! `tf-lock-reaper doctor`: gather the facts (each table and bucket through
//! the inspector ports, every `*.tf` file under the given directories) and
//! judge them with `domain::health`. One failing source or file never stops
//! the other checks.

use std::path::{Path, PathBuf};

use crate::domain::health::backend_block::backend_block_checks;
use crate::domain::health::bucket::bucket_checks;
use crate::domain::health::clock::clock_check;
use crate::domain::health::table::{table_checks, TableExpectations};
use crate::domain::health::{Check, DoctorReport};
use crate::domain::source::SourceAddress;
use crate::ports::clock::Clock;
use crate::ports::inspect::{BucketInspector, TableInspector};

/// What to check.
pub(crate) struct DoctorTargets<'a> {
    pub tables: &'a [SourceAddress],
    pub buckets: &'a [SourceAddress],
    pub config_dirs: &'a [PathBuf],
    pub expect: TableExpectations<'a>,
}

/// Run every check; the clock last, measured from the others' responses.
pub(crate) async fn run(
    targets: &DoctorTargets<'_>,
    tables: &dyn TableInspector,
    buckets: &dyn BucketInspector,
    clock: &dyn Clock,
) -> DoctorReport {
    let table_facts = futures::future::join_all(targets.tables.iter().map(|t| tables.table_facts(t)));
    let bucket_facts = futures::future::join_all(targets.buckets.iter().map(|b| buckets.bucket_facts(b)));
    let (table_facts, bucket_facts) = futures::join!(table_facts, bucket_facts);
    let mut checks = Vec::new();
    for (t, facts) in targets.tables.iter().zip(&table_facts) {
        checks.extend(table_checks(&t.to_string(), facts, targets.expect));
    }
    for (b, facts) in targets.buckets.iter().zip(&bucket_facts) {
        checks.extend(bucket_checks(b, facts));
    }
    for dir in targets.config_dirs {
        checks.extend(config_checks(dir));
    }
    checks.extend(clock_check(clock.aws_offset()));
    DoctorReport::new(checks)
}

/// Directories never searched: Terraform's data, modules it downloaded, VCS.
const SKIPPED: [&str; 3] = [".terraform", ".git", "node_modules"];

/// The backend blocks of every `*.tf` file under `dir`.
pub(crate) fn config_checks(dir: &Path) -> Vec<Check> {
    let mut files = Vec::new();
    if let Err(e) = collect_tf_files(dir, &mut files) {
        return vec![Check::fail(
            &dir.display().to_string(),
            "read",
            format!("cannot read the directory: {e}"),
            "pass an existing directory with --config",
        )];
    }
    files.sort();
    let mut checks = Vec::new();
    for file in files {
        let shown = file.display().to_string();
        let text = match std::fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) => {
                checks.push(Check::fail(&shown, "read", format!("cannot read the file: {e}"), "check its permissions"));
                continue;
            }
        };
        if !text.contains("backend") {
            continue;
        }
        let partials = tfbackend_files(file.parent().unwrap_or(Path::new(".")));
        checks.extend(backend_block_checks(&shown, &text, &partials));
    }
    checks
}

fn collect_tf_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let name = entry.file_name();
        if entry.file_type()?.is_dir() {
            if !SKIPPED.iter().any(|s| name == *s) {
                collect_tf_files(&path, out)?;
            }
        } else if path.extension().is_some_and(|e| e == "tf") {
            out.push(path);
        }
    }
    Ok(())
}

/// `(file name, text)` of the `*.tfbackend` files in `dir`, sorted.
fn tfbackend_files(dir: &Path) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "tfbackend"))
        .filter_map(|e| Some((e.file_name().to_string_lossy().into_owned(), std::fs::read_to_string(e.path()).ok()?)))
        .collect();
    found.sort();
    found
}
