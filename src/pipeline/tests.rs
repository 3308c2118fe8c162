//! Fast tests of the pipeline and the dispatcher on the in-memory fakes
//! (`crate::fakes`): no server, no Python, milliseconds each. The same
//! behaviours are tested against moto and real Terraform in `tests/`.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

use crate::config::{Config, EntrypointDefaults, MetricsSinkKind};
use crate::domain::alert::{AlertKind, AlertSettings, Event, Severity};
use crate::domain::decision::ActionTaken;
use crate::domain::lock::AttrValue;
use crate::domain::report::{Delivery, RunReport};
use crate::fakes::{
    info, lock_item, Call, FixedClock, Hooked, MemoryAlertState, MemoryLockTables, MemoryLockfiles, Point,
    RecordingMetrics, RecordingNotifier,
};
use crate::pipeline::notify::Dispatcher;
use crate::pipeline::Reaper;
use crate::ports::alert_state::AlertState;
use crate::ports::clock::Clock;
use crate::ports::notifier::Notifier;
use crate::support::deadline::Deadline;

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap()
}

fn config(pairs: &[(&str, &str)]) -> Config {
    let vars = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Config::from_vars(&vars, EntrypointDefaults { metrics_sink: MetricsSinkKind::None }).expect("valid config")
}

/// Fakes for one test: a table `locks`, a bucket `tfstate`, a channel, a
/// state (or none) and a clock they all share.
struct World {
    tables: Arc<MemoryLockTables>,
    lockfiles: Arc<MemoryLockfiles>,
    channel: Arc<RecordingNotifier>,
    state: Option<Arc<MemoryAlertState>>,
    clock: Arc<FixedClock>,
    renotify_after: Option<Duration>,
}

impl World {
    fn new() -> Self {
        World {
            tables: Arc::new(MemoryLockTables::default().with_table("locks")),
            lockfiles: Arc::new(MemoryLockfiles::default()),
            channel: Arc::new(RecordingNotifier::default()),
            state: Some(Arc::new(MemoryAlertState::default())),
            clock: Arc::new(FixedClock::at(start())),
            renotify_after: None,
        }
    }

    fn stateless(mut self) -> Self {
        self.state = None;
        self
    }

    /// A lock on `tfstate/<name>/terraform.tfstate` created `age` before now.
    fn lock(&self, name: &str, id: &str, age: chrono::Duration) -> String {
        let key = format!("tfstate/{name}/terraform.tfstate");
        let info = info(id, self.clock.now() - age);
        self.tables.put("locks", lock_item(&key, &info));
        key
    }

    fn dispatcher(&self) -> Dispatcher {
        Dispatcher {
            notifiers: vec![Box::new(Arc::clone(&self.channel)) as Box<dyn Notifier>],
            state: self.state.as_ref().map(|s| Box::new(Arc::clone(s)) as Box<dyn AlertState>),
            renotify_after: self.renotify_after,
            settings: AlertSettings::default(),
        }
    }

    async fn run(&self, cfg: &Config) -> RunReport {
        self.run_until(cfg, Deadline::none()).await
    }

    async fn run_until(&self, cfg: &Config, deadline: Deadline) -> RunReport {
        Reaper::new(cfg.clone(), self.tables.clone(), self.lockfiles.clone())
            .with_dispatcher(Arc::new(self.dispatcher()))
            .with_clock(self.clock.clone())
            .run(deadline)
            .await
    }

    /// (event, kind) of every message sent so far.
    fn sent(&self) -> Vec<(Event, AlertKind)> {
        self.channel.sent().iter().map(|m| (m.event, m.kind)).collect()
    }
}

fn hours(h: i64) -> chrono::Duration {
    chrono::Duration::hours(h)
}

fn report_only() -> Config {
    config(&[("LOCK_TABLES", "locks")])
}

#[tokio::test]
async fn a_stale_lock_pages_once_across_runs() {
    let w = World::new();
    w.lock("app", "a", hours(5));
    w.lock("fresh", "f", chrono::Duration::minutes(1));
    for _ in 0..3 {
        let report = w.run(&report_only()).await;
        assert!(report.ok);
    }
    assert_eq!(w.sent(), vec![(Event::Trigger, AlertKind::LockStale)]);
    assert_eq!(w.state.as_ref().unwrap().keys().len(), 1, "one open alert");
}

