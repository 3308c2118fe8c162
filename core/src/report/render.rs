//! The report as a person reads it: the `run` summary, the `list` view and
//! the lock table both share.

use std::fmt::Write as _;

pub use crate::age::format_age;
use crate::clock::{ClockOffset, CLOCK_OFFSET_WARN_OVER};
use crate::report::{LockReport, RunReport, SourceReport, TtlCheck};

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
        render_clock(&mut out, self.clock_offset);
        if let Some(d) = &self.discovery {
            render_discovery(&mut out, d);
        }
        for t in &self.sources {
            let _ = writeln!(out);
            render_source(&mut out, t, SourceView::Run);
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
                    n.lock_id.as_deref().or(n.source_name.as_deref()).unwrap_or(""),
                    n.detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default()
                );
            }
        }
        out
    }
}

/// `discovery: 4 account(s) × 2 region(s) …` and one line per failure.
pub fn render_discovery(out: &mut String, d: &crate::discovery::DiscoverySummary) {
    let _ = writeln!(
        out,
        "discovery: {} lock table(s) and {} lockfile bucket(s) in {} account(s) ({} account/region pair(s) searched; \
         {} skipped, {} not active, {} other table(s)) at {}",
        d.tables,
        d.buckets,
        d.accounts,
        d.searched,
        d.skipped_accounts,
        d.inactive_accounts,
        d.other_tables,
        d.discovered_at
    );
    for t in &d.unknown_targets {
        let _ = writeln!(out, "  DISCOVERY: {t} names nothing in the organisation (check ORGANIZATION_ACCOUNTS)");
    }
    for f in &d.failures {
        let _ = writeln!(out, "  DISCOVERY FAILED {}", f.describe());
    }
}

/// `tf-lock-reaper list`: every source with its locks and unreadable items.
pub fn render_list(sources: &[SourceReport], clock_offset: Option<ClockOffset>) -> String {
    let mut out = String::new();
    render_clock(&mut out, clock_offset);
    for t in sources {
        render_source(&mut out, t, SourceView::List);
    }
    out
}

/// The clock line, when this machine's clock is off by more than
/// [`CLOCK_OFFSET_WARN_OVER`].
fn render_clock(out: &mut String, offset: Option<ClockOffset>) {
    if let Some(o) = offset.filter(|o| o.exceeds(CLOCK_OFFSET_WARN_OVER)) {
        let _ = writeln!(out, "clock: {}; ages and heartbeats are judged on AWS's clock", o.describe());
    }
}

/// Which headline a source gets: `run` adds the policy and action counts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SourceView {
    Run,
    List,
}

/// One source: its headline (or why it could not be read), its locks and
/// its unreadable items.
fn render_source(out: &mut String, t: &SourceReport, view: SourceView) {
    if let Some(e) = &t.scan_error {
        let _ = writeln!(out, "{} {}: SCAN FAILED: {e}", t.kind.as_str(), t.name);
        return;
    }
    let c = &t.counts;
    let _ = match view {
        SourceView::Run => writeln!(
            out,
            "{} {}: {} lock(s), {} stale, {} excluded, {} unreadable{}; deleted {}, changed {}, gone {}, ttl {}, \
                errors {}",
            t.kind.as_str(),
            t.name,
            c.locks_held,
            c.stale,
            c.excluded,
            c.unreadable,
            t.digest_note(),
            c.deleted,
            c.changed,
            c.gone,
            c.ttl_backfilled,
            c.errors
        ),
        SourceView::List => writeln!(
            out,
            "{} {}: {} lock(s), {} unreadable{}",
            t.kind.as_str(),
            t.name,
            t.locks.len(),
            t.unreadable.len(),
            t.digest_note()
        ),
    };
    if let Some(TtlCheck::Disabled { detail, .. }) = &t.ttl {
        let _ = writeln!(
            out,
            "  TTL NOT ENABLED: {detail}: ACTION=ttl writes do nothing (`tf-lock-reaper doctor` shows the fix)"
        );
    }
    if !t.locks.is_empty() {
        out.push_str(&render_lock_table(t.locks.iter()));
    }
    for l in &t.locks {
        if let Some(note) = l.verdict.clock_note {
            let _ = writeln!(out, "  CLOCK {}: {}", l.lock.id, note.describe());
        }
    }
    for u in &t.unreadable {
        let _ = writeln!(out, "  UNREADABLE {}: {}", u.lock_key.as_deref().unwrap_or("<no LockID>"), u.reason);
    }
}

/// Column-aligned table of locks (used by `run` and `list`).
pub fn render_lock_table<'a>(locks: impl Iterator<Item = &'a LockReport>) -> String {
    let header = ["LOCK ID", "AGE", "STALE", "LIVENESS", "ACTION", "OPERATION", "WHO", "STATE PATH"];
    let rows: Vec<[String; 8]> = locks
        .map(|l| {
            let action = match &l.detail {
                Some(d) => format!("{} ({d})", l.action.as_str()),
                None => l.action.as_str().to_string(),
            };
            [
                l.lock.id.clone(),
                format_age(l.verdict.age_seconds),
                if l.verdict.stale && l.verdict.liveness.is_dead() {
                    "yes (heartbeat stopped)".to_string()
                } else if l.verdict.stale {
                    format!("yes (> {})", format_age(l.verdict.window_seconds))
                } else {
                    "no".to_string()
                },
                l.verdict.liveness.describe(),
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
