# The role a central tf-lock-reaper assumes in a member account: it trusts
# only the reaper's role (and the external ID when given) and grants the
# same least-privilege actions per mode as the main module, on the named
# tables and buckets only.

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  account   = data.aws_caller_identity.current.account_id
  region    = data.aws_region.current.id
  partition = data.aws_partition.current.partition

  lock_table_arns = [
    for t in var.lock_tables :
    startswith(t, "arn:") ? t : "arn:${local.partition}:dynamodb:${local.region}:${local.account}:table/${t}"
  ]

  lock_bucket_specs = [
    for b in var.lock_buckets : {
      bucket = split("/", b)[0]
      prefix = length(split("/", b)) > 1 ? substr(b, length(split("/", b)[0]) + 1, -1) : ""
    }
  ]

  # The same lists as the main module's (the wiring test checks both against the code's calls).
  lock_table_actions = concat(
    ["dynamodb:Scan"],
    var.action == "ttl" && !var.dry_run ? ["dynamodb:UpdateItem", "dynamodb:GetItem"] : [],
    var.action == "ttl" ? ["dynamodb:DescribeTimeToLive"] : [],
    # Deletes: age-based with action = delete, dead heartbeats with release_dead_heartbeats.
    (var.action == "delete" || var.release_dead_heartbeats) && !var.dry_run ? ["dynamodb:DeleteItem", "dynamodb:GetItem"] : [],
  )
  bucket_list_actions = length(var.lock_buckets) > 0 ? ["s3:ListBucket"] : []
  lockfile_actions = concat(
    length(var.lock_buckets) > 0 ? ["s3:GetObject", "s3:GetObjectTagging"] : [],
    length(var.lock_buckets) > 0 && (var.action == "delete" || var.release_dead_heartbeats) && !var.dry_run ? ["s3:DeleteObject"] : [],
  )
}

data "aws_iam_policy_document" "trust" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "AWS"
      identifiers = [var.reaper_role_arn]
    }
    dynamic "condition" {
      for_each = var.external_id == null ? [] : [var.external_id]
      content {
        test     = "StringEquals"
        variable = "sts:ExternalId"
        values   = [condition.value]
      }
    }
  }
}

resource "aws_iam_role" "access" {
  name               = var.name
  assume_role_policy = data.aws_iam_policy_document.trust.json
  tags               = var.tags
}

data "aws_iam_policy_document" "access" {
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
}

resource "aws_iam_role_policy" "access" {
  count  = length(var.lock_tables) + length(var.lock_buckets) > 0 ? 1 : 0
  name   = "${var.name}-locks"
  role   = aws_iam_role.access.id
  policy = data.aws_iam_policy_document.access.json
}
