//! Secrets from Secrets Manager, read once per container: the PagerDuty
//! routing key (bare or JSON `{"routing_key": "..."}`) and the Slack
//! webhook URL (bare or JSON `{"url": "..."}`).

use crate::adapters::aws_error::Origin;
use crate::support::secret::Secret;

/// A secret that could not be read or does not hold a routing key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SecretError(pub String);

/// Read the routing key held by the secret `arn`.
pub(crate) async fn read_routing_key(
    client: &aws_sdk_secretsmanager::Client,
    endpoint_url: Option<&str>,
    arn: &str,
) -> Result<Secret, SecretError> {
    parse_routing_key_secret(&read_secret(client, endpoint_url, arn).await?).map_err(SecretError)
}

/// Read the Slack webhook URL held by the secret `arn`.
pub async fn read_webhook_url(
    client: &aws_sdk_secretsmanager::Client,
    endpoint_url: Option<&str>,
    arn: &str,
) -> Result<Secret, SecretError> {
    parse_webhook_url_secret(&read_secret(client, endpoint_url, arn).await?).map_err(SecretError)
}

async fn read_secret(
    client: &aws_sdk_secretsmanager::Client,
    endpoint_url: Option<&str>,
    arn: &str,
) -> Result<String, SecretError> {
    let out = client.get_secret_value().secret_id(arn).send().await.map_err(|e| {
        let origin = Origin::new(
            "secretsmanager",
            client.config().region().map(|r| r.as_ref()),
            client.config().timeout_config(),
            endpoint_url,
        );
        let cause = origin.cause("GetSecretValue", "secretsmanager:GetSecretValue", &format!("secret {arn}"), &e);
        SecretError(format!("a secret the reaper can read (GetSecretValue failed: {cause})"))
    })?;
    Ok(out.secret_string().unwrap_or_default().to_string())
}

/// The value a secret's text holds: the text itself, or the first of
/// `fields` in a JSON object. `shape` says what the secret should be; the
/// value is never echoed in an error.
fn secret_value(text: &str, fields: &[&str], shape: &str) -> Result<String, String> {
    let text = text.trim();
    if !text.starts_with('{') {
        return Ok(text.to_string());
    }
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|_| format!("{shape}: the secret is not valid JSON"))?;
    fields
        .iter()
        .find_map(|k| v.get(*k).and_then(|u| u.as_str()))
        .map(|u| u.trim().to_string())
        .ok_or_else(|| format!("{shape}: the JSON has no string {}", fields[0]))
}

/// The webhook URL from a secret's text: bare, or JSON with `url` (or
/// `webhook_url`). Never echoed in an error: it is the secret.
pub(crate) fn parse_webhook_url_secret(text: &str) -> Result<Secret, String> {
    const SHAPE: &str =
        "a secret string holding the webhook URL, bare or as {\"url\": \"https://hooks.slack.com/services/...\"}";
    let url = secret_value(text, &["url", "webhook_url"], SHAPE)?;
    if !crate::domain::alert::chat::valid_webhook_url(&url) {
        return Err(format!("{SHAPE}: the value is not an https URL"));
    }
    Ok(Secret::new(url))
}

/// The routing key from a secret's text: bare, or JSON with `routing_key`.
pub(crate) fn parse_routing_key_secret(text: &str) -> Result<Secret, String> {
    const SHAPE: &str = "a secret string holding the routing key, bare or as {\"routing_key\": \"...\"}";
    let key = secret_value(text, &["routing_key"], SHAPE)?;
    if key.is_empty() || key.chars().any(char::is_whitespace) {
        return Err(format!("{SHAPE}: the key is empty or contains whitespace"));
    }
    Ok(Secret::new(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_url_secret_shapes_never_echo_the_url() {
        let url = "https://hooks.slack.com/services/T0/B0/XyZ";
        assert_eq!(parse_webhook_url_secret(url).unwrap().expose(), url);
        assert_eq!(parse_webhook_url_secret(&format!(r#"{{"url": "{url}"}}"#)).unwrap().expose(), url);
        assert!(parse_webhook_url_secret("http://127.0.0.1:9/hook").is_ok(), "a local receiver");
        for bad in ["", "http://hooks.slack.com/services/T0/B0/XyZ", "not a url", r#"{"x": 1}"#, "ftp://a/b"] {
            let err = parse_webhook_url_secret(bad).unwrap_err();
            assert!(bad.len() < 5 || !err.contains(bad), "{err}");
        }
    }

    #[test]
    fn routing_key_secret_shapes() {
        assert_eq!(parse_routing_key_secret("abc123\n").unwrap().expose(), "abc123");
        assert_eq!(parse_routing_key_secret(r#"{"routing_key": "abc123", "other": 1}"#).unwrap().expose(), "abc123");
        for bad in ["", "   ", r#"{"key": "x"}"#, r#"{"routing_key": ""}"#, "{not json", "two words"] {
            assert!(parse_routing_key_secret(bad).is_err(), "{bad:?}");
        }
    }
}
