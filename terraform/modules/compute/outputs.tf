output "cluster_name" {
  description = "Name of the ECS cluster."
  value       = aws_ecs_cluster.this.name
}

output "service_names" {
  description = "ECS service names: gateway, sms, email, slack, callbacks."
  value = merge(
    { gateway = aws_ecs_service.gateway.name, callbacks = aws_ecs_service.callback_sender.name },
    { for channel, service in aws_ecs_service.sender : channel => service.name },
  )
}

output "ecr_repository_urls" {
  description = "ECR repository per Dockerfile target."
  value       = { for target, repository in aws_ecr_repository.service : target => repository.repository_url }
}

output "gateway_load_balancer_dns_name" {
  description = "DNS name of the gateway's Network Load Balancer."
  value       = aws_lb.gateway.dns_name
}

output "gateway_load_balancer_arn_suffix" {
  description = "ARN suffix of the NLB (the LoadBalancer dimension of its CloudWatch metrics)."
  value       = aws_lb.gateway.arn_suffix
}

output "gateway_target_group_arn_suffix" {
  description = "ARN suffix of the gateway target group (the TargetGroup dimension of its metrics)."
  value       = aws_lb_target_group.gateway.arn_suffix
}

output "gateway_tls_secret_arn" {
  description = "ARN of the secret holding the gateway's TLS material."
  value       = aws_secretsmanager_secret.gateway_tls.arn
}

output "slack_bot_token_secret_arn" {
  description = "ARN of the secret holding the Slack bot token."
  value       = aws_secretsmanager_secret.slack_bot_token.arn
}

output "twilio_secret_arn" {
  description = "ARN of the secret holding the Twilio account SID and auth token; null unless sms_providers names twilio."
  value       = one(aws_secretsmanager_secret.twilio[*].arn)
}

output "migrate_task_definition_arn" {
  description = "Task definition that runs the database migrations."
  value       = aws_ecs_task_definition.migrate.arn
}

output "workers_security_group_id" {
  description = "Security group for one-off tasks such as migrate."
  value       = aws_security_group.workers.id
}
