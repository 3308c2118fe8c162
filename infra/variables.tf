# Inputs. Reaper settings map one to one onto the environment variables the
# code reads (see the project README's configuration table).

variable "name" {
  description = "Name of the function and prefix of every resource the module creates."
  type        = string
  default     = "tf-lock-reaper"
}

variable "lambda_zip_path" {
  description = "Path to the function's zip on disk: a release's tf-lock-reaper-lambda-<architecture>.zip (or the one `make package` writes into target/dist). Set this or lambda_s3_object."
  type        = string
  default     = null
}

variable "lambda_s3_object" {
  description = "The function's zip in S3, e.g. a release's tf-lock-reaper-lambda-arm64.zip copied there: { bucket, key, version_id }. The bucket must be in the function's region (Lambda reads the code only from there). Nothing is downloaded at plan time. Set this or lambda_zip_path."
  type = object({
    bucket     = string
    key        = string
    version_id = optional(string)
  })
  default = null
}

variable "architecture" {
  description = "The function's architecture, matching the zip: arm64 (default) or x86_64."
  type        = string
  default     = "arm64"

  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "architecture must be arm64 or x86_64, matching the zip."
  }
}

variable "lock_tables" {
  description = "DynamoDB lock tables to scan: names (same account and region) or table ARNs (LOCK_TABLES). Give at least one table or bucket."
  type        = list(string)
  default     = []
}

variable "lock_buckets" {
  description = "State buckets whose *.tflock lockfiles to scan, each \"bucket[/prefix][@region[:account]]\" (LOCK_BUCKETS)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for b in var.lock_buckets : can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[^@]*)?(@[a-z]{2}(-[a-z0-9]+)+-[0-9](:[0-9]{12})?)?$", b))])
    error_message = "lock_buckets entries are \"bucket[/prefix][@region[:account]]\" with a valid S3 bucket name, region name and 12-digit account."
  }
}

variable "assume_role_arns" {
  description = "Roles to assume per member account (ASSUME_ROLES), at most one per account: the reaper's role may sts:AssumeRole exactly these. Create them with modules/member-access."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for r in var.assume_role_arns : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$", r))])
    error_message = "assume_role_arns entries are IAM role ARNs (arn:aws:iam::<account>:role/<name>)."
  }
}

variable "assume_role_external_id" {
  description = "External ID passed to every AssumeRole (ASSUME_ROLE_EXTERNAL_ID); empty for none."
  type        = string
  default     = ""
}

variable "sources_uri" {
  description = "s3://bucket/key of a JSON document with more LOCK_TABLES, LOCK_BUCKETS, ASSUME_ROLES, ORGANIZATION_* and MEMBER_ROLE_NAME entries (SOURCES_URI): sources past Lambda's 4 KB environment. Grants s3:GetObject on that object. null: none."
  type        = string
  default     = null

  validation {
    condition     = var.sources_uri == null ? true : can(regex("^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/.+$", var.sources_uri))
    error_message = "sources_uri is s3://<bucket>/<key>."
  }
}

variable "organization" {
  description = "Discover lock tables across an AWS Organization instead of listing them (ORGANIZATION_ACCOUNTS, ORGANIZATION_SKIP, ORGANIZATION_ROLE_ARN, MEMBER_ROLE_NAME, DISCOVER_REGIONS, DISCOVER_TABLES, DISCOVER_BUCKETS, DISCOVER_EVERY). `accounts`: \"all\", or root, OU and account IDs; `organization_id` (o-…) holds sts:AssumeRole on the member role to the organisation (aws:ResourceOrgID). null: no discovery."
  type = object({
    organization_id  = string
    accounts         = list(string)
    member_role_name = string
    skip             = optional(list(string), [])
    role_arn         = optional(string)
    regions          = optional(list(string), [])
    tables           = optional(list(string), [])
    buckets          = optional(list(string), [])
    every            = optional(string, "1h")
  })
  default = null

  validation {
    condition     = var.organization == null ? true : can(regex("^o-[a-z0-9]{10,32}$", var.organization.organization_id))
    error_message = "organization.organization_id is the organisation's ID, o-… (aws organizations describe-organization)."
  }
}

variable "source_concurrency" {
  description = "Sources scanned at once (SOURCE_CONCURRENCY, 1-64)."
  type        = number
  default     = 8
}

variable "action" {
  description = "What to do with stale locks: report (write nothing), ttl or delete. The IAM policy grants only what the action needs."
  type        = string
  default     = "report"

  validation {
    condition     = contains(["report", "ttl", "delete"], var.action)
    error_message = "action must be one of report, ttl, delete."
  }
}

variable "dry_run" {
  description = "Show what ttl/delete would do, write nothing (DRY_RUN)."
  type        = bool
  default     = false
}

