//! tf-lock-reaper: find, classify and safely clear stale Terraform state
//! locks. The source tree shows the architecture (the README's "How the
//! code is laid out" walks it); imports run one way, from the entrypoints
//! down to the domain, and `tests/it/layering.rs` keeps it so:
//!
//! `entrypoints` → `wiring` → `adapters` / `pipeline` / `exec` / `doctor` / `discovery`
//! → `ports` / `config` → `support` → `domain`. The domain is its own crate
//! (`core/`, `tf-lock-reaper-core`), which cannot name the AWS SDK, tokio or
//! an HTTP client: the compiler keeps it pure.

pub mod adapters;
pub mod config;
pub(crate) mod discovery;
pub(crate) mod doctor;
/// The pure core (`core/`): the lock model, policy, decision, report,
/// alerts, commands and `explain`.
pub use tf_lock_reaper_core as domain;
pub mod entrypoints;
pub(crate) mod exec;
#[cfg(any(test, feature = "fakes"))]
pub mod fakes;
pub mod pipeline;
pub mod ports;
pub mod support;
pub mod wiring;
