//! In-memory fakes of every port, one file per port, for fast tests of the
//! pipeline, `exec` and the dispatcher (no server, no Python). They keep
//! the real contracts: writes are conditional on what was read, a claim
//! succeeds once, a reminder moves `last_notified_at` only from its
//! expected value. Each can be told to fail, and records what was asked of
//! it. [`hooked::Hooked`] wraps any store (fake or real) to make something
//! happen between the reaper's read and its write.
//! Compiled for the crate's own tests and behind the `fakes` feature.

pub mod alerts;
pub mod clock;
pub mod hooked;
pub mod lock_tables;
pub mod lockfiles;
pub mod metrics;

pub use alerts::{MemoryAlertState, RecordingNotifier};
pub use clock::FixedClock;
pub use hooked::{Call, Hooked, Point};
pub use lock_tables::{info, lock_item, MemoryLockTables};
pub use lockfiles::MemoryLockfiles;
pub use metrics::RecordingMetrics;