#[tokio::test]
async fn an_open_alert_is_reminded_after_renotify_after_and_not_before() {
    let mut w = World::new();
    w.renotify_after = Some(Duration::from_secs(3600));
    w.lock("app", "a", hours(5));
    w.run(&report_only()).await;
    w.clock.advance(chrono::Duration::minutes(30));
    w.run(&report_only()).await;
    assert_eq!(w.sent().len(), 1, "no reminder inside RENOTIFY_AFTER");
    w.clock.advance(chrono::Duration::minutes(31));
    w.run(&report_only()).await;
    assert_eq!(w.sent(), vec![(Event::Trigger, AlertKind::LockStale); 2], "a reminder once it is due");
}

#[tokio::test]
async fn an_escalated_alert_is_sent_again_without_a_reminder_setting() {
    let w = World::new();
    let cfg = config(&[("LOCK_TABLES", "locks"), ("DELETE_AFTER", "6h")]);
    w.lock("app", "a", hours(5));
    w.run(&cfg).await;
    w.clock.advance(hours(2)); // now past DELETE_AFTER and still there: critical
    w.run(&cfg).await;
    let severities: Vec<Severity> = w.channel.sent().iter().map(|m| m.severity).collect();
    assert_eq!(severities, vec![Severity::Warning, Severity::Critical]);
}

#[tokio::test]
async fn a_released_lock_resolves_its_alert_and_the_state_forgets_it() {
    let w = World::new();
    let key = w.lock("app", "a", hours(5));
    w.run(&report_only()).await;
    w.tables.remove("locks", &key);
    let report = w.run(&report_only()).await;
    assert_eq!(w.sent(), vec![(Event::Trigger, AlertKind::LockStale), (Event::Resolve, AlertKind::LockStale)]);
    assert!(w.state.as_ref().unwrap().keys().is_empty());
    assert_eq!(report.alerts_sent, 1);
    w.run(&report_only()).await;
    assert_eq!(w.sent().len(), 2, "resolved once");
}

#[tokio::test]
async fn an_alert_about_an_unreadable_source_does_not_resolve_its_locks() {
    let w = World::new();
    w.lock("app", "a", hours(5));
    w.run(&report_only()).await;
    // The table can no longer be read (e.g. permissions): its lock may still be there.
    w.tables.drop_table("locks");
    let report = w.run(&report_only()).await;
    assert!(!report.ok);
    assert_eq!(w.sent(), vec![(Event::Trigger, AlertKind::LockStale), (Event::Trigger, AlertKind::ScanFailed)]);
}

#[tokio::test]
async fn without_a_state_table_every_run_triggers_and_deletes_resolve() {
    let w = World::new().stateless();
    w.lock("app", "a", hours(5));
    w.run(&report_only()).await;
    w.run(&report_only()).await;
    assert_eq!(w.sent(), vec![(Event::Trigger, AlertKind::LockStale); 2], "PagerDuty's dedup_key keeps one incident");
    let delete = config(&[("LOCK_TABLES", "locks"), ("ACTION", "delete"), ("DELETE_AFTER", "4h")]);
    let report = w.run(&delete).await;
    assert_eq!(report.sources[0].counts.deleted, 1);
    assert_eq!(
        w.sent()[2..],
        [(Event::Info, AlertKind::LockStale), (Event::Resolve, AlertKind::LockStale)],
        "a deletion notice, then the resolve"
    );
}

#[tokio::test]
async fn an_undelivered_trigger_is_forgotten_so_the_next_run_tries_again() {
    let mut w = World::new();
    w.channel = Arc::new(RecordingNotifier { fail: true, ..Default::default() });
    w.lock("app", "a", hours(5));
    let report = w.run(&report_only()).await;
    assert_eq!(report.alert_errors, 1);
    assert!(!report.ok, "a failed delivery fails the run");
    assert!(w.state.as_ref().unwrap().keys().is_empty(), "nobody was told: not open");
}

#[tokio::test]
async fn a_failing_state_table_falls_back_to_stateless_and_says_so() {
    let mut w = World::new();
    w.state = Some(Arc::new(MemoryAlertState { fail: true, ..Default::default() }));
    w.lock("app", "a", hours(5));
    let report = w.run(&report_only()).await;
    assert_eq!(w.sent(), vec![(Event::Trigger, AlertKind::LockStale)], "better to page twice than never");
    let state_errors: Vec<_> = report.notifications.iter().filter(|n| n.channel == "state").collect();
    assert_eq!(state_errors.len(), 1);
    assert_eq!(state_errors[0].outcome, Delivery::Failed);
}

