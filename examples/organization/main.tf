# One reaper for a whole AWS Organization, however many accounts it has:
# the member role reaches every account of the chosen OUs through a
# service-managed StackSet (an account that joins later gets it by itself),
# and the reaper discovers the lock tables of every ACTIVE account in scope,
# in every region asked for, by their key schema. No list to keep, and the
# function's environment stays far below Lambda's 4 KB.
#
# Apply the StackSet from the management account (or a StackSets delegated
# administrator); the reaper can run there or, with `reader_role_arn`, in a
# shared-services account that may read Organizations through that role.
# Put a release's tf-lock-reaper-lambda-arm64.zip beside this file first (see examples/complete).

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
  description = "Region of the reaper."
  type        = string
  default     = "eu-west-1"
}

variable "organization_id" {
  description = "The organisation's ID (o-…): the reaper may assume the member role in its accounts only."
  type        = string
}

variable "workload_ou_ids" {
  description = "OUs (or the root) whose accounts hold Terraform state: they get the member role, and are searched."
  type        = list(string)
}

variable "skip_ou_ids" {
  description = "OUs or accounts left out of the search (sandboxes, suspended)."
  type        = list(string)
  default     = []
}

variable "reader_role_arn" {
  description = "A role that may list the organisation, when the reaper's account is not the management account."
  type        = string
  default     = null
}

variable "external_id" {
  description = "External ID the member role requires from the reaper."
  type        = string
  default     = "tf-lock-reaper"
}

provider "aws" {
  region = var.region
}

module "tf_lock_reaper" {
  source = "../../infra"

  lambda_zip_path         = "${path.module}/tf-lock-reaper-lambda-arm64.zip"
  assume_role_external_id = var.external_id
  organization = {
    organization_id  = var.organization_id
    accounts         = var.workload_ou_ids
    skip             = var.skip_ou_ids
    member_role_name = "tf-lock-reaper-access"
    role_arn         = var.reader_role_arn
    regions          = ["eu-west-1", "us-east-1"]
  }
  stale_after         = "2h"
  action              = "delete"
  delete_after        = "6h"
  max_deletes_per_run = 10
}

module "member_access" {
  source = "../../infra/modules/member-access-stackset"

  name                    = "tf-lock-reaper-access"
  reaper_role_arn         = module.tf_lock_reaper.role_arn
  external_id             = var.external_id
  organizational_unit_ids = var.workload_ou_ids
  action                  = "delete"
}