variable "stale_after" {
  description = "Apply window: a lock older than this is stale (STALE_AFTER)."
  type        = string
  default     = "2h"
}

variable "stale_after_overrides" {
  description = "Per-path windows as glob=duration pairs, first match wins, e.g. [\"tfstate/prod/*=6h\"] (STALE_AFTER_OVERRIDES)."
  type        = list(string)
  default     = []
}

variable "exclude" {
  description = "Globs over LockID: matching locks are reported, never written to (EXCLUDE)."
  type        = list(string)
  default     = []
}

variable "delete_after" {
  description = "Age at which action=delete deletes a stale lock; required for delete (DELETE_AFTER)."
  type        = string
  default     = ""
}

variable "ttl_after" {
  description = "action=ttl sets the TTL attribute to Created + this; required for ttl (TTL_AFTER)."
  type        = string
  default     = ""
}

variable "ttl_attribute" {
  description = "The lock tables' TTL attribute (TTL_ATTRIBUTE)."
  type        = string
  default     = "ExpiresAt"
}

variable "heartbeat_timeout" {
  description = "The silence after which a heartbeating lock that names no liveness contract counts as dead (HEARTBEAT_TIMEOUT); locks `exec` heartbeats name their own."
  type        = string
  default     = "10m"
}

variable "heartbeat_timeout_min" {
  description = "The shortest liveness contract honoured: a shorter one is judged by this (HEARTBEAT_TIMEOUT_MIN)."
  type        = string
  default     = "60s"
}

variable "heartbeat_timeout_max" {
  description = "The longest liveness contract honoured: a longer one is judged by this (HEARTBEAT_TIMEOUT_MAX)."
  type        = string
  default     = "1h"
}

variable "release_dead_heartbeats" {
  description = "Release a lock whose holder heartbeated and went silent past its contract, whatever the action (RELEASE_DEAD_HEARTBEATS). Grants dynamodb:DeleteItem and s3:DeleteObject on the lock sources unless dry_run."
  type        = bool
  default     = true
}

variable "heartbeat_attribute" {
  description = "The lock-item attribute `exec` writes its heartbeat to (HEARTBEAT_ATTRIBUTE)."
  type        = string
  default     = "Heartbeat"

  validation {
    condition     = !contains(["LockID", "Info", "Digest"], var.heartbeat_attribute)
    error_message = "heartbeat_attribute must not be LockID, Info or Digest: Terraform owns those."
  }
}

variable "max_deletes_per_run" {
  description = "Breaker: a run that would delete more locks than this deletes none (MAX_DELETES_PER_RUN)."
  type        = number
  default     = 5
}

variable "scan_segments" {
  description = "Parallel Scan segments per table (SCAN_SEGMENTS)."
  type        = number
  default     = 1
}

variable "run_budget" {
  description = "Time budget of one pass: AWS call timeouts derive from it, and it stands in for an unknown invocation deadline (RUN_BUDGET)."
  type        = string
  default     = "50s"
}

variable "metrics_namespace" {
  description = "CloudWatch namespace of the metrics (METRICS_NAMESPACE); the alarms and dashboard use it too."
  type        = string
  default     = "TerraformLocks"
}

variable "metrics_sink" {
  description = "emf (Embedded Metric Format in the logs, no API call) or api (PutMetricData) (METRICS_SINK)."
  type        = string
  default     = "emf"

  validation {
    condition     = contains(["emf", "api"], var.metrics_sink)
    error_message = "metrics_sink must be emf or api: the alarms and dashboard need the metrics."
  }
}

variable "sns_topic_arn" {
  description = "Existing SNS topic for alerts and alarms. When null and create_sns_topic is true, the module creates one (SNS_TOPIC_ARN)."
  type        = string
  default     = null
}

variable "create_sns_topic" {
  description = "Create a KMS-encrypted SNS topic when sns_topic_arn is null."
  type        = bool
  default     = true
}

variable "pagerduty_routing_key_secret_arn" {
  description = "Secrets Manager secret holding the PagerDuty Events v2 routing key, bare or {\"routing_key\": \"...\"} (PAGERDUTY_ROUTING_KEY_SECRET_ARN)."
  type        = string
  default     = null
}

variable "pagerduty_routing_key" {
  description = "The routing key in plain text (PAGERDUTY_ROUTING_KEY). Discouraged: it lands in the function's configuration; use the secret."
  type        = string
  default     = ""
  sensitive   = true
}

variable "pagerduty_events_url" {
  description = "PagerDuty Events API base URL (PAGERDUTY_EVENTS_URL)."
  type        = string
  default     = "https://events.pagerduty.com"
}

variable "pagerduty_severity" {
  description = "Severity of a stale-lock page: critical, error, warning or info (PAGERDUTY_SEVERITY)."
  type        = string
  default     = "warning"
}

