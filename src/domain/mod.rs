//! The pure domain: plain functions over plain data, no I/O, no AWS type.
//! The lock model (table items and lockfiles), the staleness policy, the
//! decision (which writes, breaker, dry run), the run report, the metrics
//! derived from it, and the alerts (conditions, keys, commands, text).

pub mod alert;
pub mod decision;
pub mod failure;
pub mod lock;
pub mod metrics;
pub mod policy;
pub mod report;