#[tokio::test]
async fn near_the_deadline_no_write_and_no_delivery_starts() {
    let w = World::new();
    let key = w.lock("app", "a", hours(5));
    let delete = config(&[("LOCK_TABLES", "locks"), ("ACTION", "delete"), ("DELETE_AFTER", "4h")]);
    let report = w.run_until(&delete, Deadline::at(start() + chrono::Duration::seconds(3))).await;
    assert!(report.partial);
    assert_eq!(report.sources[0].locks[0].action, ActionTaken::Deadline);
    assert!(w.tables.get("locks", &key).is_some(), "the lock was not deleted");
    assert!(w.tables.writes().is_empty(), "no write started");
    assert!(report.notifications.iter().all(|n| n.outcome == Delivery::Skipped));
    assert!(w.channel.sent().is_empty());
}

#[tokio::test]
async fn the_breaker_deletes_none_and_pages() {
    let w = World::new();
    for i in 0..3 {
        w.lock(&format!("s{i}"), &format!("id{i}"), hours(5));
    }
    let cfg =
        config(&[("LOCK_TABLES", "locks"), ("ACTION", "delete"), ("DELETE_AFTER", "4h"), ("MAX_DELETES_PER_RUN", "2")]);
    let report = w.run(&cfg).await;
    assert!(report.breaker_tripped);
    assert_eq!(report.planned_deletes, 3);
    assert!(w.tables.writes().is_empty());
    assert!(report.sources[0].locks.iter().all(|l| l.action == ActionTaken::Breaker));
    assert!(w.sent().contains(&(Event::Trigger, AlertKind::BreakerTripped)));
}

#[tokio::test]
async fn a_dry_run_writes_nothing_and_says_what_it_would_do() {
    let w = World::new();
    w.lock("app", "a", hours(5));
    let cfg = config(&[("LOCK_TABLES", "locks"), ("ACTION", "delete"), ("DELETE_AFTER", "4h"), ("DRY_RUN", "true")]);
    let report = w.run(&cfg).await;
    let lock = &report.sources[0].locks[0];
    assert_eq!(lock.action, ActionTaken::DryRun);
    assert_eq!(lock.detail.as_deref(), Some("would delete"));
    assert!(w.tables.writes().is_empty());
}

#[tokio::test]
async fn a_lock_taken_again_after_the_scan_is_left_alone() {
    // The fake's delete is conditional on Info, like DynamoDB's: a lock
    // whose Info changed between scan and write survives.
    let w = World::new().stateless();
    let key = w.lock("app", "old-run", hours(5));
    let delete = config(&[("LOCK_TABLES", "locks"), ("ACTION", "delete"), ("DELETE_AFTER", "4h")]);
    let tables = w.tables.clone();
    let reacquire = Hooked::new(w.tables.clone(), move |call: Call| {
        if call.point == Point::AfterScan {
            tables.put(&call.source, lock_item("tfstate/app/terraform.tfstate", &info("new-run", start())));
        }
        async {}
    });
    let report = Reaper::new(delete, Arc::new(reacquire), w.lockfiles.clone())
        .with_clock(w.clock.clone())
        .run(Deadline::none())
        .await;
    assert_eq!(report.sources[0].locks[0].action, ActionTaken::Changed);
    assert!(report.ok, "changed is not an error");
    assert!(w.tables.get("locks", &key).is_some(), "the new run's lock survives");
}

#[tokio::test]
async fn a_double_lock_is_cleared_both_halves_and_told_once() {
    let w = World::new().stateless();
    let key = w.lock("prod", "dbl", hours(5));
    let body = info("dbl", start() - hours(5));
    w.lockfiles.put("tfstate", "prod/terraform.tfstate.tflock", &body);
    let cfg =
        config(&[("LOCK_TABLES", "locks"), ("LOCK_BUCKETS", "tfstate"), ("ACTION", "delete"), ("DELETE_AFTER", "4h")]);
    let report = w.run(&cfg).await;
    assert_eq!(report.planned_deletes, 1, "a double lock is one candidate");
    assert!(w.tables.get("locks", &key).is_none());
    assert!(w.lockfiles.get("tfstate", "prod/terraform.tfstate.tflock").is_none());
    assert_eq!(w.sent(), vec![(Event::Info, AlertKind::LockStale), (Event::Resolve, AlertKind::LockStale)]);
}

