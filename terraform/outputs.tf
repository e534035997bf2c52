# Every output is described in terraform/README.md (a test checks that none is missing there).
# A standby (database_replicate_source_arn set) has no services: their outputs are null there.

output "gateway_endpoint" {
  description = "Where clients connect: host:port of the gateway's NLB (mTLS)."
  value       = local.standby ? null : "${module.compute[0].gateway_load_balancer_dns_name}:8443"
}

output "topic_arn" {
  description = "ARN of the notifications topic."
  value       = module.messaging.topic_arn
}

output "queue_urls" {
  description = "Per channel: URLs of its queue and dead-letter queue, and of its bulk lane's."
  value = {
    for channel, queue in module.messaging.queues : channel => {
      queue                  = queue.url
      dead_letter_queue      = queue.dead_letter_queue_url
      bulk_queue             = queue.bulk_url
      bulk_dead_letter_queue = queue.bulk_dead_letter_queue_url
    }
  }
}

output "ecr_repository_urls" {
  description = "ECR repository per Dockerfile target: push each image there with the tag given as image_tag."
  value       = one(module.compute[*].ecr_repository_urls)
}

output "ecs_cluster_name" {
  description = "Name of the ECS cluster."
  value       = one(module.compute[*].cluster_name)
}

output "ecs_service_names" {
  description = "ECS service per component (gateway, sms, email, slack)."
  value       = one(module.compute[*].service_names)
}

output "migrate_task_definition_arn" {
  description = "Task definition that runs the database migrations (see Deploying)."
  value       = one(module.compute[*].migrate_task_definition_arn)
}

output "migrate_network_configuration" {
  description = "The --network-configuration for `aws ecs run-task` of the migrate task."
  value = local.standby ? null : {
    awsvpcConfiguration = {
      subnets        = module.network.private_subnet_ids
      securityGroups = [module.compute[0].workers_security_group_id]
      assignPublicIp = "DISABLED"
    }
  }
}

output "database_endpoint" {
  description = "host:port of the PostgreSQL instance (private)."
  value       = module.database.endpoint
}

output "database_instance_arn" {
  description = "ARN of the RDS instance: a standby in another region replicates it (database_replicate_source_arn)."
  value       = module.database.instance_arn
}

output "database_secret_arn" {
  description = "Secret with the database credentials; key `url` is DATABASE_URL."
  value       = module.database.secret_arn
}

output "gateway_tls_secret_arn" {
  description = "Secret to fill with the gateway's TLS material (JSON: ca, cert, key, crl)."
  value       = one(module.compute[*].gateway_tls_secret_arn)
}

output "slack_bot_token_secret_arn" {
  description = "Secret to fill with the Slack bot token."
  value       = one(module.compute[*].slack_bot_token_secret_arn)
}

output "twilio_secret_arn" {
  description = "Secret to fill with the Twilio account (JSON: account_sid, auth_token); null unless sms_providers names twilio."
  value       = one(module.compute[*].twilio_secret_arn)
}

output "alarm_topic_arn" {
  description = "SNS topic the CloudWatch alarms notify: subscribe on-call tooling to it."
  value       = one(module.monitoring[*].alarm_topic_arn)
}

output "vpc_id" {
  description = "ID of the VPC."
  value       = module.network.vpc_id
}
