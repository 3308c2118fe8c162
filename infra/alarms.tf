# Alarms publish to the alert topic with OK actions too, so a PagerDuty
# CloudWatch integration on the topic opens and resolves incidents by itself.

resource "aws_cloudwatch_metric_alarm" "stale_locks" {
  for_each            = local.metric_sources
  alarm_name          = "${var.name}-stale-locks-${replace(each.key, "/[^A-Za-z0-9_.-]/", "_")}"
  alarm_description   = "Stale Terraform state locks in ${each.value.value}: plans and applies on those states are blocked. See the reaper's alert for the lock and the command to release it."
  namespace           = var.metrics_namespace
  metric_name         = "StaleLocks"
  dimensions          = { (each.value.dimension) = each.value.value }
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

resource "aws_cloudwatch_metric_alarm" "breaker" {
  for_each            = local.metric_sources
  alarm_name          = "${var.name}-breaker-${replace(each.key, "/[^A-Za-z0-9_.-]/", "_")}"
  alarm_description   = "The reaper's breaker tripped: one run would have deleted more than max_deletes_per_run locks, so it deleted none. Usually a clock or configuration error."
  namespace           = var.metrics_namespace
  metric_name         = "BreakerTripped"
  dimensions          = { (each.value.dimension) = each.value.value }
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
  alarm_description   = "The reaper's Lambda invocation failed (crash, timeout, or configuration error at start-up: see its logs)."
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
  alarm_description   = "The reaper has not finished a run for ${var.missing_data_periods} periods: stale locks are going unnoticed."
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
