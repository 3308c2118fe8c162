//! One readable line for a failed AWS call: what failed, the cause in plain
//! words, and the next step, with a stable [`ErrorKind`]. Recognised from
//! the SDK's typed errors (the `SdkError` variant, the connector error's
//! kind, the credential provider's error, the service's error code), never
//! from its Debug text, which goes to debug logs only (`-v`, `RUST_LOG=debug`).

use std::error::Error as StdError;
use std::fmt::Debug;
use std::time::Duration;

use aws_credential_types::provider::error::CredentialsError;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use aws_smithy_types::timeout::TimeoutConfig;

use crate::domain::failure::ErrorKind;
use crate::ports::SourceError;

/// The providers of the SDK's default credential chain, in order.
pub(crate) const CREDENTIAL_CHAIN: &str = "environment variables, the web identity token, the shared config and \
credentials files (profile `default` or AWS_PROFILE), SSO, the ECS container endpoint and the EC2 instance metadata";

/// What a failed call needed and was about, and where it went.
#[derive(Debug, Clone, Copy)]
struct Call<'a> {
    origin: &'a Origin,
    /// The IAM action it needs, e.g. `dynamodb:Scan`.
    iam_action: &'static str,
    /// What it was about, e.g. `table locks`.
    resource: &'a str,
}

/// Where an adapter's client talks to, named in its error messages.
#[derive(Debug, Clone)]
pub(crate) struct Origin {
    service: &'static str,
    region: Option<String>,
    endpoint: String,
    attempt_timeout: Option<Duration>,
    operation_timeout: Option<Duration>,
}

impl Origin {
    /// `service` as in AWS host names (`dynamodb`, `s3`, `sns`, …); the
    /// region the client signs for and its timeouts; the endpoint override,
    /// if any.
    pub(crate) fn new(
        service: &'static str,
        region: Option<&str>,
        timeouts: Option<&TimeoutConfig>,
        endpoint_url: Option<&str>,
    ) -> Self {
        Origin {
            service,
            region: region.map(str::to_string),
            endpoint: endpoint(endpoint_url, service, region),
            attempt_timeout: timeouts.and_then(TimeoutConfig::operation_attempt_timeout),
            operation_timeout: timeouts.and_then(TimeoutConfig::operation_timeout),
        }
    }

    /// The same origin behind an endpoint override (`AWS_ENDPOINT_URL`).
    pub(crate) fn with_endpoint_url(mut self, endpoint_url: Option<&str>) -> Self {
        self.endpoint = endpoint(endpoint_url, self.service, self.region.as_deref());
        self
    }

    /// The readable error of a failed `operation` (needing `iam_action`) on `resource`.
    pub(crate) fn explain<E, R>(
        &self,
        operation: &'static str,
        iam_action: &'static str,
        resource: &str,
        err: &SdkError<E, R>,
    ) -> SourceError
    where
        E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
        R: Debug + 'static,
    {
        let (kind, cause) = self.diagnose(operation, iam_action, resource, err);
        SourceError::new(kind, format!("{operation} on {resource} failed: {cause}"))
    }

    /// Only the cause and next step, for callers that name the operation themselves.
    pub(crate) fn cause<E, R>(
        &self,
        operation: &'static str,
        iam_action: &'static str,
        resource: &str,
        err: &SdkError<E, R>,
    ) -> String
    where
        E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
        R: Debug + 'static,
    {
        self.diagnose(operation, iam_action, resource, err).1
    }

    /// Log the SDK's full chain at debug level; classify the error.
    fn diagnose<E, R>(
        &self,
        operation: &'static str,
        iam_action: &'static str,
        resource: &str,
        err: &SdkError<E, R>,
    ) -> (ErrorKind, String)
    where
        E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
        R: Debug + 'static,
    {
        tracing::debug!(operation, resource, error = ?err, "AWS call failed");
        classify(&Call { origin: self, iam_action, resource }, err)
    }
}

/// `host:port` a client talks to: the configured endpoint, or AWS's own
/// for the service and region.
fn endpoint(configured: Option<&str>, service: &str, region: Option<&str>) -> String {
    if let Some(url) = configured.and_then(|u| url::Url::parse(u).ok()) {
        let host = url.host_str().unwrap_or("?");
        return match url.port_or_known_default() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        };
    }
    format!("{service}.{}.amazonaws.com:443", region.unwrap_or("<no region>"))
}

