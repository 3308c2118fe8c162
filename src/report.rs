//! The run report: one plain serializable struct per run, returned by the
//! Lambda, printed by the CLI as a table or JSON, and the source of metrics.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::Action;
use crate::decide::ActionTaken;
use crate::model::{Lock, SourceKind, Unreadable};
use crate::notify::NotificationRecord;
use crate::policy::Verdict;

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub started_at: DateTime<Utc>,
    pub duration_ms: u64,
    pub action: Action,
    pub dry_run: bool,
    /// No source failed to scan and no write failed.
    pub ok: bool,
    /// The deadline stopped some writes from starting.
    pub partial: bool,
    pub breaker_tripped: bool,
    pub max_deletes_per_run: usize,
    /// Deletes the policy asked for, before breaker and dry run.
    pub planned_deletes: usize,
    /// Every lock table, then every lock bucket, in configuration order.
    pub sources: Vec<SourceReport>,
    /// Every notification attempted, with its outcome.
    pub notifications: Vec<NotificationRecord>,
    pub alerts_sent: usize,
    pub alert_errors: usize,
}

/// One lock table or lock bucket.
#[derive(Debug, Clone, Serialize)]
pub struct SourceReport {
    pub kind: SourceKind,
    /// Table name, or `bucket` / `bucket/prefix` as configured.
    pub name: String,
    /// Set when the source could not be read; the counts are then zero.
    pub scan_error: Option<String>,
    pub counts: Counts,
    pub oldest_lock_age_seconds: Option<u64>,
    /// Every lock held, stale or not.
    pub locks: Vec<LockReport>,
    pub unreadable: Vec<Unreadable>,
}

/// Per-source counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub locks_held: usize,
    pub stale: usize,
    pub excluded: usize,
    pub unreadable: usize,
    pub digests: usize,
    pub deleted: usize,
    pub changed: usize,
    pub ttl_backfilled: usize,
    pub errors: usize,
}

/// One lock, what the policy said, and what was done.
#[derive(Debug, Clone, Serialize)]
pub struct LockReport {
    #[serde(flatten)]
    pub lock: Lock,
    #[serde(flatten)]
    pub verdict: Verdict,
    pub action: ActionTaken,
    /// The write withheld or the error met, when there is one.
    pub detail: Option<String>,
    /// Double locking: the other half of this lock (same ID and state path,
    /// in a table for a lockfile, in a bucket for a table item).
    pub paired_with: Option<HalfRef>,
}

impl LockReport {
    /// The lockfile half of a double lock: its table half acts, pages and
    /// is told about for both.
    pub fn is_lockfile_half(&self) -> bool {
        self.lock.kind == SourceKind::Bucket && self.paired_with.is_some()
    }
}

/// Where the other half of a double lock is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HalfRef {
    pub kind: SourceKind,
    pub source: String,
    pub lock_key: String,
}

impl SourceReport {
    pub fn new(kind: SourceKind, name: &str) -> Self {
        SourceReport {
            kind,
            name: name.to_string(),
            scan_error: None,
            counts: Counts::default(),
            oldest_lock_age_seconds: None,
            locks: Vec::new(),
            unreadable: Vec::new(),
        }
    }

    pub fn failed(kind: SourceKind, name: &str, error: String) -> Self {
        SourceReport {
            kind,
            name: name.to_string(),
            scan_error: Some(error),
            counts: Counts::default(),
            oldest_lock_age_seconds: None,
            locks: Vec::new(),
            unreadable: Vec::new(),
        }
    }

    /// `, N digest(s)` for tables; buckets have no digest items.
    pub fn digest_note(&self) -> String {
        match self.kind {
            SourceKind::Table => format!(", {} digest(s)", self.counts.digests),
            SourceKind::Bucket => String::new(),
        }
    }

    /// Recompute counts from the items (after actions were recorded).
    pub fn recount(&mut self) {
        let count = |a: ActionTaken| self.locks.iter().filter(|l| l.action == a).count();
        let counts = Counts {
            locks_held: self.locks.len(),
            stale: self.locks.iter().filter(|l| l.verdict.stale).count(),
            excluded: count(ActionTaken::Excluded),
            unreadable: self.unreadable.len(),
            digests: self.counts.digests,
            deleted: count(ActionTaken::Deleted),
            changed: count(ActionTaken::Changed),
            ttl_backfilled: count(ActionTaken::Ttl),
            errors: count(ActionTaken::Error),
        };
        self.oldest_lock_age_seconds = self.locks.iter().map(|l| l.verdict.age_seconds).max();
        self.counts = counts;
    }
}

