//! The DynamoDB adapter of [`LockTables`]. Every write is conditional on the
//! lock's exact `Info` string as read, so a lock that was released or
//! re-acquired since the scan is never touched.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use futures::StreamExt;

use crate::adapters::aws_error::Origin;
use crate::domain::lock::{
    contract_seconds, epoch_attribute, heartbeat_timeout_attribute, AttrValue, RawItem, INFO_ATTR, LOCK_ID_ATTR,
};
use crate::domain::source::SourceAddress;
use crate::ports::lock_tables::{Beat, HeartbeatGuard, HeldItem, HeldLockTables, LockTables};
use crate::ports::{SourceError, WriteOutcome};

/// A failed Scan page, as the SDK reports it.
type ScanFailure = SdkError<aws_sdk_dynamodb::operation::scan::ScanError, aws_sdk_dynamodb::config::http::HttpResponse>;

/// The DynamoDB adapter.
#[derive(Debug, Clone)]
pub struct DynamoLockTables {
    client: Client,
    origin: Origin,
}

impl DynamoLockTables {
    pub fn new(client: Client) -> Self {
        let origin = Origin::new(
            "dynamodb",
            client.config().region().map(|r| r.as_ref()),
            client.config().timeout_config(),
            None,
        );
        DynamoLockTables { client, origin }
    }

    /// Name this endpoint override in error messages (`AWS_ENDPOINT_URL`).
    pub fn with_endpoint_url(mut self, url: Option<&str>) -> Self {
        self.origin = self.origin.with_endpoint_url(url);
        self
    }

    /// The readable error of a failed call on `table`.
    fn failed<E, R>(
        &self,
        operation: &'static str,
        iam_action: &'static str,
        table: &str,
        err: &SdkError<E, R>,
    ) -> SourceError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + 'static,
    {
        self.origin.explain(operation, iam_action, &format!("table {table}"), err)
    }

    /// One page stream per segment, merged: pages reach the caller as
    /// they arrive from any segment.
    fn pages<'a>(
        &'a self,
        table: &'a str,
        segments: i32,
    ) -> impl futures::Stream<Item = Result<Vec<HashMap<String, AttributeValue>>, ScanFailure>> + Send + 'a {
        let streams = (0..segments).map(move |segment| {
            let mut request = self.client.scan().table_name(table).consistent_read(false);
            if segments > 1 {
                request = request.segment(segment).total_segments(segments);
            }
            let pages = request.into_paginator().send();
            Box::pin(futures::stream::unfold(pages, |mut pages| async move {
                let page = pages.next().await?;
                Some((page.map(|p| p.items.unwrap_or_default()), pages))
            }))
        });
        futures::stream::select_all(streams)
    }

    /// A failed condition (`Changed`) becomes `Gone` when one consistent
    /// read finds no item; any other outcome stands.
    async fn changed_or_gone(
        &self,
        outcome: WriteOutcome,
        table: &str,
        lock_key: &str,
    ) -> Result<WriteOutcome, SourceError> {
        match outcome {
            WriteOutcome::Changed => match self.reread(table, lock_key, None).await? {
                None => Ok(WriteOutcome::Gone),
                Some(_) => Ok(WriteOutcome::Changed),
            },
            done => Ok(done),
        }
    }

    /// The item's `Info` and the TTL attribute, read consistently after a
    /// write's condition failed; `None` if the item is gone.
    async fn reread(
        &self,
        table: &str,
        lock_key: &str,
        ttl_attribute: Option<&str>,
    ) -> Result<Option<HashMap<String, AttributeValue>>, SourceError> {
        let mut request = self
            .client
            .get_item()
            .table_name(table)
            .key(LOCK_ID_ATTR, AttributeValue::S(lock_key.to_string()))
            .consistent_read(true)
            .projection_expression("#id, #info")
            .expression_attribute_names("#id", LOCK_ID_ATTR)
            .expression_attribute_names("#info", INFO_ATTR);
        if let Some(attr) = ttl_attribute {
            request = request.projection_expression("#id, #info, #ttl").expression_attribute_names("#ttl", attr);
        }
        request.send().await.map(|out| out.item).map_err(|e| self.failed("GetItem", "dynamodb:GetItem", table, &e))
    }
}