#[tokio::test]
async fn a_lock_gone_before_its_delete_is_not_paged_and_counts_as_cleared() {
    // Released between scan and delete (or our own earlier attempt landed
    // and its response was lost): the fake reports Gone, like the adapters.
    let w = World::new();
    w.lock("app", "a", hours(5));
    w.run(&report_only()).await; // pages once
    let delete = config(&[("LOCK_TABLES", "locks"), ("ACTION", "delete"), ("DELETE_AFTER", "4h")]);
    let tables = w.tables.clone();
    let release_first = Hooked::new(w.tables.clone(), move |call: Call| {
        if let (Point::BeforeWrite, Some(key)) = (call.point, &call.key) {
            tables.remove(&call.source, key);
        }
        async {}
    });
    let metrics = Arc::new(RecordingMetrics::default());
    let report = Reaper::new(delete, Arc::new(release_first), w.lockfiles.clone())
        .with_dispatcher(Arc::new(w.dispatcher()))
        .with_clock(w.clock.clone())
        .with_metrics(metrics.clone())
        .run(Deadline::none())
        .await;
    assert_eq!(report.sources[0].locks[0].action, ActionTaken::Gone);
    assert_eq!(report.sources[0].counts.gone, 1);
    assert!(report.ok);
    assert_eq!(
        w.sent(),
        vec![(Event::Trigger, AlertKind::LockStale), (Event::Resolve, AlertKind::LockStale)],
        "no new page and no deletion notice; the open alert resolves"
    );
    let published = metrics.published.lock().unwrap();
    let deleted = published[0].values.iter().find(|(name, _, _)| *name == "LocksDeleted").map(|(_, v, _)| *v);
    assert_eq!(deleted, Some(1.0), "a stale lock cleared counts in the published LocksDeleted");
}

#[tokio::test]
async fn ages_are_measured_from_when_the_read_started() {
    // A read that takes two minutes must not age the locks it returns.
    let w = World::new().stateless();
    // 1h59m old when the read starts: fresh under the 2h window.
    w.lock("app", "a", chrono::Duration::minutes(119));
    let clock = w.clock.clone();
    let slow_read = Hooked::new(w.tables.clone(), move |call: Call| {
        if call.point == Point::BeforeScan {
            clock.advance(chrono::Duration::minutes(2));
        }
        async {}
    });
    let report = Reaper::new(report_only(), Arc::new(slow_read), w.lockfiles.clone())
        .with_clock(w.clock.clone())
        .run(Deadline::none())
        .await;
    assert_eq!(report.sources[0].locks[0].verdict.age_seconds, 119 * 60);
    assert!(!report.sources[0].locks[0].verdict.stale);
}

#[tokio::test]
async fn keeping_only_what_matters_counts_the_same_and_keeps_only_stale_locks() {
    let w = World::new().stateless();
    for i in 0..6 {
        let age = if i % 3 == 0 { hours(5) } else { chrono::Duration::minutes(10 + i) };
        w.lock(&format!("s{i}"), &format!("id{i}"), age);
    }
    w.tables.put("locks", lock_item("tfstate/junk/terraform.tfstate", "{not json"));
    let full = w.run(&report_only()).await;
    let lean = Reaper::new(report_only(), w.tables.clone(), w.lockfiles.clone())
        .with_clock(w.clock.clone())
        .keeping_only_what_matters()
        .run(Deadline::none())
        .await;
    assert_eq!(lean.sources[0].counts, full.sources[0].counts, "the counts are whole");
    assert_eq!(lean.sources[0].counts.locks_held, 6);
    assert_eq!(lean.sources[0].oldest_lock_age_seconds, full.sources[0].oldest_lock_age_seconds);
    assert_eq!(lean.sources[0].locks.len(), 2, "only the stale locks are kept");
    assert!(lean.sources[0].locks.iter().all(|l| l.verdict.stale));
    assert_eq!(
        serde_json::to_value(lean.summary().sources).unwrap(),
        serde_json::to_value(full.summary().sources).unwrap()
    );
}

#[tokio::test]
async fn a_fresh_half_keeps_its_double_lock_fresh_when_only_what_matters_is_kept() {
    // The table half looks stale on its own, its lockfile half is fresh: the
    // double lock is fresh, and dropping the fresh half must not change that.
    let w = World::new().stateless();
    let key = w.lock("prod", "dbl", hours(5));
    w.lockfiles.put("tfstate", "prod/terraform.tfstate.tflock", &info("dbl", start() - chrono::Duration::minutes(1)));
    let cfg =
        config(&[("LOCK_TABLES", "locks"), ("LOCK_BUCKETS", "tfstate"), ("ACTION", "delete"), ("DELETE_AFTER", "4h")]);
    let report = Reaper::new(cfg, w.tables.clone(), w.lockfiles.clone())
        .with_clock(w.clock.clone())
        .keeping_only_what_matters()
        .run(Deadline::none())
        .await;
    assert_eq!(report.planned_deletes, 0);
    assert!(w.tables.get("locks", &key).is_some(), "the double lock is fresh: nothing deleted");
    assert!(w.tables.writes().is_empty());
}

