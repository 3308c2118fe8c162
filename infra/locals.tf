# Derived names and ARNs, and the IAM actions each part of the reaper needs.
# The action lists are what the wiring test compares with the API calls the
# code really makes in each mode: keep them plain expressions over var.*.

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  # Function memory: as given, else 512 MB with organization (a cold pass over 1,000 sources is
  # CPU-bound at 128 MB's 7% of a vCPU) and 128 MB without.
  memory_size    = var.memory_size != null ? var.memory_size : (var.organization != null ? 512 : 128)
  vcpu_memory_mb = 1769
  # A cold organisation pass (discovery included), CPU seconds per 1,000 sources on one vCPU:
  # make bench-org BENCH_ORG_ACCOUNTS=400 measured 1.8 with connections kept alive and 2.4 with a
  # connection per call (2026-12-06, x86_64); 2.5 leaves room for a slower core. Projected at
  # this memory size.
  org_cpu_seconds_per_1000_sources = 2.5
  org_cpu_seconds_projected        = local.org_cpu_seconds_per_1000_sources * local.vcpu_memory_mb / local.memory_size

  account   = data.aws_caller_identity.current.account_id
  region    = data.aws_region.current.id
  partition = data.aws_partition.current.partition

  lock_table_arns = [
    for t in var.lock_tables :
    startswith(t, "arn:") ? t : "arn:${local.partition}:dynamodb:${local.region}:${local.account}:table/${t}"
  ]

  # LOCK_BUCKETS entries split into bucket, key prefix and location
  # (`bucket[/prefix][@region[:account]]`).
  lock_bucket_specs = [
    for b in var.lock_buckets : {
      bucket   = split("/", split("@", b)[0])[0]
      prefix   = length(split("/", split("@", b)[0])) > 1 ? substr(split("@", b)[0], length(split("/", b)[0]) + 1, -1) : ""
      path     = split("@", b)[0]
      location = length(split("@", b)) > 1 ? split(":", split("@", b)[1]) : []
    }
  ]

  # Every source the metrics name, with its dimensions as the code emits
  # them: TableName or Bucket alone in this account and region; plus Account
  # and Region for a table ARN or a bucket@region[:account] elsewhere.
  metric_sources = merge(
    {
      for t in var.lock_tables : "table-${t}" => {
        label = t
        dimensions = startswith(t, "arn:") ? [
          "TableName", split("/", t)[1], "Account", split(":", t)[4], "Region", split(":", t)[3]
        ] : ["TableName", t]
      }
    },
    {
      for i, b in var.lock_buckets : "bucket-${b}" => {
        label = b
        dimensions = concat(
          ["Bucket", local.lock_bucket_specs[i].path],
          length(local.lock_bucket_specs[i].location) > 1 ? ["Account", local.lock_bucket_specs[i].location[1]] : [],
          length(local.lock_bucket_specs[i].location) > 0 ? ["Region", local.lock_bucket_specs[i].location[0]] : [],
        )
      }
    },
  )

  kms_key_arn   = var.kms_key_arn != null ? var.kms_key_arn : aws_kms_key.this[0].arn
  sns_topic_arn = var.sns_topic_arn != null ? var.sns_topic_arn : (var.create_sns_topic ? aws_sns_topic.alerts[0].arn : "")
  notify_table  = var.create_notify_state_table ? aws_dynamodb_table.notify_state[0].name : ""
  alarm_actions = compact(concat([local.sns_topic_arn, local.chat_topic_arn], var.alarm_actions))

  # Chat (chat.tf): the topic the chat service subscribes to, given or created.
  chat_channels             = var.slack_channel != null || var.teams_channel != null
  create_chat_topic         = var.chat_topic_arn == null && (var.create_chat_topic || local.chat_channels)
  publishes_chat            = var.chat_topic_arn != null || local.create_chat_topic
  chat_topic_arn            = var.chat_topic_arn != null ? var.chat_topic_arn : (local.create_chat_topic ? aws_sns_topic.chat[0].arn : "")
  chat_guardrail_policy_arn = "arn:${local.partition}:iam::aws:policy/ReadOnlyAccess"

  # Lock tables: always Scan; writes only in the mode that makes them, never in a dry run,
  # with GetItem to re-read a lock once when a write's condition fails (gone or taken again?).
  lock_table_actions = concat(
    ["dynamodb:Scan"],
    var.action == "ttl" && !var.dry_run ? ["dynamodb:UpdateItem", "dynamodb:GetItem"] : [],
    # ACTION=ttl checks that TTL is enabled, dry run included.
    var.action == "ttl" ? ["dynamodb:DescribeTimeToLive"] : [],
    # Deletes: age-based with action = delete, dead heartbeats with release_dead_heartbeats.
    (var.action == "delete" || var.release_dead_heartbeats) && !var.dry_run ? ["dynamodb:DeleteItem", "dynamodb:GetItem"] : [],
  )
  # Lockfile buckets: list and read always; delete only in delete mode, never in a dry run.
  bucket_list_actions = length(var.lock_buckets) > 0 ? ["s3:ListBucket"] : []
  lockfile_actions = concat(
    length(var.lock_buckets) > 0 ? ["s3:GetObject", "s3:GetObjectTagging"] : [],
    length(var.lock_buckets) > 0 && (var.action == "delete" || var.release_dead_heartbeats) && !var.dry_run ? ["s3:DeleteObject"] : [],
  )
  # Notify-once state table: read the open alerts, claim, remind, resolve.
  state_table_actions  = var.create_notify_state_table ? ["dynamodb:Scan", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"] : []
  sns_actions          = var.sns_topic_arn != null || var.create_sns_topic ? ["sns:Publish"] : []
  secret_actions       = var.pagerduty_routing_key_secret_arn != null ? ["secretsmanager:GetSecretValue"] : []
  chat_actions         = var.chat_topic_arn != null || var.create_chat_topic || var.slack_channel != null || var.teams_channel != null ? ["sns:Publish"] : []
  slack_secret_actions = var.slack_webhook_url_secret_arn != null ? ["secretsmanager:GetSecretValue"] : []
  metrics_actions      = var.metrics_sink == "api" ? ["cloudwatch:PutMetricData"] : []

  # Alarms and the dashboard look at one schedule interval: rate(N minutes|hours|days), 1 minute
  # to 6 hours (so that missing_data_periods of them stay within CloudWatch's one day); a cron()
  # schedule keeps 15 minutes.
  schedule_rate    = regexall("^rate\\((\\d+) (minute|minutes|hour|hours|day|days)\\)$", var.schedule_expression)
  schedule_seconds = length(local.schedule_rate) > 0 ? tonumber(local.schedule_rate[0][0]) * lookup({ minute = 60, minutes = 60, hour = 3600, hours = 3600, day = 86400, days = 86400 }, local.schedule_rate[0][1]) : 900
  metric_period    = min(max(local.schedule_seconds, 60), 21600)

  # Organization discovery (var.organization): list the organisation (or assume the role that may),
  # list and describe tables, and assume the member role in accounts of this organisation only.
  org                     = var.organization
  organization_actions    = local.org != null && try(local.org.role_arn, null) == null ? ["organizations:ListRoots", "organizations:ListOrganizationalUnitsForParent", "organizations:ListAccountsForParent"] : []
  organization_role_arns  = local.org != null && try(local.org.role_arn, null) != null ? [local.org.role_arn] : []
  member_role_arn_pattern = local.org != null ? "arn:${local.partition}:iam::*:role/${local.org.member_role_name}" : ""
  discovery_list_actions  = local.org != null ? ["dynamodb:ListTables"] : []
  discovery_table_arns    = local.org != null ? (length(local.org.tables) > 0 ? [for g in local.org.tables : "arn:${local.partition}:dynamodb:*:${local.account}:table/${g}"] : ["arn:${local.partition}:dynamodb:*:${local.account}:table/*"]) : []

  # Lockfile buckets by name or tag (organization.buckets), in this account with the function's own
  # credentials: list every bucket, read a bucket's tags only when an entry is tag:KEY=VALUE, and
  # read the region of each bucket that matches.
  discovers_buckets = local.org != null ? length(local.org.buckets) > 0 : false
  bucket_discovery_actions = local.discovers_buckets ? concat(
    ["s3:ListAllMyBuckets", "s3:GetBucketLocation"],
    anytrue([for b in local.org.buckets : startswith(b, "tag:")]) ? ["s3:GetBucketTagging"] : [],
  ) : []
}
