# Alarms publish to the alert topic with OK actions too, so a PagerDuty
# CloudWatch integration on the topic opens and resolves incidents by itself.

locals {
  # Alarms on the reaper's per-source metrics (per_source_alarms): each, for every listed table and bucket.
  source_alarms = {
    stale-locks = {
      metric      = "StaleLocks"
      description = "Stale Terraform state locks in %s: plans and applies on those states are blocked. See the reaper's alert for the lock and the command to release it."
      runbook     = "alarm-stale-locks"
    }
    breaker = {
      metric      = "BreakerTripped"
      description = "The reaper's breaker tripped (%s): one run would have deleted more than max_deletes_per_run locks, so it deleted none. Usually a clock or configuration error."
      runbook     = "alarm-breaker"
    }
  }
  # Each alarm's runbook section (RUNBOOK_URL), appended to its description.
  runbook_suffix = {
    for section in ["alarm-stale-locks", "alarm-breaker", "alarm-scan-errors", "alarm-unreadable-items", "alarm-errors", "alarm-not-reporting"] :
    section => var.runbook_url == "" ? "" : " Runbook: ${var.runbook_url}#${section}"
  }
  source_alarm_instances = merge([
    for alarm, spec in local.source_alarms : {
      for key, src in local.metric_sources : "${alarm}-${key}" => merge(spec, src)
    }
  ]...)
}

# Totals over every source (no dimension): always created, so discovered
# sources, unknown when the module is planned, alarm too.
locals {
  run_wide_alarms = {
    stale-locks = {
      metric      = "StaleLocks"
      description = "Stale Terraform state locks: plans and applies on those states are blocked. See the reaper's alert for each lock and the command to release it."
      runbook     = "alarm-stale-locks"
    }
    breaker = {
      metric      = "BreakerTripped"
      description = "The reaper's breaker tripped: one run would have deleted more than max_deletes_per_run locks, so it deleted none. Usually a clock or configuration error."
      runbook     = "alarm-breaker"
    }
    scan-errors = {
      metric      = "ScanErrors"
      description = "The reaper could not read a lock table or lockfile bucket: its locks are neither reported nor cleared."
      runbook     = "alarm-scan-errors"
    }
    unreadable-items = {
      metric      = "UnreadableItems"
      description = "Items in a lock table are neither Terraform locks nor digests: the reaper leaves them alone and reports them."
      runbook     = "alarm-unreadable-items"
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "run_wide" {
  for_each            = local.run_wide_alarms
  alarm_name          = "${var.name}-${each.key}"
  alarm_description   = "${each.value.description}${local.runbook_suffix[each.value.runbook]}"
  namespace           = var.metrics_namespace
  metric_name         = each.value.metric
  statistic           = "Maximum"
  period              = local.metric_period
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}

# One alarm per listed source and metric: optional (two alarms per source add up at 200 sources).
resource "aws_cloudwatch_metric_alarm" "per_source" {
  for_each            = var.per_source_alarms ? local.source_alarm_instances : {}
  alarm_name          = "${var.name}-${replace(each.key, "/[^A-Za-z0-9_.-]/", "_")}"
  alarm_description   = "${format(each.value.description, each.value.label)}${local.runbook_suffix[each.value.runbook]}"
  namespace           = var.metrics_namespace
  metric_name         = each.value.metric
  dimensions          = { for i in range(0, length(each.value.dimensions), 2) : each.value.dimensions[i] => each.value.dimensions[i + 1] }
  statistic           = "Maximum"
  period              = local.metric_period
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "errors" {
  alarm_name          = "${var.name}-errors"
  alarm_description   = "The reaper's Lambda invocation failed (crash, timeout, or configuration error at start-up: see its logs).${local.runbook_suffix["alarm-errors"]}"
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = aws_lambda_function.this.function_name }
  statistic           = "Sum"
  period              = local.metric_period
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "not_reporting" {
  alarm_name          = "${var.name}-not-reporting"
  alarm_description   = "The reaper has not finished a run for ${var.missing_data_periods} periods: stale locks are going unnoticed.${local.runbook_suffix["alarm-not-reporting"]}"
  namespace           = var.metrics_namespace
  metric_name         = "RunDurationMs"
  statistic           = "SampleCount"
  period              = local.metric_period
  evaluation_periods  = var.missing_data_periods
  threshold           = 1
  comparison_operator = "LessThanThreshold"
  treat_missing_data  = "breaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}