/// A lock whose heartbeat is the given number of seconds before the start.
fn beating(w: &World, name: &str, id: &str, age: chrono::Duration, silent_secs: i64) -> String {
    let key = w.lock(name, id, age);
    let mut item = w.tables.get("locks", &key).expect("seeded");
    item.insert("Heartbeat".into(), AttrValue::N((start().timestamp() - silent_secs).to_string()));
    w.tables.put("locks", item);
    key
}

#[tokio::test]
async fn an_alive_heartbeat_keeps_an_ancient_lock_and_a_silent_one_goes_at_once() {
    let w = World::new().stateless();
    let alive = beating(&w, "alive", "alive-run", hours(500), 30);
    let dead = beating(&w, "dead", "dead-run", chrono::Duration::minutes(20), 11 * 60);
    let cfg = config(&[
        ("LOCK_TABLES", "locks"),
        ("ACTION", "delete"),
        ("STALE_AFTER", "2h"),
        ("DELETE_AFTER", "2h"),
        ("HEARTBEAT_TIMEOUT", "10m"),
    ]);
    let report = w.run(&cfg).await;
    assert!(w.tables.get("locks", &alive).is_some(), "alive for 500h: never stale, never written to");
    assert!(w.tables.get("locks", &dead).is_none(), "silent 11m, 20m old: deleted although the window is 2h");
    let c = &report.sources[0].counts;
    assert_eq!((c.heartbeat_locks, c.dead_heartbeats, c.deleted), (2, 1, 1));
    // Only the dead lock's deletion notice and resolve: the alive lock is never alerted on.
    assert_eq!(w.sent(), vec![(Event::Info, AlertKind::LockStale), (Event::Resolve, AlertKind::LockStale)]);
    assert!(w.channel.sent().iter().all(|m| !m.body.contains("alive-run")));
}

/// Each lock's own liveness contract decides, within the bounds, and
/// `RELEASE_DEAD_HEARTBEATS` (on by default) releases a dead holder's lock in
/// every `ACTION`; age alone still deletes only with `ACTION=delete`. Off,
/// the run is exactly what it was before the switch.
#[tokio::test]
async fn dead_heartbeats_are_released_by_their_own_contract_in_every_mode() {
    let contract = |w: &World, key: &str, seconds: u64| {
        let mut item = w.tables.get("locks", key).expect("seeded");
        item.insert("HeartbeatTimeout".into(), AttrValue::N(seconds.to_string()));
        w.tables.put("locks", item);
    };
    for (action, threshold) in [("report", None), ("ttl", Some("TTL_AFTER")), ("delete", Some("DELETE_AFTER"))] {
        for release in [true, false] {
            let w = World::new().stateless();
            let ci_dead = beating(&w, "ci", "ci-run", chrono::Duration::minutes(5), 100);
            contract(&w, &ci_dead, 90);
            let clamped = beating(&w, "blip", "blip-run", chrono::Duration::minutes(5), 30);
            contract(&w, &clamped, 5);
            let no_contract = beating(&w, "old-exec", "old-exec-run", chrono::Duration::minutes(5), 100);
            let aged = w.lock("aged", "aged-run", hours(5));
            let mut vars = vec![
                ("LOCK_TABLES", "locks"),
                ("ACTION", action),
                ("RELEASE_DEAD_HEARTBEATS", if release { "true" } else { "false" }),
            ];
            vars.extend(threshold.map(|t| (t, "4h")));
            let report = w.run(&config(&vars)).await;
            let what = format!("ACTION={action} RELEASE_DEAD_HEARTBEATS={release}");
            let action_of = |id: &str| report.sources[0].locks.iter().find(|l| l.lock.id == id).map(|l| l.action);
            // The CI contract (90s), silent 100s: dead.
            let released = release || action == "delete";
            assert_eq!(w.tables.get("locks", &ci_dead).is_none(), released, "{what}");
            if !release {
                let expected = match action {
                    "report" => ActionTaken::NoAction,
                    "ttl" => ActionTaken::Ttl,
                    _ => ActionTaken::Deleted,
                };
                assert_eq!(action_of("ci-run"), Some(expected), "{what}: today's behaviour");
            }
            // A 5s contract is held to HEARTBEAT_TIMEOUT_MIN (60s); no contract: HEARTBEAT_TIMEOUT (10m).
            assert!(w.tables.get("locks", &clamped).is_some(), "{what}");
            assert!(w.tables.get("locks", &no_contract).is_some(), "{what}");
            // Age alone: deleted only by ACTION=delete.
            assert_eq!(w.tables.get("locks", &aged).is_none(), action == "delete", "{what}");
        }
    }
    // A dry run writes nothing, however dead.
    let w = World::new().stateless();
    let key = beating(&w, "ci", "ci-run", chrono::Duration::minutes(5), 100);
    contract(&w, &key, 90);
    let report = w.run(&config(&[("LOCK_TABLES", "locks"), ("DRY_RUN", "true")])).await;
    assert_eq!(report.sources[0].locks[0].action, ActionTaken::DryRun);
    assert!(w.tables.get("locks", &key).is_some() && w.tables.writes().is_empty());
}