variable "create_notify_state_table" {
  description = "Create the notify-once state table (NOTIFY_STATE_TABLE). Without it alerts are stateless: re-sent every run, no resolves for locks released by others."
  type        = bool
  default     = true
}

variable "renotify_after" {
  description = "Re-send an open alert as a reminder after this long (RENOTIFY_AFTER); empty: never."
  type        = string
  default     = ""
}

variable "chat_topic_arn" {
  description = "An existing SNS topic that Amazon Q Developer in chat applications subscribes to (CHAT_TOPIC_ARN). Null: created when a channel is given or create_chat_topic is true."
  type        = string
  default     = null
}

variable "create_chat_topic" {
  description = "Create a KMS-encrypted chat topic (CHAT_TOPIC_ARN) even without slack_channel or teams_channel, to subscribe a channel elsewhere."
  type        = bool
  default     = false
}

variable "slack_channel" {
  description = "A Slack channel for the chat topic: the workspace (team) ID, as the Slack workspace shows it once authorised in the Amazon Q Developer console, and the channel ID. Creates an aws_chatbot_slack_channel_configuration."
  type = object({
    workspace_id = string
    channel_id   = string
  })
  default = null
}

variable "teams_channel" {
  description = "A Microsoft Teams channel for the chat topic: tenant, team and channel IDs. Creates an aws_chatbot_teams_channel_configuration."
  type = object({
    tenant_id  = string
    team_id    = string
    channel_id = string
  })
  default = null
}

variable "slack_webhook_url_secret_arn" {
  description = "Secrets Manager secret holding a Slack incoming webhook URL, bare or {\"url\": \"...\"} (SLACK_WEBHOOK_URL_SECRET_ARN); the function may read exactly this secret."
  type        = string
  default     = null
}

variable "slack_webhook_url" {
  description = "The Slack webhook URL in plain text (SLACK_WEBHOOK_URL). Discouraged: it lands in the function's configuration; use the secret."
  type        = string
  default     = ""
  sensitive   = true
}

variable "alert_group_over" {
  description = "When more stale locks than this would open alerts in one source in one run, open one grouped alert for that source instead (ALERT_GROUP_OVER)."
  type        = number
  default     = 10

  validation {
    condition     = var.alert_group_over >= 0 && var.alert_group_over <= 100000 && floor(var.alert_group_over) == var.alert_group_over
    error_message = "alert_group_over must be a whole number from 0 to 100000."
  }
}

variable "schedule_expression" {
  description = "EventBridge Scheduler expression: rate(...) or cron(...)."
  type        = string
  default     = "rate(15 minutes)"
}

variable "schedule_timezone" {
  description = "Time zone of cron() schedules."
  type        = string
  default     = "UTC"
}

variable "timeout" {
  description = "Function timeout in seconds; the reaper stops starting writes 5 seconds before it."
  type        = number
  default     = 60
}

variable "memory_size" {
  description = "Function memory in MB; Lambda's CPU share follows it (one vCPU at 1,769 MB). null: 128, or 512 with organization, whose cold pass is CPU-bound at 128 (a plan warning says when a size given is too small for the timeout)."
  type        = number
  default     = null
}

variable "log_retention_days" {
  description = "Retention of the function's log group (which also holds the EMF metrics records)."
  type        = number
  default     = 365
}

variable "kms_key_arn" {
  description = "Customer managed KMS key for the topic, state table, DLQ and log group. When null the module creates one."
  type        = string
  default     = null
}

variable "decrypt_kms_key_arns" {
  description = "Other KMS keys the function must decrypt with (e.g. the PagerDuty secret's key, an existing topic's key)."
  type        = list(string)
  default     = []
}

variable "enable_xray" {
  description = "Active X-Ray tracing for the function."
  type        = bool
  default     = false
}

variable "missing_data_periods" {
  description = "Alarm when the reaper has not reported RunDurationMs for this many 15-minute periods."
  type        = number
  default     = 3
}

variable "alarm_actions" {
  description = "Extra alarm/OK action ARNs besides the alert topic."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}

variable "runbook_url" {
  description = "The runbook every alert and alarm links to, at its section (RUNBOOK_URL): the published page, or your own copy of it. Empty: no links."
  type        = string
  default     = "https://tf-lock-reaper.github.io/tf-lock-reaper/runbook.html"

  validation {
    condition     = var.runbook_url == "" || can(regex("^https?://[^#\\s]+$", var.runbook_url))
    error_message = "runbook_url is an http(s) URL without a #fragment (each alert adds its section's), or empty."
  }
}

variable "per_source_alarms" {
  description = "Also one StaleLocks and one BreakerTripped alarm per listed table and bucket, beside the run-wide alarms (always created, discovered sources included). Two alarms per source: a cost at hundreds of sources."
  type        = bool
  default     = false
}
