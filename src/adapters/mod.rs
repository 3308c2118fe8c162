//! The adapters: each port implemented for one real service. Only this
//! folder and `wiring` know the AWS SDK or HTTP types.

pub(crate) mod aws_error;
pub mod clock_probe;
pub mod cloudwatch;
pub mod dynamodb_alert_state;
pub mod dynamodb_inspect;
pub mod dynamodb_locks;
pub mod emf;
pub(crate) mod organizations;
pub mod pagerduty;
pub(crate) mod routing;
pub(crate) mod s3_inspect;
pub mod s3_lockfiles;
pub mod secrets_manager;
pub mod slack;
pub mod sns;
pub(crate) mod tokio_timer;
