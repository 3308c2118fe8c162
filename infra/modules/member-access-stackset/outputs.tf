output "role_name" {
  description = "The member role's name: the reaper's organization.member_role_name."
  value       = var.name
}

output "stack_set_name" {
  description = "The StackSet that rolls the role out."
  value       = aws_cloudformation_stack_set.member_access.name
}
