//! The notify-once state in a DynamoDB table: hash key `AlertKey` (S), TTL
//! on `ExpiresAt`. Claims and reminders are conditional, so two overlapping
//! runs never page twice.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::AttributeValue;

use crate::adapters::aws_error::Origin;

use crate::domain::alert::{AlertKind, OpenAlert, Severity};
use crate::domain::lock::SourceKind;
use crate::ports::alert_state::{AlertState, StateError};

/// How long an abandoned state item lives (its TTL, refreshed on each reminder).
pub(crate) const STATE_ITEM_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// The state table in DynamoDB: hash key `AlertKey` (S), TTL on `ExpiresAt`.
pub struct DynamoAlertState {
    client: aws_sdk_dynamodb::Client,
    table: String,
    origin: Origin,
}

impl DynamoAlertState {
    pub fn new(client: aws_sdk_dynamodb::Client, table: String) -> Self {
        let origin = Origin::new(
            "dynamodb",
            client.config().region().map(|r| r.as_ref()),
            client.config().timeout_config(),
            None,
        );
        DynamoAlertState { client, table, origin }
    }

    /// Name this endpoint override in error messages (`AWS_ENDPOINT_URL`).
    pub(crate) fn with_endpoint_url(mut self, url: Option<&str>) -> Self {
        self.origin = self.origin.with_endpoint_url(url);
        self
    }

    fn failed<E, R>(&self, operation: &'static str, iam_action: &'static str, err: &SdkError<E, R>) -> StateError
    where
        E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + 'static,
    {
        StateError(self.origin.explain(operation, iam_action, &format!("table {}", self.table), err).message)
    }
}

fn conditional_failed<E: aws_sdk_dynamodb::error::ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    e.as_service_error().and_then(|s| s.code()) == Some("ConditionalCheckFailedException")
}

fn ttl_from(now: i64) -> String {
    (now + STATE_ITEM_TTL.as_secs() as i64).to_string()
}

#[async_trait]
impl AlertState for DynamoAlertState {
    async fn open_alerts(&self) -> Result<Vec<OpenAlert>, StateError> {
        let mut pages =
            self.client.scan().table_name(&self.table).consistent_read(true).into_paginator().items().send();
        let mut out = Vec::new();
        while let Some(item) = pages.next().await {
            let item = item.map_err(|e| self.failed("Scan", "dynamodb:Scan", &e))?;
            let s = |k: &str| match item.get(k) {
                Some(AttributeValue::S(v)) => Some(v.clone()),
                _ => None,
            };
            let n = |k: &str| match item.get(k) {
                Some(AttributeValue::N(v)) => v.parse::<i64>().ok(),
                _ => None,
            };
            // Items we do not understand are left alone; they expire by TTL.
            let (Some(key), Some(kind)) = (s("AlertKey"), s("Kind").as_deref().and_then(AlertKind::parse)) else {
                continue;
            };
            out.push(OpenAlert {
                key,
                kind,
                source_name: s("TableName"),
                source_kind: match s("SourceKind").as_deref() {
                    Some("bucket") => Some(SourceKind::Bucket),
                    Some("table") => Some(SourceKind::Table),
                    _ => None,
                },
                lock_key: s("LockKey"),
                lock_id: s("LockInfoId"),
                severity: s("Severity").as_deref().and_then(Severity::parse).unwrap_or(Severity::Warning),
                opened_at: n("OpenedAt").unwrap_or(0),
                last_notified_at: n("LastNotifiedAt").unwrap_or(0),
                summary: s("Summary").unwrap_or_default(),
                count: n("Count").and_then(|c| u64::try_from(c).ok()),
            });
        }
        Ok(out)
    }

    async fn claim(&self, a: &OpenAlert) -> Result<bool, StateError> {
        let mut req = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("AlertKey", AttributeValue::S(a.key.clone()))
            .item("Kind", AttributeValue::S(a.kind.as_str().to_string()))
            .item("Severity", AttributeValue::S(a.severity.as_str().to_string()))
            .item("OpenedAt", AttributeValue::N(a.opened_at.to_string()))
            .item("LastNotifiedAt", AttributeValue::N(a.last_notified_at.to_string()))
            .item("ExpiresAt", AttributeValue::N(ttl_from(a.opened_at)))
            .item("Summary", AttributeValue::S(a.summary.clone()))
            .condition_expression("attribute_not_exists(AlertKey)");
        let source_kind = a.source_kind.map(|k| k.as_str().to_string());
        for (name, value) in [
            ("TableName", &a.source_name),
            ("SourceKind", &source_kind),
            ("LockKey", &a.lock_key),
            ("LockInfoId", &a.lock_id),
        ] {
            if let Some(v) = value.as_ref().filter(|v| !v.is_empty()) {
                req = req.item(name, AttributeValue::S(v.clone()));
            }
        }
        if let Some(count) = a.count {
            req = req.item("Count", AttributeValue::N(count.to_string()));
        }
        match req.send().await {
            Ok(_) => Ok(true),
            Err(e) if conditional_failed(&e) => Ok(false),
            Err(e) => Err(self.failed("PutItem", "dynamodb:PutItem", &e)),
        }
    }

    async fn renotified(&self, key: &str, expected: i64, now: i64, severity: Severity) -> Result<bool, StateError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("AlertKey", AttributeValue::S(key.to_string()))
            .update_expression("SET LastNotifiedAt = :now, Severity = :sev, ExpiresAt = :exp")
            .condition_expression("LastNotifiedAt = :expected")
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .expression_attribute_values(":sev", AttributeValue::S(severity.as_str().to_string()))
            .expression_attribute_values(":exp", AttributeValue::N(ttl_from(now)))
            .expression_attribute_values(":expected", AttributeValue::N(expected.to_string()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if conditional_failed(&e) => Ok(false),
            Err(e) => Err(self.failed("UpdateItem", "dynamodb:UpdateItem", &e)),
        }
    }

    async fn recount(&self, key: &str, count: u64, summary: &str) -> Result<(), StateError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("AlertKey", AttributeValue::S(key.to_string()))
            .update_expression("SET #count = :count, Summary = :summary")
            .condition_expression("attribute_exists(AlertKey)")
            .expression_attribute_names("#count", "Count")
            .expression_attribute_values(":count", AttributeValue::N(count.to_string()))
            .expression_attribute_values(":summary", AttributeValue::S(summary.to_string()))
            .send()
            .await;
        match result {
            // Resolved by an overlapping run: nothing to update.
            Ok(_) => Ok(()),
            Err(e) if conditional_failed(&e) => Ok(()),
            Err(e) => Err(self.failed("UpdateItem", "dynamodb:UpdateItem", &e)),
        }
    }

    async fn forget(&self, key: &str) -> Result<(), StateError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("AlertKey", AttributeValue::S(key.to_string()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.failed("DeleteItem", "dynamodb:DeleteItem", &e))
    }
}
