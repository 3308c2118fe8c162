# The function's role grants exactly what the configured mode calls (see the
# action lists in locals.tf); nothing is granted on "*" where an ARN is known.

data "aws_iam_policy_document" "lambda_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
  }
}

resource "aws_iam_role" "lambda" {
  name               = var.name
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "lambda" {
  dynamic "statement" {
    for_each = length(var.lock_tables) > 0 ? [1] : []
    content {
      sid       = "LockTables"
      actions   = local.lock_table_actions
      resources = local.lock_table_arns
    }
  }

  dynamic "statement" {
    for_each = local.lock_bucket_specs
    content {
      sid       = "ListLockfiles${statement.key}"
      actions   = local.bucket_list_actions
      resources = ["arn:${local.partition}:s3:::${statement.value.bucket}"]

      dynamic "condition" {
        for_each = statement.value.prefix == "" ? [] : [statement.value.prefix]
        content {
          test     = "StringLike"
          variable = "s3:prefix"
          values   = ["${condition.value}*"]
        }
      }
    }
  }

  dynamic "statement" {
    for_each = length(var.lock_buckets) > 0 ? [1] : []
    content {
      sid       = "Lockfiles"
      actions   = local.lockfile_actions
      resources = [for b in local.lock_bucket_specs : "arn:${local.partition}:s3:::${b.bucket}/${b.prefix}*.tflock"]
    }
  }

  dynamic "statement" {
    for_each = length(var.assume_role_arns) > 0 ? [1] : []
    content {
      sid       = "AssumeMemberRoles"
      actions   = ["sts:AssumeRole"]
      resources = var.assume_role_arns
    }
  }

  # SOURCES_URI: the one document, read only.
  dynamic "statement" {
    for_each = var.sources_uri != null ? [1] : []
    content {
      sid       = "SourcesDocument"
      actions   = ["s3:GetObject"]
      resources = ["arn:${local.partition}:s3:::${trimprefix(var.sources_uri, "s3://")}"]
    }
  }

  # Organization discovery: the organisation's tree, the member role in its accounts only.
  dynamic "statement" {
    for_each = length(local.organization_actions) > 0 ? [1] : []
    content {
      sid       = "ReadOrganization"
      actions   = local.organization_actions
      resources = ["*"]
    }
  }

  dynamic "statement" {
    for_each = length(local.organization_role_arns) > 0 ? [1] : []
    content {
      sid       = "AssumeOrganizationReader"
      actions   = ["sts:AssumeRole"]
      resources = local.organization_role_arns
    }
  }

  dynamic "statement" {
    for_each = local.org != null ? [1] : []
    content {
      sid       = "AssumeDiscoveredMemberRoles"
      actions   = ["sts:AssumeRole"]
      resources = [local.member_role_arn_pattern]
      condition {
        test     = "StringEquals"
        variable = "aws:ResourceOrgID"
        values   = [local.org.organization_id]
      }
    }
  }

  dynamic "statement" {
    for_each = local.org != null ? [1] : []
    content {
      sid       = "ListTablesForDiscovery"
      actions   = local.discovery_list_actions
      resources = ["*"]
    }
  }

  # Lockfile buckets by name or tag (organization.buckets): list them, and in this account read
  # (and per mode delete) their *.tflock objects only.
  dynamic "statement" {
    for_each = local.discovers_buckets ? [1] : []
    content {
      sid       = "DiscoverBuckets"
      actions   = local.bucket_discovery_actions
      resources = ["*"]
    }
  }

  dynamic "statement" {
    for_each = local.discovers_buckets ? [1] : []
    content {
      sid       = "DiscoveredOwnBuckets"
      actions   = ["s3:ListBucket"]
      resources = ["arn:${local.partition}:s3:::*"]
    }
  }

  dynamic "statement" {
    for_each = local.discovers_buckets ? [1] : []
    content {
      sid       = "DiscoveredOwnLockfiles"
      actions   = concat(["s3:GetObject", "s3:GetObjectTagging"], (var.action == "delete" || var.release_dead_heartbeats) && !var.dry_run ? ["s3:DeleteObject"] : [])
      resources = ["arn:${local.partition}:s3:::*/*.tflock"]
    }
  }

  # The reaper's own account is searched with its own credentials: describe and act on its lock tables.
  dynamic "statement" {
    for_each = local.org != null ? [1] : []
    content {
      sid       = "DiscoveredOwnTables"
      actions   = concat(["dynamodb:DescribeTable"], local.lock_table_actions)
      resources = local.discovery_table_arns
    }
  }

  dynamic "statement" {
    for_each = var.create_notify_state_table ? [1] : []
    content {
      sid       = "NotifyStateTable"
      actions   = local.state_table_actions
      resources = [aws_dynamodb_table.notify_state[0].arn]
    }
  }

  dynamic "statement" {
    for_each = length(local.sns_actions) > 0 ? [1] : []
    content {
      sid       = "PublishAlerts"
      actions   = local.sns_actions
      resources = [local.sns_topic_arn]
    }
  }

  dynamic "statement" {
    for_each = length(local.secret_actions) > 0 ? [1] : []
    content {
      sid       = "ReadPagerDutyRoutingKey"
      actions   = local.secret_actions
      resources = [var.pagerduty_routing_key_secret_arn]
    }
  }

  dynamic "statement" {
    for_each = length(local.chat_actions) > 0 ? [1] : []
    content {
      sid       = "PublishChatNotifications"
      actions   = local.chat_actions
      resources = [local.chat_topic_arn]
    }
  }

  dynamic "statement" {
    for_each = length(local.slack_secret_actions) > 0 ? [1] : []
    content {
      sid       = "ReadSlackWebhookUrl"
      actions   = local.slack_secret_actions
      resources = [var.slack_webhook_url_secret_arn]
    }
  }

  dynamic "statement" {
    for_each = length(local.metrics_actions) > 0 ? [1] : []
    content {
      sid       = "PutMetricsInOwnNamespace"
      actions   = local.metrics_actions
      resources = ["*"] # PutMetricData has no resource ARNs; the namespace condition scopes it.
      condition {
        test     = "StringEquals"
        variable = "cloudwatch:namespace"
        values   = [var.metrics_namespace]
      }
    }
  }

  statement {
    sid       = "EncryptedResources"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = distinct(concat([local.kms_key_arn], var.decrypt_kms_key_arns))
  }

  statement {
    sid       = "OwnLogGroup"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }

  statement {
    sid       = "DeadLetterQueue"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.dlq.arn]
  }

  dynamic "statement" {
    for_each = var.enable_xray ? [1] : []
    content {
      sid       = "XRay"
      actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
      resources = ["*"] # X-Ray has no resource-level permissions.
    }
  }
}

resource "aws_iam_role_policy" "lambda" {
  name   = var.name
  role   = aws_iam_role.lambda.id
  policy = data.aws_iam_policy_document.lambda.json
}
