//! The adapters: each port implemented for one real service. Only this
//! folder and `wiring` know the AWS SDK or HTTP types.

pub mod aws_error;
pub mod cloudwatch;
pub mod dynamodb_alert_state;
pub mod dynamodb_inspect;
pub mod dynamodb_locks;
pub mod emf;
pub mod pagerduty;
pub mod routing;
pub mod s3_inspect;
pub mod s3_lockfiles;
pub mod secrets_manager;
pub mod slack;
pub mod sns;
pub mod tokio_timer;
