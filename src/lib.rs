//! tf-lock-reaper: find, classify and safely clear stale Terraform state
//! locks. The source tree shows the architecture (the README's "How the
//! code is laid out" walks it); imports run one way, from the entrypoints
//! down to the domain, and `tests/it/layering.rs` keeps it so:
//!
//! `entrypoints` → `wiring` → `adapters` / `pipeline` / `exec` / `doctor` / `discovery`
//! → `ports` / `config` → `domain` → `support`.

pub mod adapters;
pub mod config;
pub(crate) mod discovery;
pub(crate) mod doctor;
pub mod domain;
pub mod entrypoints;
pub(crate) mod exec;
#[cfg(any(test, feature = "fakes"))]
pub mod fakes;
pub mod pipeline;
pub mod ports;
pub mod support;
pub mod wiring;