impl RunReport {
    /// Human-readable summary and lock table for the CLI.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        let mode =
            if self.dry_run { format!("{} (dry run)", self.action.as_str()) } else { self.action.as_str().to_string() };
        let _ = writeln!(
            out,
            "tf-lock-reaper run: action={mode} status={}{}{} ({} ms)",
            if self.ok { "ok" } else { "FAILED" },
            if self.partial { " partial(deadline)" } else { "" },
            if self.breaker_tripped {
                format!(
                    " BREAKER TRIPPED ({} deletes planned > MAX_DELETES_PER_RUN={})",
                    self.planned_deletes, self.max_deletes_per_run
                )
            } else {
                String::new()
            },
            self.duration_ms
        );
        for t in &self.sources {
            let _ = writeln!(out);
            if let Some(e) = &t.scan_error {
                let _ = writeln!(out, "{} {}: SCAN FAILED: {e}", t.kind.as_str(), t.name);
                continue;
            }
            let c = &t.counts;
            let _ = writeln!(
                out,
                "{} {}: {} lock(s), {} stale, {} excluded, {} unreadable{}; deleted {}, changed {}, ttl {}, errors {}",
                t.kind.as_str(),
                t.name,
                c.locks_held,
                c.stale,
                c.excluded,
                c.unreadable,
                t.digest_note(),
                c.deleted,
                c.changed,
                c.ttl_backfilled,
                c.errors
            );
            if !t.locks.is_empty() {
                out.push_str(&render_lock_table(t.locks.iter()));
            }
            for u in &t.unreadable {
                let _ = writeln!(out, "  UNREADABLE {}: {}", u.lock_key.as_deref().unwrap_or("<no LockID>"), u.reason);
            }
        }
        if !self.notifications.is_empty() {
            let _ = writeln!(out, "\nnotifications: {} sent, {} failed", self.alerts_sent, self.alert_errors);
            for n in &self.notifications {
                let _ = writeln!(
                    out,
                    "  {:<9} {:<8} {:<16} {:<7} {}{}",
                    n.channel,
                    n.event.map(|e| e.as_str()).unwrap_or("-"),
                    n.kind.map(|k| k.as_str()).unwrap_or("-"),
                    n.outcome.as_str(),
                    n.lock_id.as_deref().or(n.table.as_deref()).unwrap_or(""),
                    n.detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default()
                );
            }
        }
        out
    }
}

/// Column-aligned table of locks (used by `run` and `list`).
pub fn render_lock_table<'a>(locks: impl Iterator<Item = &'a LockReport>) -> String {
    let header = ["LOCK ID", "AGE", "STALE", "ACTION", "OPERATION", "WHO", "STATE PATH"];
    let rows: Vec<[String; 7]> = locks
        .map(|l| {
            let action = match &l.detail {
                Some(d) => format!("{} ({d})", l.action.as_str()),
                None => l.action.as_str().to_string(),
            };
            [
                l.lock.id.clone(),
                format_age(l.verdict.age_seconds),
                if l.verdict.stale {
                    format!("yes (> {})", format_age(l.verdict.window_seconds))
                } else {
                    "no".to_string()
                },
                action,
                l.lock.operation.clone(),
                l.lock.who.clone(),
                match &l.paired_with {
                    Some(h) => format!("{} (double lock: + {} {})", l.lock.state_path, h.kind.as_str(), h.source),
                    None => l.lock.state_path.clone(),
                },
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: &[&str]| {
        out.push(' ');
        for (cell, w) in cells.iter().zip(widths) {
            let _ = write!(out, " {cell:<w$}");
        }
        let trimmed = out.trim_end().len();
        out.truncate(trimmed);
        out.push('\n');
    };
    line(&mut out, &header);
    for row in &rows {
        let cells: Vec<&str> = row.iter().map(String::as_str).collect();
        line(&mut out, &cells);
    }
    out
}

/// `3h12m`, `45s`, `2d4h`: coarse enough to read at a glance.
pub fn format_age(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m{s:02}s"),
        (0, _, _) => format!("{h}h{m:02}m"),
        _ => format!("{d}d{h:02}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages() {
        assert_eq!(format_age(5), "5s");
        assert_eq!(format_age(65), "1m05s");
        assert_eq!(format_age(3 * 3600 + 12 * 60), "3h12m");
        assert_eq!(format_age(2 * 86400 + 4 * 3600), "2d04h");
    }
}