#[tokio::test]
async fn a_heartbeat_landing_between_scan_and_delete_keeps_the_lock() {
    let w = World::new().stateless();
    let key = beating(&w, "app", "paused-run", hours(5), 20 * 60);
    let cfg = config(&[("LOCK_TABLES", "locks"), ("ACTION", "delete"), ("DELETE_AFTER", "4h")]);
    // The job resumes: its wrapper heartbeats just before the reaper's delete.
    let tables = w.tables.clone();
    let resumed = Hooked::new(w.tables.clone(), move |call: Call| {
        let held = call.key.as_deref().and_then(|k| tables.get(&call.source, k));
        if let (Point::BeforeWrite, Some(mut item)) = (call.point, held) {
            item.insert("Heartbeat".into(), AttrValue::N(start().timestamp().to_string()));
            tables.put(&call.source, item);
        }
        async {}
    });
    let report = Reaper::new(cfg, Arc::new(resumed), w.lockfiles.clone())
        .with_clock(w.clock.clone())
        .run(Deadline::none())
        .await;
    assert_eq!(report.sources[0].locks[0].action, ActionTaken::Changed);
    assert!(w.tables.get("locks", &key).is_some(), "the resumed holder keeps its lock");
}

#[tokio::test]
async fn a_lockfile_heartbeat_landing_before_the_delete_keeps_it() {
    let w = World::new().stateless();
    let key = "app/terraform.tfstate.tflock";
    w.lockfiles.put("tfstate", key, &info("paused", start() - hours(5)));
    w.lockfiles.set_heartbeat("tfstate", key, start().timestamp() - 20 * 60);
    let cfg = config(&[("LOCK_BUCKETS", "tfstate"), ("ACTION", "delete"), ("DELETE_AFTER", "4h")]);
    // Resumed between this scan and the next pass's delete.
    let fresh = start().timestamp();
    let tables: Arc<dyn crate::ports::lock_tables::LockTables> = w.tables.clone();
    // The lockfile's holder heartbeats right after the reaper's scan.
    let lockfiles = w.lockfiles.clone();
    let files = Arc::new(Hooked::new(w.lockfiles.clone(), move |call: Call| {
        if call.point == Point::AfterScan {
            lockfiles.set_heartbeat(&call.source, key, fresh);
        }
        async {}
    }));
    let report = Reaper::new(cfg, tables, files).with_clock(w.clock.clone()).run(Deadline::none()).await;
    assert_eq!(report.sources[0].locks[0].action, ActionTaken::Changed, "{:?}", report.sources[0].locks[0].detail);
    assert!(w.lockfiles.get("tfstate", key).is_some());
}

/// `ALERT_GROUP_OVER` (default 10): a flood of stale locks in one source
/// opens one grouped alert, updated silently as it shrinks, resolved when
/// none is left; new stale locks then page on their own again.
#[tokio::test]
async fn a_flood_of_stale_locks_pages_once_as_a_group_and_resolves_when_cleared() {
    let w = World::new();
    let keys: Vec<String> = (0..300).map(|i| w.lock(&format!("s{i}"), &format!("id{i}"), hours(5))).collect();
    let report = w.run(&report_only()).await;
    assert_eq!(w.sent(), vec![(Event::Trigger, AlertKind::StaleGroup)], "one grouped alert, not 300");
    let source = &report.sources[0];
    assert_eq!(source.grouped_alert.as_ref().map(|g| g.covered), Some(300));
    assert!(source.locks.iter().all(|l| l.grouped_alert.is_some()), "every covered lock says so");
    let m = &w.channel.sent()[0];
    assert!(m.summary.starts_with("300 stale Terraform locks in lock table locks"), "{}", m.summary);
    w.run(&report_only()).await;
    assert_eq!(w.sent().len(), 1, "a second pass pages nobody");
    for k in &keys[..290] {
        w.tables.remove("locks", k);
    }
    w.run(&report_only()).await;
    assert_eq!(w.sent().len(), 1, "the group shrinking pages nobody");
    let open = w.state.as_ref().unwrap().open_alerts().await.unwrap();
    assert_eq!(open.iter().find(|o| o.kind == AlertKind::StaleGroup).and_then(|o| o.count), Some(10), "recounted");
    for k in &keys[290..] {
        w.tables.remove("locks", k);
    }
    w.run(&report_only()).await;
    assert_eq!(w.sent()[1..], [(Event::Resolve, AlertKind::StaleGroup)], "resolved when none is left");
    for i in 0..3 {
        w.lock(&format!("new{i}"), &format!("new{i}"), hours(5));
    }
    w.run(&report_only()).await;
    assert_eq!(w.sent()[2..], [(Event::Trigger, AlertKind::LockStale); 3], "a trickle pages lock by lock again");
}

