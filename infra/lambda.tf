# The function's environment: every variable the code reads (config::VARIABLES), from the inputs.
locals {
  environment_limit = 4096
  environment = {
    LOCK_TABLES                      = join(",", var.lock_tables)
    LOCK_BUCKETS                     = join(",", var.lock_buckets)
    SOURCES_URI                      = var.sources_uri != null ? var.sources_uri : ""
    ORGANIZATION_ACCOUNTS            = local.org != null ? join(",", local.org.accounts) : ""
    ORGANIZATION_SKIP                = local.org != null ? join(",", local.org.skip) : ""
    ORGANIZATION_ROLE_ARN            = local.org == null ? "" : (local.org.role_arn == null ? "" : local.org.role_arn)
    MEMBER_ROLE_NAME                 = local.org != null ? local.org.member_role_name : ""
    DISCOVER_REGIONS                 = local.org != null ? join(",", local.org.regions) : ""
    DISCOVER_TABLES                  = local.org != null ? join(",", local.org.tables) : ""
    DISCOVER_BUCKETS                 = local.org != null ? join(",", local.org.buckets) : ""
    DISCOVER_EVERY                   = local.org != null ? local.org.every : "1h"
    STALE_AFTER                      = var.stale_after
    STALE_AFTER_OVERRIDES            = join(",", var.stale_after_overrides)
    EXCLUDE                          = join(",", var.exclude)
    ACTION                           = var.action
    DRY_RUN                          = tostring(var.dry_run)
    DELETE_AFTER                     = var.delete_after
    TTL_AFTER                        = var.ttl_after
    TTL_ATTRIBUTE                    = var.ttl_attribute
    HEARTBEAT_TIMEOUT                = var.heartbeat_timeout
    HEARTBEAT_TIMEOUT_MIN            = var.heartbeat_timeout_min
    HEARTBEAT_TIMEOUT_MAX            = var.heartbeat_timeout_max
    RELEASE_DEAD_HEARTBEATS          = tostring(var.release_dead_heartbeats)
    HEARTBEAT_ATTRIBUTE              = var.heartbeat_attribute
    MAX_DELETES_PER_RUN              = tostring(var.max_deletes_per_run)
    SCAN_SEGMENTS                    = tostring(var.scan_segments)
    ASSUME_ROLES                     = join(",", var.assume_role_arns)
    ASSUME_ROLE_EXTERNAL_ID          = var.assume_role_external_id
    SOURCE_CONCURRENCY               = tostring(var.source_concurrency)
    RUN_BUDGET                       = var.run_budget
    METRICS_NAMESPACE                = var.metrics_namespace
    METRICS_SINK                     = var.metrics_sink
    SNS_TOPIC_ARN                    = local.sns_topic_arn
    CHAT_TOPIC_ARN                   = local.chat_topic_arn
    SLACK_WEBHOOK_URL_SECRET_ARN     = var.slack_webhook_url_secret_arn != null ? var.slack_webhook_url_secret_arn : ""
    SLACK_WEBHOOK_URL                = var.slack_webhook_url
    PAGERDUTY_ROUTING_KEY_SECRET_ARN = var.pagerduty_routing_key_secret_arn != null ? var.pagerduty_routing_key_secret_arn : ""
    PAGERDUTY_ROUTING_KEY            = var.pagerduty_routing_key
    PAGERDUTY_EVENTS_URL             = var.pagerduty_events_url
    PAGERDUTY_SEVERITY               = var.pagerduty_severity
    NOTIFY_STATE_TABLE               = local.notify_table
    RENOTIFY_AFTER                   = var.renotify_after
    ALERT_GROUP_OVER                 = tostring(var.alert_group_over)
    RUNBOOK_URL                      = var.runbook_url
  }
}

# The function: provided.al2023 on arm64, one run at a time, JSON logs,
# failures to an encrypted DLQ, environment wired from the module's inputs.

resource "aws_cloudwatch_log_group" "this" {
  name              = "/aws/lambda/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = local.kms_key_arn
  tags              = var.tags
}

resource "aws_sqs_queue" "dlq" {
  name                      = "${var.name}-dlq"
  kms_master_key_id         = local.kms_key_arn
  message_retention_seconds = 1209600
  tags                      = var.tags
}

