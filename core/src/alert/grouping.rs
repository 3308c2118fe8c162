//! Alert volume: when more stale locks than `ALERT_GROUP_OVER` would open
//! alerts in one source in one run (a first deployment over a forgotten
//! backlog, a clock or configuration error), one grouped alert per source
//! opens instead, listing the oldest with their fix commands. It stays open
//! while any lock it covers is stale, and resolves when none is left; new
//! stale locks alert on their own again once the backlog it covers is no
//! longer above the threshold. Pure: which locks a group covers, and its text.

use chrono::{DateTime, Utc};

use crate::alert::conditions::Alert;
use crate::alert::keys::hashed_key;
use crate::alert::text::{cap, clean, subject, FIELD_CAP, SUMMARY_CAP};
use crate::alert::{AlertKind, Event, Message};
use crate::lock::SourceKind;
use crate::report::render::format_age;

/// How many of the oldest covered locks a grouped alert lists.
pub const LISTED: usize = 20;

/// The grouped alert's key for one source.
pub fn group_key(kind: SourceKind, source: &str) -> String {
    hashed_key(&["stale-group", kind.as_str(), source])
}

/// Of one source's stale-lock alerts that have no alert of their own open
/// (`candidates`), those a grouped alert covers and those that alert on
/// their own. With the group already open (since `group_opened_at`), the
/// locks that were stale before it opened are its backlog: it covers them,
/// and those stale since too while that backlog is above `group_over`.
pub fn partition<'a>(
    candidates: &[&'a Alert],
    group_opened_at: Option<i64>,
    group_over: usize,
) -> (Vec<&'a Alert>, Vec<&'a Alert>) {
    let Some(opened) = group_opened_at else {
        return if candidates.len() > group_over {
            (candidates.to_vec(), Vec::new())
        } else {
            (Vec::new(), candidates.to_vec())
        };
    };
    let backlog = |a: &&Alert| a.stale_since.is_none_or(|c| c.timestamp() <= opened);
    if candidates.iter().filter(|a| backlog(a)).count() > group_over {
        return (candidates.to_vec(), Vec::new());
    }
    candidates.iter().partition(|a| backlog(a))
}

/// One lock of a grouped alert, as its details list it.
fn listed_lock(m: &Message) -> serde_json::Value {
    let field = |k: &str| m.details.get(k).and_then(serde_json::Value::as_str).unwrap_or("?").to_string();
    serde_json::json!({
        "state_path": m.lock_key,
        "lock_id": m.lock_id,
        "age": field("age"),
        "who": field("who"),
        "operation": field("operation"),
        "command": m.details.get("commands").and_then(|c| c.get("tf_lock_reaper_unlock")).cloned(),
    })
}

/// A listed lock as the body's two lines: what holds it, and its fix.
fn listing_line(l: &serde_json::Value) -> String {
    let s = |k: &str| l[k].as_str().unwrap_or("?").to_string();
    format!(
        "  {}  held {}  by {}  {}  lock ID {}\n    {}\n",
        s("state_path"),
        s("age"),
        s("who"),
        s("operation"),
        s("lock_id"),
        s("command")
    )
}

