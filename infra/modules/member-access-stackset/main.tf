# The member role of modules/member-access, for every account of some OUs,
# rolled out by a service-managed CloudFormation StackSet with automatic
# deployment: an account that joins one of the OUs gets the role without
# anyone acting. It trusts only the reaper's role (and the external ID), may
# list and describe tables and buckets for discovery, and per action has the
# same data actions as modules/member-access (a test keeps them equal), on
# this account's tables and *.tflock objects, since discovered tables are
# not known in advance.

locals {
  # The same lists as modules/member-access (the wiring test checks all three against the code's calls).
  lock_table_actions = concat(
    ["dynamodb:Scan"],
    var.action == "ttl" && !var.dry_run ? ["dynamodb:UpdateItem", "dynamodb:GetItem"] : [],
    var.action == "ttl" ? ["dynamodb:DescribeTimeToLive"] : [],
    # Deletes: age-based with action = delete, dead heartbeats with release_dead_heartbeats.
    (var.action == "delete" || var.release_dead_heartbeats) && !var.dry_run ? ["dynamodb:DeleteItem", "dynamodb:GetItem"] : [],
  )
  bucket_list_actions = var.lock_buckets ? ["s3:ListBucket"] : []
  lockfile_actions = concat(
    var.lock_buckets ? ["s3:GetObject", "s3:GetObjectTagging"] : [],
    var.lock_buckets && (var.action == "delete" || var.release_dead_heartbeats) && !var.dry_run ? ["s3:DeleteObject"] : [],
  )
  # Discovery reads: which tables are Terraform's (and which buckets hold lockfiles).
  discovery_actions = concat(
    ["dynamodb:ListTables", "dynamodb:DescribeTable"],
    var.lock_buckets ? ["s3:ListAllMyBuckets", "s3:GetBucketTagging", "s3:GetBucketLocation"] : [],
  )

  trust_condition = var.external_id == null ? {} : { StringEquals = { "sts:ExternalId" = var.external_id } }

  statements = concat(
    [
      { Sid = "Discover", Effect = "Allow", Action = local.discovery_actions, Resource = "*" },
      { Sid = "LockTables", Effect = "Allow", Action = local.lock_table_actions, Resource = { "Fn::Sub" = "arn:$${AWS::Partition}:dynamodb:*:$${AWS::AccountId}:table/*" } },
    ],
    var.lock_buckets ? [
      { Sid = "ListLockfiles", Effect = "Allow", Action = local.bucket_list_actions, Resource = { "Fn::Sub" = "arn:$${AWS::Partition}:s3:::*" } },
      { Sid = "Lockfiles", Effect = "Allow", Action = local.lockfile_actions, Resource = { "Fn::Sub" = "arn:$${AWS::Partition}:s3:::*/*.tflock" } },
    ] : [],
  )

  template = {
    AWSTemplateFormatVersion = "2010-09-09"
    Description              = "tf-lock-reaper member role: trusted only by the reaper's role"
    Resources = {
      Role = {
        Type = "AWS::IAM::Role"
        Properties = {
          RoleName = var.name
          AssumeRolePolicyDocument = {
            Version = "2012-10-17"
            Statement = [merge(
              { Effect = "Allow", Action = "sts:AssumeRole", Principal = { AWS = var.reaper_role_arn } },
              length(local.trust_condition) > 0 ? { Condition = local.trust_condition } : {},
            )]
          }
          Policies = [{
            PolicyName     = "${var.name}-locks"
            PolicyDocument = { Version = "2012-10-17", Statement = local.statements }
          }]
        }
      }
    }
    Outputs = { RoleArn = { Value = { "Fn::GetAtt" = ["Role", "Arn"] } } }
  }
}

resource "aws_cloudformation_stack_set" "member_access" {
  name             = var.name
  permission_model = "SERVICE_MANAGED"
  capabilities     = ["CAPABILITY_NAMED_IAM"]
  template_body    = jsonencode(local.template)

  auto_deployment {
    enabled                          = true
    retain_stacks_on_account_removal = false
  }

  # Created by the organisation's management account (or a delegated administrator).
  call_as = "SELF"
  tags    = var.tags

  lifecycle {
    ignore_changes = [administration_role_arn]
  }
}

resource "aws_cloudformation_stack_set_instance" "member_access" {
  for_each       = toset(var.regions)
  stack_set_name = aws_cloudformation_stack_set.member_access.name
  region         = each.value

  deployment_targets {
    organizational_unit_ids = var.organizational_unit_ids
  }
}
