# Chat: a topic that Amazon Q Developer in chat applications (formerly AWS
# Chatbot) subscribes to, with its Slack and Microsoft Teams channel
# configurations. The function publishes custom notifications there
# (CHAT_TOPIC_ARN); the module's CloudWatch alarms notify it too, which the
# service renders natively. Created when a channel is given or
# create_chat_topic is set, KMS-encrypted like the alert topic.

resource "aws_sns_topic" "chat" {
  count             = local.create_chat_topic ? 1 : 0
  name              = "${var.name}-chat"
  kms_master_key_id = local.kms_key_arn
  tags              = var.tags
}

data "aws_iam_policy_document" "chatbot_trust" {
  count = local.chat_channels ? 1 : 0
  statement {
    sid     = "ChatbotAssumesTheChannelRole"
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["chatbot.amazonaws.com"]
    }
  }
}

# The channel role: notifications only, no commands. It may read the
# module's own alarms (the service shows their state and graph); the
# read-only guardrail caps whatever a channel member could ask for.
resource "aws_iam_role" "chatbot" {
  count              = local.chat_channels ? 1 : 0
  name               = "${var.name}-chatbot"
  assume_role_policy = data.aws_iam_policy_document.chatbot_trust[0].json
  tags               = var.tags
}

data "aws_iam_policy_document" "chatbot" {
  count = local.chat_channels ? 1 : 0
  statement {
    sid       = "ReadTheReapersAlarms"
    actions   = ["cloudwatch:DescribeAlarms"]
    resources = ["arn:${local.partition}:cloudwatch:${local.region}:${local.account}:alarm:${var.name}-*"]
  }
}

resource "aws_iam_role_policy" "chatbot" {
  count  = local.chat_channels ? 1 : 0
  name   = "${var.name}-chatbot"
  role   = aws_iam_role.chatbot[0].id
  policy = data.aws_iam_policy_document.chatbot[0].json
}

resource "aws_chatbot_slack_channel_configuration" "this" {
  count                 = var.slack_channel != null ? 1 : 0
  configuration_name    = "${var.name}-slack"
  iam_role_arn          = aws_iam_role.chatbot[0].arn
  slack_team_id         = var.slack_channel.workspace_id
  slack_channel_id      = var.slack_channel.channel_id
  sns_topic_arns        = [local.chat_topic_arn]
  guardrail_policy_arns = [local.chat_guardrail_policy_arn]
  logging_level         = "ERROR"
  tags                  = var.tags
}

resource "aws_chatbot_teams_channel_configuration" "this" {
  count                 = var.teams_channel != null ? 1 : 0
  configuration_name    = "${var.name}-teams"
  iam_role_arn          = aws_iam_role.chatbot[0].arn
  tenant_id             = var.teams_channel.tenant_id
  team_id               = var.teams_channel.team_id
  channel_id            = var.teams_channel.channel_id
  sns_topic_arns        = [local.chat_topic_arn]
  guardrail_policy_arns = [local.chat_guardrail_policy_arn]
  logging_level         = "ERROR"
  tags                  = var.tags
}
