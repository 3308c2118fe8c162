//! The DynamoDB adapter of [`LockTables`]. Every write is conditional on the
//! lock's exact `Info` string as read, so a lock that was released or
//! re-acquired since the scan is never touched.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;

use crate::domain::lock::{AttrValue, RawItem, INFO_ATTR, LOCK_ID_ATTR};
use crate::ports::lock_tables::LockTables;
use crate::ports::{SourceError, WriteOutcome};

/// The DynamoDB adapter.
#[derive(Debug, Clone)]
pub struct DynamoLockTables {
    client: Client,
}

impl DynamoLockTables {
    pub fn new(client: Client) -> Self {
        DynamoLockTables { client }
    }

    async fn scan_segment(&self, table: &str, segment: i32, segments: i32) -> Result<Vec<RawItem>, SourceError> {
        let mut request = self.client.scan().table_name(table).consistent_read(false);
        if segments > 1 {
            request = request.segment(segment).total_segments(segments);
        }
        let mut pages = request.into_paginator().send();
        let mut items = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| SourceError(describe(e)))?;
            items.extend(page.items.unwrap_or_default().iter().map(to_raw_item));
        }
        Ok(items)
    }
}

#[async_trait]
impl LockTables for DynamoLockTables {
    async fn scan(&self, table: &str, segments: i32) -> Result<Vec<RawItem>, SourceError> {
        let segments = segments.max(1);
        let parts = futures::future::try_join_all((0..segments).map(|s| self.scan_segment(table, s, segments))).await?;
        Ok(parts.into_iter().flatten().collect())
    }

    async fn delete_lock(&self, table: &str, lock_key: &str, expected_info: &str) -> Result<WriteOutcome, SourceError> {
        let result = self
            .client
            .delete_item()
            .table_name(table)
            .key(LOCK_ID_ATTR, AttributeValue::S(lock_key.to_string()))
            .condition_expression("#info = :info")
            .expression_attribute_names("#info", INFO_ATTR)
            .expression_attribute_values(":info", AttributeValue::S(expected_info.to_string()))
            .send()
            .await;
        conditional_outcome(result)
    }

    async fn set_ttl(
        &self,
        table: &str,
        lock_key: &str,
        expected_info: &str,
        attribute: &str,
        expires_at: i64,
    ) -> Result<WriteOutcome, SourceError> {
        let result = self
            .client
            .update_item()
            .table_name(table)
            .key(LOCK_ID_ATTR, AttributeValue::S(lock_key.to_string()))
            .update_expression("SET #ttl = :exp")
            .condition_expression("#info = :info AND attribute_not_exists(#ttl)")
            .expression_attribute_names("#info", INFO_ATTR)
            .expression_attribute_names("#ttl", attribute)
            .expression_attribute_values(":info", AttributeValue::S(expected_info.to_string()))
            .expression_attribute_values(":exp", AttributeValue::N(expires_at.to_string()))
            .send()
            .await;
        conditional_outcome(result)
    }
}

/// A conditional write's result: done, refused by its condition (the lock
/// changed or is gone), or failed.
fn conditional_outcome<T, E, R>(result: Result<T, SdkError<E, R>>) -> Result<WriteOutcome, SourceError>
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    match result {
        Ok(_) => Ok(WriteOutcome::Done),
        Err(e) if is_conditional_failure(&e) => Ok(WriteOutcome::Changed),
        Err(e) => Err(SourceError(describe(e))),
    }
}

/// `ConditionalCheckFailedException`, whatever the operation.
fn is_conditional_failure<E, R>(err: &SdkError<E, R>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    err.as_service_error().and_then(|e| e.code()).is_some_and(|c| c == "ConditionalCheckFailedException")
}

/// The full error chain in one line (the SDK's `Display` alone says only
/// "service error").
fn describe<E: std::error::Error>(err: E) -> String {
    DisplayErrorContext(err).to_string()
}

/// Convert an SDK item to the model's plain item.
pub fn to_raw_item(item: &HashMap<String, AttributeValue>) -> RawItem {
    item.iter()
        .map(|(k, v)| {
            let value = match v {
                AttributeValue::S(s) => AttrValue::S(s.clone()),
                AttributeValue::N(n) => AttrValue::N(n.clone()),
                AttributeValue::B(_) => AttrValue::Other("B"),
                AttributeValue::Bool(_) => AttrValue::Other("BOOL"),
                AttributeValue::Bs(_) => AttrValue::Other("BS"),
                AttributeValue::L(_) => AttrValue::Other("L"),
                AttributeValue::M(_) => AttrValue::Other("M"),
                AttributeValue::Ns(_) => AttrValue::Other("NS"),
                AttributeValue::Null(_) => AttrValue::Other("NULL"),
                AttributeValue::Ss(_) => AttrValue::Other("SS"),
                _ => AttrValue::Other("unknown"),
            };
            (k.clone(), value)
        })
        .collect()
}
