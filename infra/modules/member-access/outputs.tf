output "role_arn" {
  description = "The role to list in the reaper's assume_role_arns."
  value       = aws_iam_role.access.arn
}
