//! tf-lock-reaper's pure core: plain functions over plain data. Its
//! `Cargo.toml` names no AWS SDK, no tokio, no HTTP client and chrono without
//! its clock, so the compiler proves it does no I/O and reads no clock (`now`
//! is always a parameter); it builds for `wasm32-unknown-unknown`, where the
//! web page runs `explain`. The service crate re-exports it as `domain`.
//!
//! The lock model (table items and lockfiles), the staleness policy, the
//! decision (which writes, breaker, dry run), the run report, the metrics
//! derived from it, and the alerts (conditions, keys, commands, text).
//! For `exec`: the backend a working directory uses, Terraform's log lines
//! about its lock, the wrapped command's process tree, and the lock record.

pub mod age;
pub mod alert;
pub mod backend;
pub mod clock;
pub mod commands;
pub mod decision;
pub mod discovery;
pub mod explain;
pub mod failure;
pub mod health;
pub mod lock;
pub mod lock_record;
pub mod metrics;
pub mod organization;
pub mod policy;
pub mod process;
pub mod report;
pub mod source;
pub mod tflog;
