# Inputs of the member role rolled out to every account of some OUs by a
# service-managed CloudFormation StackSet.

variable "name" {
  description = "Name of the role the reaper assumes in each account (the reaper's organization.member_role_name)."
  type        = string
  default     = "tf-lock-reaper-access"
}

variable "reaper_role_arn" {
  description = "ARN of the reaper's Lambda role (the main module's role_arn output): the only principal trusted."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$", var.reaper_role_arn))
    error_message = "reaper_role_arn must be an IAM role ARN."
  }
}

variable "external_id" {
  description = "External ID the reaper must pass (its assume_role_external_id); null for none."
  type        = string
  default     = null
}

variable "organizational_unit_ids" {
  description = "OUs (or the root) whose accounts get the role, now and whenever an account joins them (automatic deployment)."
  type        = list(string)

  validation {
    condition     = length(var.organizational_unit_ids) > 0 && alltrue([for o in var.organizational_unit_ids : can(regex("^(r-[a-z0-9]+|ou-[a-z0-9]+-[a-z0-9]+)$", o))])
    error_message = "organizational_unit_ids are root (r-…) or OU (ou-…-…) IDs, at least one."
  }
}

variable "lock_buckets" {
  description = "Whether the reaper also reads S3 lockfiles in these accounts (DISCOVER_BUCKETS): grants the bucket and *.tflock actions."
  type        = bool
  default     = false
}

variable "action" {
  description = "The reaper's action (report, ttl or delete): the role grants only what it needs."
  type        = string
  default     = "report"

  validation {
    condition     = contains(["report", "ttl", "delete"], var.action)
    error_message = "action must be one of report, ttl, delete."
  }
}

variable "dry_run" {
  description = "The reaper's dry_run: no write actions are granted."
  type        = bool
  default     = false
}

variable "release_dead_heartbeats" {
  description = "The reaper's release_dead_heartbeats: deletes are granted for it whatever the action."
  type        = bool
  default     = true
}

variable "regions" {
  description = "Regions the stack instances deploy to (IAM is global: one region is enough)."
  type        = list(string)
  default     = ["us-east-1"]
}

variable "tags" {
  description = "Tags for the StackSet."
  type        = map(string)
  default     = {}
}