#[tokio::test]
async fn new_stale_locks_page_alone_once_the_grouped_backlog_is_small() {
    let w = World::new();
    let keys: Vec<String> = (0..12).map(|i| w.lock(&format!("s{i}"), &format!("id{i}"), hours(5))).collect();
    w.run(&report_only()).await;
    w.clock.advance(chrono::Duration::minutes(10));
    // A new stale lock while the backlog of 12 is above 10: covered too.
    w.lock("late", "late", hours(3) - chrono::Duration::minutes(30));
    w.clock.advance(chrono::Duration::hours(1));
    w.run(&report_only()).await;
    assert_eq!(w.sent(), vec![(Event::Trigger, AlertKind::StaleGroup)]);
    for k in &keys[..5] {
        w.tables.remove("locks", k);
    }
    // Backlog 7: a lock stale only since now pages on its own; the group stays.
    w.lock("later", "later", hours(2) + chrono::Duration::minutes(1));
    w.run(&report_only()).await;
    let sent = w.channel.sent();
    assert_eq!(sent.len(), 2, "{:?}", w.sent());
    assert_eq!((sent[1].kind, sent[1].lock_id.as_deref()), (AlertKind::LockStale, Some("later")));
}

#[tokio::test]
async fn below_the_threshold_and_stateless_floods() {
    let w = World::new();
    for i in 0..10 {
        w.lock(&format!("s{i}"), &format!("id{i}"), hours(5));
    }
    let report = w.run(&report_only()).await;
    assert_eq!(w.sent(), vec![(Event::Trigger, AlertKind::LockStale); 10], "ten is not more than ten");
    assert!(report.sources[0].grouped_alert.is_none());
    let w = World::new().stateless();
    for i in 0..11 {
        w.lock(&format!("s{i}"), &format!("id{i}"), hours(5));
    }
    w.run(&report_only()).await;
    w.run(&report_only()).await;
    assert_eq!(w.sent(), vec![(Event::Trigger, AlertKind::StaleGroup); 2], "grouped within each run");
}

/// Stateless, a run that deletes a flood sends one grouped resolve for the
/// source, and no per-lock resolve for any lock of that flood.
#[tokio::test]
async fn a_stateless_run_deleting_a_flood_resolves_the_group_once() {
    let w = World::new().stateless();
    for i in 0..12 {
        w.lock(&format!("s{i}"), &format!("id{i}"), hours(30));
    }
    let cfg = config(&[
        ("LOCK_TABLES", "locks"),
        ("ACTION", "delete"),
        ("DELETE_AFTER", "24h"),
        ("MAX_DELETES_PER_RUN", "20"),
    ]);
    let report = w.run(&cfg).await;
    assert_eq!(report.sources[0].counts.deleted, 12, "{:?}", report.sources[0].counts);
    let resolves: Vec<AlertKind> =
        w.channel.sent().iter().filter(|m| m.event == Event::Resolve).map(|m| m.kind).collect();
    assert_eq!(resolves, vec![AlertKind::StaleGroup], "one group resolve, no per-lock resolve");
}

