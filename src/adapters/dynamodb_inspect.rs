//! The DynamoDB adapter of [`TableInspector`] (`DescribeTable`,
//! `DescribeTimeToLive`, `DescribeContinuousBackups`) and of
//! [`TableCatalog`] (`ListTables`, `DescribeTable`). Reads only.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{PointInTimeRecoveryStatus, TimeToLiveStatus};
use aws_sdk_dynamodb::Client;

use crate::adapters::aws_error::Origin;
use crate::domain::health::table::{TableDescription, TableFacts, TtlDescription};
use crate::domain::source::SourceAddress;
use crate::ports::discovery::TableCatalog;
use crate::ports::inspect::TableInspector;
use crate::ports::SourceError;

/// Reads a lock table's settings.
#[derive(Debug, Clone)]
pub struct DynamoTableInspector {
    client: Client,
    origin: Origin,
}

impl DynamoTableInspector {
    pub fn new(client: Client) -> Self {
        let config = client.config();
        let origin = Origin::new("dynamodb", config.region().map(|r| r.as_ref()), config.timeout_config(), None);
        DynamoTableInspector { client, origin }
    }

    /// Name this endpoint override in error messages (`AWS_ENDPOINT_URL`).
    pub(crate) fn with_endpoint_url(mut self, url: Option<&str>) -> Self {
        self.origin = self.origin.with_endpoint_url(url);
        self
    }

    async fn describe(&self, table: &str) -> Result<TableDescription, SourceError> {
        let out = self.client.describe_table().table_name(table).send().await.map_err(|e| {
            self.origin.explain("DescribeTable", "dynamodb:DescribeTable", &format!("table {table}"), &e)
        })?;
        let Some(t) = out.table else {
            return Err(SourceError::new(
                crate::domain::failure::ErrorKind::Other,
                format!("DescribeTable on table {table} returned no description"),
            ));
        };
        Ok(TableDescription {
            key_schema: t
                .key_schema()
                .iter()
                .map(|k| (k.attribute_name().to_string(), k.key_type().as_str().to_string()))
                .collect(),
            attribute_types: t
                .attribute_definitions()
                .iter()
                .map(|a| (a.attribute_name().to_string(), a.attribute_type().as_str().to_string()))
                .collect(),
            billing_mode: t.billing_mode_summary().and_then(|b| b.billing_mode()).map(|m| m.as_str().to_string()),
            deletion_protection: t.deletion_protection_enabled(),
            sse_type: t.sse_description().and_then(|s| s.sse_type()).map(|s| s.as_str().to_string()),
        })
    }

    async fn point_in_time_recovery(&self, table: &str) -> Result<bool, SourceError> {
        let out = self.client.describe_continuous_backups().table_name(table).send().await.map_err(|e| {
            self.origin.explain(
                "DescribeContinuousBackups",
                "dynamodb:DescribeContinuousBackups",
                &format!("table {table}"),
                &e,
            )
        })?;
        Ok(out
            .continuous_backups_description()
            .and_then(|d| d.point_in_time_recovery_description())
            .and_then(|p| p.point_in_time_recovery_status())
            == Some(&PointInTimeRecoveryStatus::Enabled))
    }
}

#[async_trait]
impl TableInspector for DynamoTableInspector {
    async fn table_facts(&self, table: &SourceAddress) -> TableFacts {
        let name = table.api_name();
        let (description, ttl, pitr) =
            futures::join!(self.describe(&name), self.ttl(table), self.point_in_time_recovery(&name));
        TableFacts {
            description: description.map_err(|e| e.message),
            ttl: ttl.map_err(|e| e.message),
            point_in_time_recovery: pitr.map_err(|e| e.message),
        }
    }

    async fn ttl(&self, table: &SourceAddress) -> Result<TtlDescription, SourceError> {
        let table = &table.api_name();
        let out = self.client.describe_time_to_live().table_name(table).send().await.map_err(|e| {
            self.origin.explain("DescribeTimeToLive", "dynamodb:DescribeTimeToLive", &format!("table {table}"), &e)
        })?;
        let d = out.time_to_live_description();
        Ok(TtlDescription {
            status: d.and_then(|d| d.time_to_live_status()).unwrap_or(&TimeToLiveStatus::Disabled).as_str().to_string(),
            attribute: d.and_then(|d| d.attribute_name()).map(str::to_string),
        })
    }
}

#[async_trait]
impl TableCatalog for DynamoTableInspector {
    async fn table_names(&self) -> Result<Vec<String>, SourceError> {
        let mut pages = self.client.list_tables().into_paginator().send();
        let mut names = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.origin.explain("ListTables", "dynamodb:ListTables", "tables", &e))?;
            names.extend(page.table_names().iter().cloned());
        }
        Ok(names)
    }

    async fn describe_keys(&self, table: &str) -> Result<TableDescription, SourceError> {
        self.describe(table).await
    }
}
