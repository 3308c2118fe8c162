# One dashboard: the lock picture per table and bucket, and the reaper's own health.

locals {

  table_widget = {
    for i, spec in [
      { title = "Locks held", metric = "LocksHeld", stat = "Maximum" },
      { title = "Stale locks", metric = "StaleLocks", stat = "Maximum" },
      { title = "Oldest lock age (seconds)", metric = "OldestLockAgeSeconds", stat = "Maximum" },
      { title = "Unreadable items", metric = "UnreadableItems", stat = "Maximum" },
    ] :
    spec.metric => {
      type   = "metric"
      x      = (i % 2) * 12
      y      = floor(i / 2) * 6
      width  = 12
      height = 6
      properties = {
        title   = spec.title
        region  = local.region
        stat    = spec.stat
        period  = local.metric_period
        view    = "timeSeries"
        metrics = [for src in values(local.metric_sources) : concat([var.metrics_namespace, spec.metric], src.dimensions)]
      }
    }
  }

  action_widget = {
    type   = "metric"
    x      = 0
    y      = 12
    width  = 12
    height = 6
    properties = {
      title  = "Deleted / changed / TTL backfilled / action errors"
      region = local.region
      stat   = "Sum"
      period = local.metric_period
      view   = "timeSeries"
      # One row per (source, metric); concat, not flatten, keeps each row a list.
      metrics = concat([
        for src in values(local.metric_sources) : [
          for m in ["LocksDeleted", "LocksChanged", "TtlBackfilled", "ActionErrors"] :
          concat([var.metrics_namespace, m], src.dimensions)
        ]
      ]...)
    }
  }

  health_widget = {
    type   = "metric"
    x      = 12
    y      = 12
    width  = 12
    height = 6
    properties = {
      title  = "Reaper health: run duration, alerts sent, alert errors"
      region = local.region
      stat   = "Maximum"
      period = local.metric_period
      view   = "timeSeries"
      metrics = [
        [var.metrics_namespace, "RunDurationMs"],
        [var.metrics_namespace, "AlertsSent", { stat = "Sum" }],
        [var.metrics_namespace, "AlertErrors", { stat = "Sum" }],
        ["AWS/Lambda", "Errors", "FunctionName", var.name, { stat = "Sum" }],
      ]
    }
  }
}

resource "aws_cloudwatch_dashboard" "this" {
  dashboard_name = var.name
  dashboard_body = jsonencode({
    widgets = concat(values(local.table_widget), [local.action_widget, local.health_widget])
  })
}