/// An operator's laptop 15 minutes fast or slow runs `run --action delete`
/// with the default windows: the live heartbeating lock is judged on AWS's
/// clock (the offset its responses measured), so it is left alone and read
/// as a lock; the dead one is still reaped by silence; a lock whose Created
/// lies 15 minutes ahead of AWS (a fast runner) is a flagged lock, not an
/// unreadable item.
#[tokio::test]
async fn a_reaper_on_a_wrong_clock_judges_on_aws_time() {
    for skew in [chrono::Duration::minutes(15), chrono::Duration::minutes(-15)] {
        let w = World::new().stateless();
        // Written in AWS time (start() is AWS's now): alive 20s ago, dead 11m ago, a fast runner's Created.
        let alive = beating(&w, "alive", "alive-run", hours(3), 20);
        let dead = beating(&w, "dead", "dead-run", chrono::Duration::minutes(30), 11 * 60);
        let fast = w.lock("fast", "fast-run", chrono::Duration::minutes(-15));
        w.clock.advance(skew);
        w.clock.set_ahead_of_aws(skew);
        let cfg = config(&[("LOCK_TABLES", "locks"), ("ACTION", "delete"), ("DELETE_AFTER", "2h")]);
        let report = w.run(&cfg).await;
        assert!(w.tables.get("locks", &alive).is_some(), "{skew}: the live lock stays");
        assert!(w.tables.get("locks", &dead).is_none(), "{skew}: the dead one is reaped by silence");
        assert!(w.tables.get("locks", &fast).is_some(), "{skew}: a future Created is never aged");
        let s = &report.sources[0];
        assert!(s.unreadable.is_empty(), "{skew}: nothing unreadable: {:?}", s.unreadable);
        let by_id = |id: &str| s.locks.iter().find(|l| l.lock.id == id).expect("reported");
        assert_eq!(
            by_id("alive-run").verdict.liveness.describe(),
            "alive, heartbeat 20s ago (contract 10m00s)",
            "{skew}"
        );
        let note = by_id("fast-run").verdict.clock_note.expect("flagged");
        assert!(note.describe().starts_with("Info.Created is 15m00s in the future on AWS's clock"), "{skew}");
        let text = report.render_text();
        let way = if skew > chrono::Duration::zero() { "ahead of" } else { "behind" };
        assert!(text.contains(&format!("clock: this machine's clock is 15m00s {way} AWS")), "{text}");
        assert!(text.contains("CLOCK fast-run: Info.Created is 15m00s in the future"), "{text}");
    }
}

/// Without the measured offset the same laptop would have deleted the live
/// lock (fast) or left the dead one (slow): the test above fails if the
/// pipeline judges on this machine's clock.
#[tokio::test]
async fn the_uncorrected_clock_would_have_decided_otherwise() {
    let w = World::new().stateless();
    let alive = beating(&w, "alive", "alive-run", hours(3), 20);
    w.clock.advance(chrono::Duration::minutes(15));
    let cfg = config(&[("LOCK_TABLES", "locks"), ("ACTION", "delete"), ("DELETE_AFTER", "2h")]);
    w.run(&cfg).await;
    assert!(w.tables.get("locks", &alive).is_none(), "no offset measured: 15m of silence on a fast clock");
}

/// Discovery failures: one `discovery-failed` alert for all of them (a
/// member role missing everywhere pages once, not per account), listed up
/// to 20 with the rest counted; paged once across runs, resolved once every
/// account can be searched; the run is not `ok`; metrics count them.
#[tokio::test]
async fn discovery_failures_page_once_in_one_alert_and_resolve() {
    use crate::domain::discovery::{DiscoveryFailure, DiscoverySummary};
    let w = World::new();
    let failure = |i: usize| DiscoveryFailure {
        account: Some(format!("{:012}", 100_000_000_000 + i)),
        region: Some("us-east-1".into()),
        role: Some(format!("arn:aws:iam::{:012}:role/tf-lock-reaper-access", 100_000_000_000 + i)),
        reason: "AssumeRole failed: access denied".into(),
    };
    let failing =
        DiscoverySummary { accounts: 30, tables: 2, failures: (0..25).map(failure).collect(), ..Default::default() };
    let reaper = |d: DiscoverySummary| {
        Reaper::new(report_only(), w.tables.clone(), w.lockfiles.clone())
            .with_dispatcher(Arc::new(w.dispatcher()))
            .with_clock(w.clock.clone())
            .with_discovery(Some(d))
    };
    let report = reaper(failing.clone()).run(Deadline::none()).await;
    assert!(!report.ok, "an account that could not be searched is an error");
    reaper(failing).run(Deadline::none()).await;
    assert_eq!(w.sent(), vec![(Event::Trigger, AlertKind::DiscoveryFailed)], "one page for 25 failures, once");
    let page = &w.channel.sent()[0];
    assert!(
        page.body.contains("account 100000000000 in us-east-1 (role arn:aws:iam::100000000000:role/"),
        "{}",
        page.body
    );
    assert!(page.body.contains("… and 5 more"), "{}", page.body);
    let sets = crate::domain::metrics::metric_sets(&report);
    let run_wide = sets.iter().find(|s| s.dimensions.is_empty()).unwrap();
    assert!(run_wide.values.contains(&("DiscoveredSources", 2.0, crate::domain::metrics::Unit::Count)));
    assert!(run_wide.values.contains(&("DiscoveryErrors", 25.0, crate::domain::metrics::Unit::Count)));
    let healthy =
        reaper(DiscoverySummary { accounts: 30, tables: 3, ..Default::default() }).run(Deadline::none()).await;
    assert!(healthy.ok);
    assert_eq!(w.sent().last(), Some(&(Event::Resolve, AlertKind::DiscoveryFailed)));
}
