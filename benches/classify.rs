//! Throughput of the pure core on a large lock table: parse every item,
//! classify every lock, decide, and pair double locks. `make bench` runs it;
//! it prints items per second (no wall-clock assertions anywhere).

use std::hint::black_box;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use tf_lock_reaper::config::{Config, EntrypointDefaults, MetricsSinkKind};
use tf_lock_reaper::domain::decision::Action;
use tf_lock_reaper::domain::decision::{decide, Candidate, DecideSettings};
use tf_lock_reaper::domain::lock::{parse_item, AttrValue, Item, RawItem, SourceKind};
use tf_lock_reaper::domain::source::SourceAddress;

/// A table shaped like a busy organisation's: mostly digests, some locks,
/// a few malformed items.
fn items(n: usize) -> Vec<RawItem> {
    let base = Utc.with_ymd_and_hms(2026, 11, 26, 0, 0, 0).unwrap();
    (0..n)
        .map(|i| {
            let mut item = RawItem::new();
            let key = format!("tfstate/team-{}/stack-{i}/terraform.tfstate", i % 40);
            match i % 10 {
                0..=6 => {
                    item.insert("LockID".into(), AttrValue::S(format!("{key}-md5")));
                    item.insert("Digest".into(), AttrValue::S("0cc175b9c0f1b6a831c399e269772661".into()));
                }
                7 | 8 => {
                    let at = base + chrono::Duration::seconds(i as i64);
                    let created = at.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
                    let info = format!(
                        concat!(
                            r#"{{"ID":"{i:08x}-8b1b-8e4c-d741-a4c77006cd79","#,
                            r#""Operation":"OperationTypeApply","Info":"","#,
                            r#""Who":"ci@runner-{i}","Version":"1.15.5","Created":"{created}","Path":"{key}"}}"#,
                        ),
                        i = i,
                        created = created,
                        key = key
                    );
                    item.insert("LockID".into(), AttrValue::S(key));
                    item.insert("Info".into(), AttrValue::S(info));
                }
                _ => {
                    item.insert("LockID".into(), AttrValue::S(key));
                    item.insert("Info".into(), AttrValue::S("{not json".into()));
                }
            }
            item
        })
        .collect()
}

fn measure(name: &str, n: usize, mut f: impl FnMut()) {
    f(); // warm up
    if !std::env::args().any(|a| a == "--bench") {
        // Under `cargo test` the bench is only a smoke test: one pass each.
        println!("{name}: ok");
        return;
    }
    let mut runs = 0u32;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(2) {
        f();
        runs += 1;
    }
    let per_run = start.elapsed() / runs;
    let rate = n as f64 / per_run.as_secs_f64();
    println!("{name:<42} {per_run:>12.3?} per {n} items  ({rate:>12.0} items/s, {runs} runs)");
}

fn main() {
    let vars = [
        ("LOCK_TABLES", "locks"),
        ("STALE_AFTER_OVERRIDES", "tfstate/team-1/*=6h,tfstate/team-2*/*=30m,*/sandbox/*=10m"),
        ("EXCLUDE", "tfstate/team-3/*,tfstate/pinned/*"),
        ("ACTION", "delete"),
        ("DELETE_AFTER", "8h"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let config = Config::from_vars(&vars, EntrypointDefaults { metrics_sink: MetricsSinkKind::None }).unwrap();
    let now = Utc.with_ymd_and_hms(2026, 11, 27, 0, 0, 0).unwrap();
    let source = SourceAddress::own(SourceKind::Table, "locks");
    for n in [10_000, 100_000] {
        let table = items(n);
        // parse_item consumes its item (the scan hands it over); the clone
        // that stands in for the scan is measured alone, beside it.
        measure("item clone (baseline)", n, || {
            for it in &table {
                black_box(it.clone());
            }
        });
        measure("item clone + parse_item", n, || {
            for it in &table {
                black_box(parse_item(&source, it.clone(), "ExpiresAt"));
            }
        });
        let locks: Vec<_> = table
            .iter()
            .filter_map(|it| match parse_item(&source, it.clone(), "ExpiresAt") {
                Item::Lock(l) => Some(*l),
                _ => None,
            })
            .collect();
        measure("policy.classify (3 overrides, 2 exclusions)", locks.len(), || {
            for l in &locks {
                black_box(config.policy.classify(l, now));
            }
        });
        let verdicts: Vec<_> = locks.iter().map(|l| config.policy.classify(l, now)).collect();
        measure("decide (whole run)", verdicts.len(), || {
            let cands: Vec<Candidate> = verdicts
                .iter()
                .map(|v| Candidate { verdict: v, has_ttl: false, ttl_supported: true, created_epoch: 0 })
                .collect();
            black_box(decide(
                &cands,
                DecideSettings {
                    action: Action::Delete,
                    dry_run: false,
                    ttl_after_secs: None,
                    max_deletes_per_run: 5,
                    release_dead_heartbeats: true,
                },
            ));
        });
    }
}
