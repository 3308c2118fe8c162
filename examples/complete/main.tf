# A complete deployment: a Terraform lock table and a state bucket set up the
# way `tf-lock-reaper doctor` checks them (TTL on ExpiresAt, point-in-time
# recovery, deletion protection; a versioned, encrypted, non-public bucket
# whose old state versions expire), and the reaper module wired to both, deploying a release's Lambda zip. No Rust
# toolchain needed: put the release file here, checked, then apply:
#
#   base=https://github.com/tf-lock-reaper/tf-lock-reaper/releases/download/v0.1.0
#   curl -fsSLO "$base/tf-lock-reaper-lambda-arm64.zip" && curl -fsSLO "$base/SHA256SUMS"
#   sha256sum -c --ignore-missing SHA256SUMS
#   terraform init && terraform apply
#
# (`make deploy` at the repository root builds the same file with `make package` and applies.)

terraform {
  required_version = ">= 1.5"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0"
    }
  }
}

provider "aws" {
  region = var.region
}

variable "region" {
  description = "Region of the lock table and the reaper."
  type        = string
  default     = "eu-west-1"
}

variable "lambda_zip" {
  description = "The release's Lambda zip for the function's architecture (arm64 here), downloaded beside this file."
  type        = string
  default     = "tf-lock-reaper-lambda-arm64.zip"
}

variable "state_bucket" {
  description = "Name of the state bucket your backends name in `bucket`."
  type        = string
}

variable "pagerduty_routing_key_secret_arn" {
  description = "Optional Secrets Manager secret holding a PagerDuty Events v2 routing key."
  type        = string
  default     = null
}

variable "slack_channel" {
  description = "Optional Slack channel for Amazon Q Developer in chat applications: authorise the workspace once in its console, then give the workspace (team) ID and the channel ID."
  type = object({
    workspace_id = string
    channel_id   = string
  })
  default = null
}

variable "slack_webhook_url_secret_arn" {
  description = "Optional Secrets Manager secret holding a Slack incoming webhook URL, for teams without Amazon Q Developer in chat applications."
  type        = string
  default     = null
}

# The table your backends name in `dynamodb_table`.
resource "aws_dynamodb_table" "terraform_locks" {
  name         = "terraform-state-locks"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "LockID"

  attribute {
    name = "LockID"
    type = "S"
  }

  # A backstop only: DynamoDB removes expired items within days, and an
  # expired lock still blocks Terraform until it is removed.
  ttl {
    attribute_name = "ExpiresAt"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled = true
  }

  # One delete-table call would stop every pipeline.
  deletion_protection_enabled = true
}

# The state bucket: without versioning a corrupted state write is permanent.
resource "aws_s3_bucket" "state" {
  bucket = var.state_bucket
}

resource "aws_s3_bucket_versioning" "state" {
  bucket = aws_s3_bucket.state.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "state" {
  bucket = aws_s3_bucket.state.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "aws:kms"
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_public_access_block" "state" {
  bucket                  = aws_s3_bucket.state.id
  block_public_acls       = true
  ignore_public_acls      = true
  block_public_policy     = true
  restrict_public_buckets = true
}

# Old state versions are kept long enough to roll back, then expire.
resource "aws_s3_bucket_lifecycle_configuration" "state" {
  bucket = aws_s3_bucket.state.id
  rule {
    id     = "expire-old-state"
    status = "Enabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days           = 90
      newer_noncurrent_versions = 10
    }
  }
  depends_on = [aws_s3_bucket_versioning.state]
}

module "tf_lock_reaper" {
  source = "../../infra"

  lambda_zip_path = "${path.module}/${var.lambda_zip}"
  architecture    = "arm64"
  lock_tables     = [aws_dynamodb_table.terraform_locks.name]
  # The bucket's name as configured, known at plan: its `id` is known only
  # after apply, and the module keys its per-source alarms by this list.
  lock_buckets = [aws_s3_bucket.state.bucket]

  stale_after           = "2h"
  stale_after_overrides = ["*/prod/*=4h"]
  action                = "delete"
  delete_after          = "6h"
  max_deletes_per_run   = 5

  pagerduty_routing_key_secret_arn = var.pagerduty_routing_key_secret_arn
  renotify_after                   = "12h"
  alert_group_over                 = 10

  # Chat: custom notifications (and the module's alarms) in a Slack channel
  # through Amazon Q Developer in chat applications, and/or a Slack webhook.
  slack_channel                = var.slack_channel
  slack_webhook_url_secret_arn = var.slack_webhook_url_secret_arn
  schedule_expression          = "rate(15 minutes)"
}

output "function_name" {
  description = "The reaper function."
  value       = module.tf_lock_reaper.function_name
}

output "sns_topic_arn" {
  description = "Subscribe on-call (email, chat, PagerDuty CloudWatch integration) here."
  value       = module.tf_lock_reaper.sns_topic_arn
}

output "chat_topic_arn" {
  description = "The topic the Slack channel is subscribed to (empty without slack_channel)."
  value       = module.tf_lock_reaper.chat_topic_arn
}

output "dashboard_name" {
  description = "The lock picture in CloudWatch."
  value       = module.tf_lock_reaper.dashboard_name
}
