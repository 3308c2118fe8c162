//! tf-lock-reaper: find, classify and safely clear stale Terraform state
//! locks. The pure core (`model`, `policy`, `decide`, `report`) knows no AWS
//! type; `alerts` decides what on-call is told; `store`, `metrics` and
//! `notify` are the adapters; `run` is the pipeline both
//! entrypoints (the Lambda handler and the CLI) call.

pub mod alerts;
pub mod aws;
pub mod config;
pub mod decide;
pub mod lambda;
pub mod lockfiles;
pub mod metrics;
pub mod model;
pub mod notify;
pub mod policy;
pub mod report;
pub mod run;
pub mod store;
