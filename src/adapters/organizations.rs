//! AWS Organizations as discovery reads it: the roots, every OU below them
//! (`ListOrganizationalUnitsForParent`) and the accounts of each
//! (`ListAccountsForParent`), all pages; and STS `GetCallerIdentity` for
//! the reaper's own account. Reads only.

use async_trait::async_trait;

use crate::adapters::aws_error::Origin;
use crate::domain::organization::{OrgAccount, OrgTree};
use crate::ports::SourceError;

/// Reads an organisation's tree (from the management account, a delegated
/// administrator, or through `ORGANIZATION_ROLE_ARN`).
#[derive(Debug, Clone)]
pub struct OrganizationsReader {
    client: aws_sdk_organizations::Client,
    origin: Origin,
}

impl OrganizationsReader {
    pub fn new(client: aws_sdk_organizations::Client) -> Self {
        let config = client.config();
        let origin = Origin::new("organizations", config.region().map(|r| r.as_ref()), config.timeout_config(), None);
        OrganizationsReader { client, origin }
    }

    /// Name this endpoint override in error messages (`AWS_ENDPOINT_URL`).
    pub(crate) fn with_endpoint_url(mut self, url: Option<&str>) -> Self {
        self.origin = self.origin.with_endpoint_url(url);
        self
    }

    /// The children of `parent`: its OUs, and its accounts.
    async fn children(&self, parent: &str, tree: &mut OrgTree) -> Result<Vec<String>, SourceError> {
        let what = format!("parent {parent}");
        let mut ous = Vec::new();
        let mut pages = self.client.list_organizational_units_for_parent().parent_id(parent).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| {
                self.origin.explain(
                    "ListOrganizationalUnitsForParent",
                    "organizations:ListOrganizationalUnitsForParent",
                    &what,
                    &e,
                )
            })?;
            ous.extend(page.organizational_units().iter().filter_map(|ou| ou.id().map(str::to_string)));
        }
        let mut pages = self.client.list_accounts_for_parent().parent_id(parent).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| {
                self.origin.explain("ListAccountsForParent", "organizations:ListAccountsForParent", &what, &e)
            })?;
            for a in page.accounts() {
                let Some(id) = a.id() else { continue };
                // `State` replaces the deprecated `Status`; either says ACTIVE.
                #[allow(deprecated)]
                let status =
                    a.state().map(|s| s.as_str().to_string()).or_else(|| a.status().map(|s| s.as_str().to_string()));
                tree.parent.insert(id.to_string(), parent.to_string());
                tree.accounts.push(OrgAccount {
                    id: id.to_string(),
                    name: a.name().unwrap_or_default().to_string(),
                    status: status.unwrap_or_default(),
                });
            }
        }
        for ou in &ous {
            tree.parent.insert(ou.clone(), parent.to_string());
        }
        Ok(ous)
    }
}

#[async_trait]
impl crate::ports::discovery::OrganizationReader for OrganizationsReader {
    async fn tree(&self) -> Result<OrgTree, SourceError> {
        let mut roots = Vec::new();
        let mut pages = self.client.list_roots().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|e| self.origin.explain("ListRoots", "organizations:ListRoots", "the organisation", &e))?;
            roots.extend(page.roots().iter().filter_map(|r| r.id().map(str::to_string)));
        }
        let mut tree = OrgTree::default();
        let mut queue = roots;
        while let Some(parent) = queue.pop() {
            queue.extend(self.children(&parent, &mut tree).await?);
        }
        Ok(tree)
    }
}

/// The reaper's own account ID and partition (`GetCallerIdentity`).
pub(crate) async fn whoami(client: &aws_sdk_sts::Client) -> Result<(String, String), SourceError> {
    let origin =
        Origin::new("sts", client.config().region().map(|r| r.as_ref()), client.config().timeout_config(), None);
    let out = client
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| origin.explain("GetCallerIdentity", "sts:GetCallerIdentity", "this reaper's identity", &e))?;
    let account = out.account().unwrap_or_default().to_string();
    let partition = out.arn().and_then(|arn| arn.split(':').nth(1)).unwrap_or("aws").to_string();
    Ok((account, partition))
}
