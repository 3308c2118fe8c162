output "function_name" {
  description = "Name of the reaper Lambda function."
  value       = aws_lambda_function.this.function_name
}

output "function_arn" {
  description = "ARN of the reaper Lambda function."
  value       = aws_lambda_function.this.arn
}

output "role_arn" {
  description = "ARN of the function's IAM role."
  value       = aws_iam_role.lambda.arn
}

output "log_group_name" {
  description = "Log group holding the reaper's JSON logs and EMF metric records."
  value       = aws_cloudwatch_log_group.this.name
}

output "sns_topic_arn" {
  description = "Topic receiving alerts and alarm notifications (empty when none)."
  value       = local.sns_topic_arn
}

output "notify_state_table_name" {
  description = "Notify-once state table (empty when not created)."
  value       = local.notify_table
}

output "dead_letter_queue_arn" {
  description = "SQS queue receiving failed asynchronous invocations."
  value       = aws_sqs_queue.dlq.arn
}

output "kms_key_arn" {
  description = "KMS key encrypting the topic, state table, DLQ and logs."
  value       = local.kms_key_arn
}

output "schedule_arn" {
  description = "ARN of the EventBridge Scheduler schedule."
  value       = aws_scheduler_schedule.this.arn
}

output "dashboard_name" {
  description = "Name of the CloudWatch dashboard."
  value       = aws_cloudwatch_dashboard.this.dashboard_name
}

output "chat_topic_arn" {
  description = "The topic chat notifications go to (CHAT_TOPIC_ARN), or empty."
  value       = local.chat_topic_arn
}
