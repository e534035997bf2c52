# The notification system on AWS: network, messaging (shared/topology.py's topic and queues),
# database, the four ECS services and their alarms. Module by module in terraform/modules/.

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

data "aws_region" "current" {}

locals {
  # A disaster-recovery standby (terraform/README.md): network, topology and a replica of the
  # primary's database, but no services, images, load balancer or alarms until it is promoted.
  standby = var.database_replicate_source_arn != null
}

# Encrypts every CloudWatch log group (VPC flow logs, RDS, the services).
resource "aws_kms_key" "logs" {
  description             = "Encrypts the ${var.name} CloudWatch log groups"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        # AWS's default key policy: IAM policies in this account decide who may use the key.
        Sid       = "EnableIamPolicies"
        Effect    = "Allow"
        Principal = { AWS = "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*" # in a key policy, "*" is this key
      },
      {
        Sid       = "AllowCloudWatchLogs"
        Effect    = "Allow"
        Principal = { Service = "logs.${data.aws_region.current.name}.amazonaws.com" }
        Action    = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
        Resource  = "*"
        Condition = {
          ArnLike = {
            "kms:EncryptionContext:aws:logs:arn" = "arn:${data.aws_partition.current.partition}:logs:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:log-group:*"
          }
        }
      },
    ]
  })
}

resource "aws_kms_alias" "logs" {
  name          = "alias/${var.name}-logs"
  target_key_id = aws_kms_key.logs.key_id
}

module "network" {
  source = "./modules/network"

  name                    = var.name
  cidr_block              = var.vpc_cidr_block
  availability_zone_count = var.availability_zone_count
  single_nat_gateway      = var.single_nat_gateway
  logs_kms_key_arn        = aws_kms_key.logs.arn
  log_retention_days      = var.log_retention_days
}

module "messaging" {
  source = "./modules/messaging"

  name = var.name
}

module "database" {
  source = "./modules/database"
  providers = {
    aws                = aws
    aws.backup_replica = aws.backup_replica
  }

  name                  = var.name
  vpc_id                = module.network.vpc_id
  subnet_ids            = module.network.private_subnet_ids
  instance_class        = var.database_instance_class
  engine_version        = var.database_engine_version
  allocated_storage     = var.database_allocated_storage_gb
  max_allocated_storage = var.database_max_allocated_storage_gb
  multi_az              = var.database_multi_az
  backup_retention_days = var.database_backup_retention_days
  deletion_protection   = var.database_deletion_protection
  logs_kms_key_arn      = aws_kms_key.logs.arn
  log_retention_days    = var.log_retention_days

  replicate_source_db       = var.database_replicate_source_arn
  backup_replication_region = var.database_backup_replication_region
}

module "compute" {
  source = "./modules/compute"
  count  = local.standby ? 0 : 1
  providers = {
    aws                   = aws
    aws.ses_second_region = aws.ses_second_region
  }

  name               = var.name
  vpc_id             = module.network.vpc_id
  public_subnet_ids  = module.network.public_subnet_ids
  private_subnet_ids = module.network.private_subnet_ids
  image_tag          = var.image_tag
  cpu_architecture   = var.cpu_architecture
  log_level          = var.log_level
  log_retention_days = var.log_retention_days
  logs_kms_key_arn   = aws_kms_key.logs.arn

  topic_arn              = module.messaging.topic_arn
  messaging_kms_key_arn  = module.messaging.kms_key_arn
  queues                 = module.messaging.queues
  email_events_topic_arn = module.messaging.email_events_topic_arn
  email_events_queue     = module.messaging.email_events_queue

  database_secret_arn        = module.database.secret_arn
  database_kms_key_arn       = module.database.kms_key_arn
  database_security_group_id = module.database.security_group_id

  gateway_task_count                = var.gateway_task_count
  gateway_cpu                       = var.gateway_cpu
  gateway_memory                    = var.gateway_memory
  gateway_allowed_cidrs             = var.gateway_allowed_cidrs
  gateway_load_balancer_internal    = var.gateway_load_balancer_internal
  load_balancer_deletion_protection = var.load_balancer_deletion_protection

  senders                = var.senders
  callback_sender        = var.callback_sender
  email_from_address     = var.email_from_address
  ses_identity           = var.ses_identity
  ses_second_region      = var.ses_second_region
  sms_sender_id          = var.sms_sender_id
  sms_origination_number = var.sms_origination_number
  sms_providers          = var.sms_providers
  twilio_base_url        = var.twilio_base_url
  twilio_from            = var.twilio_from
  slack_api_url          = var.slack_api_url
}

module "monitoring" {
  source = "./modules/monitoring"
  count  = local.standby ? 0 : 1

  name                                 = var.name
  alarm_emails                         = var.alarm_emails
  queues                               = module.messaging.queues
  oldest_message_age_threshold_seconds = var.oldest_message_age_alarm_seconds
  cluster_name                         = module.compute[0].cluster_name
  service_names                        = module.compute[0].service_names
  minimum_running_tasks = merge(
    { gateway = var.gateway_task_count },
    { for channel, sender in var.senders : channel => sender.min_tasks },
  )
  load_balancer_arn_suffix = module.compute[0].gateway_load_balancer_arn_suffix
  target_group_arn_suffix  = module.compute[0].gateway_target_group_arn_suffix
}