resource "aws_lambda_function" "this" {
  # checkov:skip=CKV_AWS_117:The reaper calls only AWS APIs and PagerDuty over HTTPS; a VPC would add NAT or endpoints and no protection.
  # checkov:skip=CKV_AWS_272:Code signing needs an AWS Signer profile the module cannot assume exists; the zip's hash is pinned by source_code_hash.
  # checkov:skip=CKV_AWS_50:X-Ray is optional (enable_xray); the reaper's own metrics and logs cover its behaviour.
  function_name                  = var.name
  description                    = "Finds, reports and safely clears stale Terraform state locks"
  filename                       = var.lambda_zip_path
  source_code_hash               = var.lambda_zip_path != null ? filebase64sha256(var.lambda_zip_path) : null
  s3_bucket                      = var.lambda_s3_object != null ? var.lambda_s3_object.bucket : null
  s3_key                         = var.lambda_s3_object != null ? var.lambda_s3_object.key : null
  s3_object_version              = var.lambda_s3_object != null ? var.lambda_s3_object.version_id : null
  role                           = aws_iam_role.lambda.arn
  runtime                        = "provided.al2023"
  architectures                  = [var.architecture]
  handler                        = "bootstrap"
  memory_size                    = local.memory_size
  timeout                        = var.timeout
  reserved_concurrent_executions = 1
  kms_key_arn                    = local.kms_key_arn

  logging_config {
    log_format            = "JSON"
    log_group             = aws_cloudwatch_log_group.this.name
    application_log_level = "INFO"
    system_log_level      = "WARN"
  }

  tracing_config {
    mode = var.enable_xray ? "Active" : "PassThrough"
  }

  dead_letter_config {
    target_arn = aws_sqs_queue.dlq.arn
  }

  environment {
    variables = local.environment
  }

  lifecycle {
    precondition {
      condition     = (var.lambda_zip_path == null) != (var.lambda_s3_object == null)
      error_message = "Set exactly one of lambda_zip_path (the zip on disk) and lambda_s3_object (the zip in an S3 bucket in the function's region)."
    }
    precondition {
      condition     = length(var.lock_tables) + length(var.lock_buckets) > 0 || var.organization != null || var.sources_uri != null
      error_message = "Give at least one lock table (lock_tables) or lockfile bucket (lock_buckets), organization to discover them, or sources_uri."
    }
    # Lambda caps a function's environment at 4 KB (keys and values together); the provider
    # does not check it at plan (terraform-provider-aws#33893) and apply would fail.
    precondition {
      condition     = length(jsonencode(local.environment)) <= local.environment_limit
      error_message = "The function's environment would be ${length(jsonencode(local.environment))} bytes, over Lambda's 4 KB limit: list fewer lock_tables, lock_buckets and assume_role_arns: let organization discover the lock tables of the member accounts, or keep the list in a document in S3 (sources_uri)."
    }
  }

  tags       = var.tags
  depends_on = [aws_iam_role_policy.lambda, aws_cloudwatch_log_group.this]
}

# Lambda gives a function CPU in proportion to its memory: at 128 MB, 7% of one vCPU. A cold
# organisation pass is CPU-bound at that share (make bench-org; docs/src/guide/organisations.md):
# warn at plan when the CPU time of 1,000 sources, projected at this memory size, would take more
# than a third of the timeout before any network wait.
check "organization_memory" {
  assert {
    condition     = local.org == null || local.org_cpu_seconds_projected <= var.timeout / 3
    error_message = "organization is set with memory_size = ${local.memory_size} MB, which gets ${floor(local.memory_size * 100 / local.vcpu_memory_mb)}% of a vCPU: a cold organisation pass measured ${local.org_cpu_seconds_per_1000_sources} s of CPU per 1,000 sources on one vCPU, about ${ceil(local.org_cpu_seconds_projected)} s here, over a third of the ${var.timeout} s timeout before any network wait. Raise memory_size (512 holds 1,000 sources with margin) or the timeout; see the module's scale figures."
  }
}

# Asynchronous invocations (the schedule's) are not retried: the next run comes soon.
resource "aws_lambda_function_event_invoke_config" "this" {
  function_name          = aws_lambda_function.this.function_name
  maximum_retry_attempts = 0
}