#[async_trait]
impl LockTables for DynamoLockTables {
    async fn scan(
        &self,
        table: &SourceAddress,
        segments: i32,
        page: &mut (dyn FnMut(Vec<RawItem>) + Send),
    ) -> Result<(), SourceError> {
        let table = &table.api_name();
        let mut pages = std::pin::pin!(self.pages(table, segments.max(1)));
        while let Some(items) = pages.next().await {
            let items = items.map_err(|e| self.failed("Scan", "dynamodb:Scan", table, &e))?;
            page(items.into_iter().map(into_raw_item).collect());
        }
        Ok(())
    }

    async fn delete_lock(
        &self,
        table: &SourceAddress,
        lock_key: &str,
        expected_info: &str,
        heartbeat: Option<HeartbeatGuard<'_>>,
    ) -> Result<WriteOutcome, SourceError> {
        let table = &table.api_name();
        let mut request = self
            .client
            .delete_item()
            .table_name(table)
            .key(LOCK_ID_ATTR, AttributeValue::S(lock_key.to_string()))
            .condition_expression("#info = :info")
            .expression_attribute_names("#info", INFO_ATTR)
            .expression_attribute_values(":info", AttributeValue::S(expected_info.to_string()));
        if let Some(guard) = heartbeat {
            request = request.expression_attribute_names("#hb", guard.attribute);
            request = match guard.value {
                Some(v) => request
                    .condition_expression("#info = :info AND #hb = :hb")
                    .expression_attribute_values(":hb", AttributeValue::N(v.to_string())),
                None => request.condition_expression("#info = :info AND attribute_not_exists(#hb)"),
            };
        }
        let outcome = conditional_outcome(request.send().await)
            .map_err(|e| self.failed("DeleteItem", "dynamodb:DeleteItem", table, &e))?;
        self.changed_or_gone(outcome, table, lock_key).await
    }

    async fn set_ttl(
        &self,
        table: &SourceAddress,
        lock_key: &str,
        expected_info: &str,
        attribute: &str,
        expires_at: i64,
    ) -> Result<WriteOutcome, SourceError> {
        let table = &table.api_name();
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
        match conditional_outcome(result).map_err(|e| self.failed("UpdateItem", "dynamodb:UpdateItem", table, &e))? {
            WriteOutcome::Changed => {
                let Some(item) = self.reread(table, lock_key, Some(attribute)).await? else {
                    return Ok(WriteOutcome::Gone);
                };
                let unchanged = matches!(item.get(INFO_ATTR), Some(AttributeValue::S(i)) if i == expected_info);
                let ours = matches!(item.get(attribute), Some(AttributeValue::N(n)) if *n == expires_at.to_string());
                // An earlier attempt of this very write landed; its response was lost.
                Ok(if unchanged && ours { WriteOutcome::Done } else { WriteOutcome::Changed })
            }
            done => Ok(done),
        }
    }
}

#[async_trait]
impl HeldLockTables for DynamoLockTables {
    async fn get_lock(
        &self,
        table: &SourceAddress,
        lock_key: &str,
        heartbeat_attribute: &str,
    ) -> Result<Option<HeldItem>, SourceError> {
        let table = &table.api_name();
        let contract_attribute = heartbeat_timeout_attribute(heartbeat_attribute);
        let item = self
            .client
            .get_item()
            .table_name(table)
            .key(LOCK_ID_ATTR, AttributeValue::S(lock_key.to_string()))
            .consistent_read(true)
            .projection_expression("#id, #info, #hb, #hbt")
            .expression_attribute_names("#id", LOCK_ID_ATTR)
            .expression_attribute_names("#info", INFO_ATTR)
            .expression_attribute_names("#hb", heartbeat_attribute)
            .expression_attribute_names("#hbt", &contract_attribute)
            .send()
            .await
            .map_err(|e| self.failed("GetItem", "dynamodb:GetItem", table, &e))?
            .item;
        Ok(item.map(|item| {
            let item = into_raw_item(item);
            let info = match item.get(INFO_ATTR) {
                Some(AttrValue::S(s)) => Some(s.clone()),
                _ => None,
            };
            HeldItem {
                info,
                heartbeat: epoch_attribute(&item, heartbeat_attribute),
                heartbeat_timeout: contract_seconds(epoch_attribute(&item, &contract_attribute)),
            }
        }))
    }

