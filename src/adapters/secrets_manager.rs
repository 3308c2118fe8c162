//! The PagerDuty routing key from Secrets Manager: the secret holds the
//! bare key or JSON `{"routing_key": "..."}`. Read once per container.

use crate::adapters::aws_error::Origin;
use crate::support::secret::Secret;

/// A secret that could not be read or does not hold a routing key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SecretError(pub String);

/// Read the routing key held by the secret `arn`.
pub async fn read_routing_key(
    client: &aws_sdk_secretsmanager::Client,
    endpoint_url: Option<&str>,
    arn: &str,
) -> Result<Secret, SecretError> {
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
    parse_routing_key_secret(out.secret_string().unwrap_or_default()).map_err(SecretError)
}

/// The routing key from a secret's text: bare, or JSON with `routing_key`.
pub fn parse_routing_key_secret(text: &str) -> Result<Secret, String> {
    const SHAPE: &str = "a secret string holding the routing key, bare or as {\"routing_key\": \"...\"}";
    let text = text.trim();
    let key = if text.starts_with('{') {
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|_| format!("{SHAPE}: the secret is not valid JSON"))?;
        v.get("routing_key")
            .and_then(|k| k.as_str())
            .map(str::trim)
            .ok_or_else(|| format!("{SHAPE}: the JSON has no string routing_key"))?
            .to_string()
    } else {
        text.to_string()
    };
    if key.is_empty() || key.chars().any(char::is_whitespace) {
        return Err(format!("{SHAPE}: the key is empty or contains whitespace"));
    }
    Ok(Secret::new(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_key_secret_shapes() {
        assert_eq!(parse_routing_key_secret("abc123\n").unwrap().expose(), "abc123");
        assert_eq!(parse_routing_key_secret(r#"{"routing_key": "abc123", "other": 1}"#).unwrap().expose(), "abc123");
        for bad in ["", "   ", r#"{"key": "x"}"#, r#"{"routing_key": ""}"#, "{not json", "two words"] {
            assert!(parse_routing_key_secret(bad).is_err(), "{bad:?}");
        }
    }
}
