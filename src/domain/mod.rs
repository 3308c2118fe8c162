//! The pure domain: plain functions over plain data, no I/O, no AWS type.
//! The lock model (table items and lockfiles), the staleness policy, the
//! decision (which writes, breaker, dry run), the run report, the metrics
//! derived from it, and the alerts (conditions, keys, commands, text).
//! For `exec`: the backend a working directory uses, Terraform's log lines
//! about its lock, the wrapped command's process tree, and the lock record.

pub mod alert;
pub(crate) mod backend;
pub mod clock;
pub mod commands;
pub mod decision;
pub(crate) mod discovery;
pub mod explain;
pub mod failure;
pub(crate) mod health;
pub mod lock;
pub(crate) mod lock_record;
pub mod metrics;
pub mod organization;
pub(crate) mod policy;
pub(crate) mod process;
pub mod report;
pub mod source;
pub(crate) mod tflog;