/// The credential provider's error, if one is in the chain.
pub(crate) fn credentials_cause(err: &CredentialsError) -> String {
    match err {
        CredentialsError::CredentialsNotLoaded(_) => format!(
            "no AWS credentials found (tried {CREDENTIAL_CHAIN}); set AWS_PROFILE, run `aws sso login`, or export \
                AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        ),
        CredentialsError::ProviderTimedOut(t) => format!(
            "loading AWS credentials took longer than {:?} (tried {CREDENTIAL_CHAIN}); set AWS_PROFILE, or \
                AWS_EC2_METADATA_DISABLED=true off EC2",
            t.timeout_duration()
        ),
        CredentialsError::InvalidConfiguration(_) => {
            "the AWS credential configuration is invalid (check the profile in ~/.aws/config and AWS_PROFILE)"
                .to_string()
        }
        CredentialsError::ProviderError(_) | CredentialsError::Unhandled(_) | _ => {
            "the AWS credential provider failed (an expired SSO session? run `aws sso login`; `-v` shows the details)"
                .to_string()
        }
    }
}

fn classify<E, R>(call: &Call<'_>, err: &SdkError<E, R>) -> (ErrorKind, String)
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    R: Debug + 'static,
{
    if let Some(c) = find::<CredentialsError>(err) {
        return (ErrorKind::Credentials, credentials_cause(c));
    }
    let region = call.origin.region.as_deref().unwrap_or("(no region: set AWS_REGION)");
    match err {
        SdkError::ServiceError(service) => by_code(call, service.err().code(), service.err().message(), region),
        SdkError::TimeoutError(_) => {
            (ErrorKind::Timeout, no_answer(call, "per-operation", call.origin.operation_timeout))
        }
        SdkError::DispatchFailure(d) if d.is_timeout() => {
            (ErrorKind::Timeout, no_answer(call, "per-attempt", call.origin.attempt_timeout))
        }
        SdkError::DispatchFailure(d) if d.is_io() => (ErrorKind::Unreachable, unreachable(call, err)),
        SdkError::DispatchFailure(_) => (ErrorKind::Unreachable, unreachable(call, err)),
        SdkError::ResponseError(_) => (
            ErrorKind::Other,
            format!("the answer from {} could not be read (a proxy in the way? `-v` shows it)", call.origin.endpoint),
        ),
        SdkError::ConstructionFailure(_) => {
            (ErrorKind::Other, "the request could not be built (`-v` shows why)".to_string())
        }
        _ => (ErrorKind::Other, "unexpected SDK error (`-v` shows it)".to_string()),
    }
}

/// A timeout: which one ran out, and where it comes from.
fn no_answer(call: &Call<'_>, which: &str, timeout: Option<Duration>) -> String {
    let after = timeout.map(|t| format!(" of {}", humantime::format_duration(t))).unwrap_or_default();
    format!(
        "no answer from {} within the {which} timeout{after} (derived from RUN_BUDGET); check the network path or \
            raise RUN_BUDGET",
        call.origin.endpoint
    )
}

/// Connection failures, in the words of the I/O error underneath.
fn unreachable<E, R>(call: &Call<'_>, err: &SdkError<E, R>) -> String
where
    E: StdError + 'static,
    R: Debug + 'static,
{
    let io = find::<std::io::Error>(err);
    let why = match io.map(std::io::Error::kind) {
        Some(std::io::ErrorKind::ConnectionRefused) => "connection refused".to_string(),
        Some(std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted) => {
            "the connection was reset".to_string()
        }
        Some(std::io::ErrorKind::NotFound) => "the host name could not be resolved (DNS)".to_string(),
        Some(std::io::ErrorKind::InvalidData) => "TLS handshake failed".to_string(),
        Some(kind) => kind.to_string(),
        None => "the connection failed".to_string(),
    };
    format!("cannot reach {} ({why}); check AWS_ENDPOINT_URL, AWS_REGION and the network path", call.origin.endpoint)
}

/// A service error by its code.
fn by_code(call: &Call<'_>, code: Option<&str>, message: Option<&str>, region: &str) -> (ErrorKind, String) {
    let code = code.unwrap_or("");
    let message = message.map(|m| crate::domain::alert::text::clean(m, 300)).unwrap_or_default();
    match code {
        "AccessDeniedException" | "AccessDenied" | "AuthorizationError" | "UnauthorizedOperation" => (
            ErrorKind::AccessDenied,
            format!(
                "access denied: the credentials in use may not {} on {} in {region}; grant it (the README lists the \
                    IAM actions of each ACTION mode)",
                call.iam_action, call.resource
            ),
        ),
        "ResourceNotFoundException" | "NoSuchBucket" | "NotFound" | "NoSuchEntity" => (
            ErrorKind::NotFound,
            format!(
                "{} does not exist in region {region} for the account of the credentials in use; a wrong AWS_REGION \
                    (or account) is the usual cause",
                call.resource
            ),
        ),
        "ThrottlingException"
        | "Throttling"
        | "ProvisionedThroughputExceededException"
        | "RequestLimitExceeded"
        | "SlowDown"
        | "TooManyRequestsException" => (
            ErrorKind::Throttled,
            format!("throttled after all retries ({code}); lower SCAN_SEGMENTS or run less often"),
        ),
        "ExpiredTokenException" | "ExpiredToken" | "TokenRefreshRequired" => (
            ErrorKind::Credentials,
            "the AWS session token has expired; refresh the credentials (`aws sso login`)".to_string(),
        ),
        "UnrecognizedClientException" | "InvalidClientTokenId" | "InvalidAccessKeyId" | "SignatureDoesNotMatch" => (
            ErrorKind::Credentials,
            format!("the AWS credentials are not valid ({code}); check AWS_PROFILE or the access keys in use"),
        ),
        "RequestTimeTooSkewed" | "InvalidSignatureException"
            if message.to_ascii_lowercase().contains("expired") || code == "RequestTimeTooSkewed" =>
        {
            (
                ErrorKind::Credentials,
                "the request was refused as signed at the wrong time: this machine's clock is off; sync it (NTP)"
                    .to_string(),
            )
        }
        "" => (ErrorKind::Other, format!("the service answered an error without a code{}", with(&message))),
        _ => (ErrorKind::Other, format!("{code}{}", with(&message))),
    }
}

fn with(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}

/// The first error of type `T` in an error's source chain.
fn find<'a, T: StdError + 'static>(err: &'a (dyn StdError + 'static)) -> Option<&'a T> {
    let mut current: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(t) = e.downcast_ref::<T>() {
            return Some(t);
        }
        current = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    //! Failures nothing local can produce (moto neither enforces IAM nor
    //! expires tokens), through a real adapter over `aws-smithy-mocks`.
    use aws_sdk_cloudwatch::operation::put_metric_data::PutMetricDataError;
    use aws_smithy_mocks::{mock, mock_client};
    use aws_smithy_types::error::ErrorMetadata;

    use crate::adapters::cloudwatch::ApiSink;
    use crate::domain::metrics::{MetricSet, Unit};
    use crate::ports::metrics::MetricsSink;

    /// The readable line the CloudWatch adapter gives for a service error.
    async fn failure(code: &'static str, message: &'static str) -> String {
        let rule = mock!(aws_sdk_cloudwatch::Client::put_metric_data).then_error(move || {
            PutMetricDataError::generic(ErrorMetadata::builder().code(code).message(message).build())
        });
        let sink = ApiSink::new(mock_client!(aws_sdk_cloudwatch, [&rule]));
        let set = MetricSet { dimensions: Vec::new(), values: vec![("LocksHeld", 1.0, Unit::Count)] };
        sink.publish("TerraformLocks", chrono::Utc::now(), &[set]).await.unwrap_err().to_string()
    }

    #[tokio::test]
    async fn access_denied_names_the_action_and_the_resource() {
        let line = failure("AccessDenied", "User: arn:aws:sts::1:assumed-role/x is not authorized").await;
        assert!(
            line.starts_with(
                "PutMetricData on namespace TerraformLocks failed: access denied: the credentials in \
                use may not cloudwatch:PutMetricData on namespace TerraformLocks in "
            ),
            "{line}"
        );
        assert!(line.ends_with("grant it (the README lists the IAM actions of each ACTION mode)"), "{line}");
    }

    #[tokio::test]
    async fn expired_and_invalid_credentials_and_clock_skew() {
        let expired = failure("ExpiredToken", "The security token included in the request is expired").await;
        assert!(
            expired.ends_with("the AWS session token has expired; refresh the credentials (`aws sso login`)"),
            "{expired}"
        );
        let invalid = failure("InvalidClientTokenId", "The security token is invalid").await;
        assert!(invalid.contains("the AWS credentials are not valid (InvalidClientTokenId)"), "{invalid}");
        let skew =
            failure("InvalidSignatureException", "Signature expired: 20261127T100000Z is now earlier than ...").await;
        assert!(skew.contains("this machine's clock is off; sync it (NTP)"), "{skew}");
    }

    #[tokio::test]
    async fn anything_else_is_its_code_and_message_once() {
        let line = failure("InvalidParameterValue", "The value of MetricData is invalid").await;
        assert_eq!(
            line,
            "PutMetricData on namespace TerraformLocks failed: InvalidParameterValue: The value of MetricData is \
                invalid"
        );
    }
}
