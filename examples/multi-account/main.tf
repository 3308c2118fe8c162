# One reaper for an organisation: deployed in the shared-services account,
# reaping its own lock table, a lock table in another region, and a member
# account's table and lockfile bucket through a role created there by
# modules/member-access. Put a release's tf-lock-reaper-lambda-arm64.zip beside this file first (see examples/complete).

terraform {
  required_version = ">= 1.5"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0"
    }
  }
}

variable "region" {
  description = "Region of the reaper (and of the shared-services lock table)."
  type        = string
  default     = "eu-west-1"
}

variable "member_account_role" {
  description = "A role Terraform may assume in the member account to create the access role there."
  type        = string
}

variable "external_id" {
  description = "External ID the member role requires from the reaper."
  type        = string
  default     = "tf-lock-reaper"
}

# The shared-services account, where the reaper runs.
provider "aws" {
  region = var.region
}

# The member account, where its teams keep their state.
provider "aws" {
  alias  = "member"
  region = var.region
  assume_role {
    role_arn = var.member_account_role
  }
}

data "aws_caller_identity" "member" {
  provider = aws.member
}

locals {
  member = data.aws_caller_identity.member.account_id
}

module "tf_lock_reaper" {
  source = "../../infra"

  lambda_zip_path = "${path.module}/tf-lock-reaper-lambda-arm64.zip"
  lock_tables = [
    "terraform-state-locks",                                                                  # this account, this region
    "arn:aws:dynamodb:us-east-1:${local.tf_lock_reaper_account}:table/terraform-state-locks", # this account, us-east-1
    "arn:aws:dynamodb:${var.region}:${local.member}:table/terraform-state-locks",             # the member account
  ]
  lock_buckets            = ["member-tfstate@${var.region}:${local.member}"]
  assume_role_arns        = [module.member_access.role_arn]
  assume_role_external_id = var.external_id

  stale_after  = "2h"
  action       = "delete"
  delete_after = "6h"
}

# The role the reaper assumes in the member account, trusting only its Lambda role.
module "member_access" {
  source    = "../../infra/modules/member-access"
  providers = { aws = aws.member }

  reaper_role_arn = "arn:aws:iam::${local.tf_lock_reaper_account}:role/tf-lock-reaper"
  external_id     = var.external_id
  lock_tables     = ["terraform-state-locks"]
  lock_buckets    = ["member-tfstate"]
  action          = "delete"
}

data "aws_caller_identity" "current" {}

locals {
  tf_lock_reaper_account = data.aws_caller_identity.current.account_id
}

output "member_role_arn" {
  description = "The role the reaper assumes in the member account."
  value       = module.member_access.role_arn
}