/// The grouped alert of a source: the count, the oldest age, the `LISTED`
/// oldest locks with their fix commands; bounded whatever the count.
pub fn group_message(
    kind: SourceKind,
    source: &str,
    covered: &[&Alert],
    group_over: usize,
    now: DateTime<Utc>,
) -> Message {
    let mut locks: Vec<&Message> = covered.iter().map(|a| &a.message).collect();
    let age = |m: &Message| m.details.get("age_seconds").and_then(serde_json::Value::as_i64).unwrap_or(0);
    locks.sort_by_key(|m| std::cmp::Reverse(age(m)));
    let count = locks.len();
    let name = clean(source, FIELD_CAP);
    let what = match kind {
        SourceKind::Table => "lock table",
        SourceKind::Bucket => "lock bucket",
    };
    let oldest = format_age(locks.first().map_or(0, |m| u64::try_from(age(m)).unwrap_or(0)));
    let listed: Vec<serde_json::Value> = locks.iter().take(LISTED).map(|m| listed_lock(m)).collect();
    let lines: String = listed.iter().map(listing_line).collect();
    let more = match count.saturating_sub(LISTED) {
        0 => String::new(),
        n => format!("  … and {n} more: tf-lock-reaper list --{} {name}\n", kind.as_str()),
    };
    let summary = format!("{count} stale Terraform locks in {what} {name}, oldest held {oldest}");
    let body = format!(
        "{summary}. More than ALERT_GROUP_OVER={group_over} stale locks in one {kind_word}, so they share this one \
            alert instead of one each; it resolves when none of them is stale any more. Every plan/apply on these \
            states fails with \"Error acquiring the state lock\" until its lock is released.\n\nThe {listed} \
            oldest, with the command that releases each (if no apply is still running for it):\n{lines}{more}",
        kind_word = kind.as_str(),
        listed = listed.len().min(count),
    );
    Message {
        event: Event::Trigger,
        alert_key: group_key(kind, source),
        kind: AlertKind::StaleGroup,
        severity: covered.iter().map(|a| a.message.severity).max().unwrap_or(crate::alert::Severity::Warning),
        subject: subject(&format!("{count} stale Terraform locks in {name} (oldest {oldest})")),
        body,
        summary: cap(&summary, SUMMARY_CAP),
        source: name.clone(),
        source_name: Some(name.clone()),
        source_kind: Some(kind),
        lock_key: None,
        lock_id: None,
        component: name,
        group: String::new(),
        timestamp: now,
        details: serde_json::json!({
            kind.as_str(): clean(source, FIELD_CAP),
            "count": count,
            "oldest_age": oldest,
            "locks": listed,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::Severity;

    fn alert(id: &str, age_seconds: i64, stale_since: i64) -> Alert {
        let m = Message {
            event: Event::Trigger,
            alert_key: format!("k-{id}"),
            kind: AlertKind::LockStale,
            severity: Severity::Warning,
            subject: String::new(),
            body: String::new(),
            summary: String::new(),
            source: "locks".into(),
            source_name: Some("locks".into()),
            source_kind: Some(SourceKind::Table),
            lock_key: Some(format!("tfstate/{id}/terraform.tfstate")),
            lock_id: Some(id.into()),
            component: String::new(),
            group: String::new(),
            timestamp: DateTime::from_timestamp(0, 0).unwrap(),
            details: serde_json::json!({
                "age_seconds": age_seconds,
                "age": format!("{age_seconds}s"),
                "who": "ci@x",
                "operation": "OperationTypeApply",
                "commands": {"tf_lock_reaper_unlock": format!("tf-lock-reaper unlock {id}")},
            }),
        };
        Alert { message: m, stale_since: DateTime::from_timestamp(stale_since, 0) }
    }

    #[test]
    fn a_flood_is_grouped_and_a_trickle_is_not() {
        let many: Vec<Alert> = (0..11).map(|i| alert(&i.to_string(), 100 + i, 0)).collect();
        let refs: Vec<&Alert> = many.iter().collect();
        let (covered, own) = partition(&refs, None, 10);
        assert_eq!((covered.len(), own.len()), (11, 0));
        let (covered, own) = partition(&refs[..10], None, 10);
        assert_eq!((covered.len(), own.len()), (0, 10), "ten is not more than ten");
    }

    #[test]
    fn new_locks_alert_alone_once_the_backlog_is_small() {
        let backlog: Vec<Alert> = (0..5).map(|i| alert(&format!("old{i}"), 1000, 50)).collect();
        let fresh = alert("new", 10, 200);
        let mut refs: Vec<&Alert> = backlog.iter().collect();
        refs.push(&fresh);
        let (covered, own) = partition(&refs, Some(100), 10);
        assert_eq!(covered.len(), 5);
        assert_eq!(own.iter().map(|a| a.message.alert_key.as_str()).collect::<Vec<_>>(), ["k-new"]);
        let big: Vec<Alert> = (0..11).map(|i| alert(&format!("old{i}"), 1000, 50)).collect();
        let mut refs: Vec<&Alert> = big.iter().collect();
        refs.push(&fresh);
        let (covered, own) = partition(&refs, Some(100), 10);
        assert_eq!((covered.len(), own.len()), (12, 0), "a backlog above the threshold covers new locks too");
    }

    #[test]
    fn the_group_lists_the_oldest_and_stays_bounded() {
        let many: Vec<Alert> = (0..300).map(|i| alert(&i.to_string(), i, 0)).collect();
        let refs: Vec<&Alert> = many.iter().collect();
        let m = group_message(SourceKind::Table, "locks", &refs, 10, DateTime::from_timestamp(0, 0).unwrap());
        assert_eq!(m.kind, AlertKind::StaleGroup);
        assert_eq!(m.alert_key, group_key(SourceKind::Table, "locks"));
        assert!(m.summary.starts_with("300 stale Terraform locks in lock table locks, oldest held"), "{}", m.summary);
        assert_eq!(m.details["locks"].as_array().unwrap().len(), LISTED);
        assert_eq!(m.details["locks"][0]["lock_id"], "299", "oldest first");
        assert!(m.body.contains("tf-lock-reaper unlock 299") && m.body.contains("and 280 more"), "{}", m.body);
        assert!(m.body.len() < 8 * 1024, "bounded: {}", m.body.len());
        assert_eq!(m.details["count"], 300);
    }
}
