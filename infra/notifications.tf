# The alert topic (created when none is passed) and the notify-once state table.

resource "aws_sns_topic" "alerts" {
  count             = var.sns_topic_arn == null && var.create_sns_topic ? 1 : 0
  name              = "${var.name}-alerts"
  kms_master_key_id = local.kms_key_arn
  tags              = var.tags
}

resource "aws_dynamodb_table" "notify_state" {
  count        = var.create_notify_state_table ? 1 : 0
  name         = "${var.name}-alerts"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "AlertKey"

  attribute {
    name = "AlertKey"
    type = "S"
  }

  ttl {
    attribute_name = "ExpiresAt"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = local.kms_key_arn
  }

  tags = var.tags
}
