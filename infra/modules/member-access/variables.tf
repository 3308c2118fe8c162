# Inputs of the role a central tf-lock-reaper assumes in this (member) account.

variable "name" {
  description = "Name of the role the reaper assumes (its ARN goes into the reaper's assume_role_arns)."
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

variable "lock_tables" {
  description = "Lock tables in this account the reaper may read (and, per action, write): names (this account, the provider's region) or table ARNs."
  type        = list(string)
  default     = []
}

variable "lock_buckets" {
  description = "State buckets in this account whose *.tflock lockfiles the reaper may read, each \"bucket\" or \"bucket/prefix\"."
  type        = list(string)
  default     = []
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

variable "tags" {
  description = "Tags for the role."
  type        = map(string)
  default     = {}
}