    async fn heartbeat(
        &self,
        table: &SourceAddress,
        lock_key: &str,
        expected_info: &str,
        beat: Beat<'_>,
    ) -> Result<WriteOutcome, SourceError> {
        let table = &table.api_name();
        let mut request = self
            .client
            .update_item()
            .table_name(table)
            .key(LOCK_ID_ATTR, AttributeValue::S(lock_key.to_string()))
            .update_expression("SET #hb = :hb, #hbt = :hbt")
            .condition_expression("#info = :info")
            .expression_attribute_names("#info", INFO_ATTR)
            .expression_attribute_names("#hb", beat.attribute)
            .expression_attribute_names("#hbt", heartbeat_timeout_attribute(beat.attribute))
            .expression_attribute_values(":info", AttributeValue::S(expected_info.to_string()))
            .expression_attribute_values(":hb", AttributeValue::N(beat.at.to_string()))
            .expression_attribute_values(":hbt", AttributeValue::N(beat.timeout.to_string()));
        if let Some((attribute, expires_at)) = beat.ttl {
            request = request
                .update_expression("SET #hb = :hb, #hbt = :hbt, #ttl = :exp")
                .expression_attribute_names("#ttl", attribute)
                .expression_attribute_values(":exp", AttributeValue::N(expires_at.to_string()));
        }
        let outcome = conditional_outcome(request.send().await)
            .map_err(|e| self.failed("UpdateItem", "dynamodb:UpdateItem", table, &e))?;
        self.changed_or_gone(outcome, table, lock_key).await
    }

    async fn restore(
        &self,
        table: &SourceAddress,
        lock_key: &str,
        info: &str,
        beat: Beat<'_>,
    ) -> Result<WriteOutcome, SourceError> {
        let table = &table.api_name();
        let mut request = self
            .client
            .put_item()
            .table_name(table)
            .item(LOCK_ID_ATTR, AttributeValue::S(lock_key.to_string()))
            .item(INFO_ATTR, AttributeValue::S(info.to_string()))
            .item(beat.attribute, AttributeValue::N(beat.at.to_string()))
            .item(heartbeat_timeout_attribute(beat.attribute), AttributeValue::N(beat.timeout.to_string()))
            .condition_expression("attribute_not_exists(#id)")
            .expression_attribute_names("#id", LOCK_ID_ATTR);
        if let Some((attribute, expires_at)) = beat.ttl {
            request = request.item(attribute, AttributeValue::N(expires_at.to_string()));
        }
        conditional_outcome(request.send().await).map_err(|e| self.failed("PutItem", "dynamodb:PutItem", table, &e))
    }

    async fn release(
        &self,
        table: &SourceAddress,
        lock_key: &str,
        expected_info: &str,
        heartbeat: Option<HeartbeatGuard<'_>>,
    ) -> Result<WriteOutcome, SourceError> {
        LockTables::delete_lock(self, table, lock_key, expected_info, heartbeat).await
    }
}

/// A conditional write's result: done, refused by its condition (the lock
/// changed or is gone), or the SDK's error.
fn conditional_outcome<T, E, R>(result: Result<T, SdkError<E, R>>) -> Result<WriteOutcome, SdkError<E, R>>
where
    E: ProvideErrorMetadata,
{
    match result {
        Ok(_) => Ok(WriteOutcome::Done),
        Err(e) if is_conditional_failure(&e) => Ok(WriteOutcome::Changed),
        Err(e) => Err(e),
    }
}

/// `ConditionalCheckFailedException`, whatever the operation.
fn is_conditional_failure<E, R>(err: &SdkError<E, R>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    err.as_service_error().and_then(|e| e.code()).is_some_and(|c| c == "ConditionalCheckFailedException")
}

/// Convert an SDK item to the model's plain item, moving its strings.
pub(crate) fn into_raw_item(item: HashMap<String, AttributeValue>) -> RawItem {
    item.into_iter()
        .map(|(k, v)| {
            let value = match v {
                AttributeValue::S(s) => AttrValue::S(s),
                AttributeValue::N(n) => AttrValue::N(n),
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
            (k, value)
        })
        .collect()
}
