# ECS on Fargate: one service per component, each from its own image built from the repository's
# Dockerfile (target = the service's key in local.images).

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name

  # Dockerfile target => ECR repository. The migrate task runs the gateway image.
  images = toset(["gateway", "sender-sms", "sender-email", "sender-slack", "callback-sender"])

  # Per sender: its Dockerfile target, `python -m` module, ops port and settings prefix.
  senders = {
    sms   = { image = "sender-sms", ops_port = 9001, settings_prefix = "SMS_SENDER" }
    email = { image = "sender-email", ops_port = 9002, settings_prefix = "EMAIL_SENDER" }
    slack = { image = "sender-slack", ops_port = 9003, settings_prefix = "SLACK_SENDER" }
  }

  gateway_port     = 8443
  gateway_ops_port = 9000
  # The callback sender (python -m callback_sender): status callbacks to the clients' receivers.
  callbacks_ops_port = 9004
  # Where the gateway's task writes the PEM files it reads from Secrets Manager.
  mtls_dir = "/run/mtls"

  # Environment of every service: the real settings of shared/settings.py (tests/infra checks the
  # names). AWS_ENDPOINT_URL is empty on purpose: empty means the real AWS endpoints, while the
  # default is the local emulator.
  common_environment = {
    AWS_ENDPOINT_URL = ""
    AWS_REGION       = local.region
    LOG_LEVEL        = var.log_level
    LOG_FORMAT       = "json"
  }

  # Each sender task's rate limit (`rate_limit_per_second` in var.senders): for SMS and email,
  # whose tasks share one bucket, the provider's per-account quota; null leaves the sender's own
  # default (the default quota).
  rate_limit = {
    for channel, sender in var.senders : channel => sender.rate_limit_per_second == null ? null : tostring(sender.rate_limit_per_second)
  }
  rate_limit_burst = {
    for channel, sender in var.senders : channel => sender.rate_limit_per_second == null ? null : tostring(max(1, ceil(sender.rate_limit_per_second)))
  }

  environment = {
    gateway = {
      GATEWAY_HOST      = "0.0.0.0"
      GATEWAY_PORT      = tostring(local.gateway_port)
      GATEWAY_OPS_HOST  = "0.0.0.0"
      GATEWAY_OPS_PORT  = tostring(local.gateway_ops_port)
      GATEWAY_TLS_CA    = "${local.mtls_dir}/ca.crt.pem"
      GATEWAY_TLS_CERT  = "${local.mtls_dir}/server.crt.pem"
      GATEWAY_TLS_KEY   = "${local.mtls_dir}/server.key.pem"
      GATEWAY_TLS_CRL   = "${local.mtls_dir}/crl.pem"
      GATEWAY_TOPIC_ARN = var.topic_arn
    }
    sms = {
      SMS_SENDER_OPS_HOST    = "0.0.0.0"
      SMS_SENDER_OPS_PORT    = tostring(local.senders.sms.ops_port)
      SMS_SENDER_ID          = var.sms_sender_id
      SMS_ORIGINATION_NUMBER = var.sms_origination_number
      SMS_SENDER_PROVIDERS   = join(",", var.sms_providers)
      TWILIO_BASE_URL        = local.twilio ? var.twilio_base_url : null
      TWILIO_FROM            = local.twilio ? var.twilio_from : null

      SMS_SENDER_RATE_LIMIT_PER_SECOND = local.rate_limit.sms
      SMS_SENDER_RATE_LIMIT_BURST      = local.rate_limit_burst.sms
    }
    email = {
      EMAIL_SENDER_OPS_HOST = "0.0.0.0"
      EMAIL_SENDER_OPS_PORT = tostring(local.senders.email.ops_port)
      EMAIL_FROM_ADDRESS    = var.email_from_address
      # SES here, then SES in the second region (ses.tf prepares it) when there is one.
      EMAIL_SENDER_PROVIDERS = var.ses_second_region == null ? "ses" : "ses,ses:${var.ses_second_region}"

      EMAIL_SENDER_RATE_LIMIT_PER_SECOND = local.rate_limit.email
      EMAIL_SENDER_RATE_LIMIT_BURST      = local.rate_limit_burst.email
    }
    slack = {
      SLACK_SENDER_OPS_HOST = "0.0.0.0"
      SLACK_SENDER_OPS_PORT = tostring(local.senders.slack.ops_port)
      SLACK_API_URL         = var.slack_api_url

      SLACK_SENDER_RATE_LIMIT_PER_SECOND = local.rate_limit.slack
      SLACK_SENDER_RATE_LIMIT_BURST      = local.rate_limit_burst.slack
    }
    callbacks = {
      CALLBACKS_OPS_HOST         = "0.0.0.0"
      CALLBACKS_OPS_PORT         = tostring(local.callbacks_ops_port)
      CALLBACKS_ALLOWED_NETWORKS = length(var.callback_sender.allowed_networks) == 0 ? null : join(",", var.callback_sender.allowed_networks)
    }
    migrate = {}
  }

  # Twilio is the SMS sender's second provider when sms_providers names it (its secret exists then).
  twilio = contains(var.sms_providers, "twilio")

  # Environment variables filled from Secrets Manager when a task starts (execution role).
  secrets = {
    gateway = { DATABASE_URL = "${var.database_secret_arn}:url::" }
    sms = {
      DATABASE_URL       = "${var.database_secret_arn}:url::"
      TWILIO_ACCOUNT_SID = local.twilio ? "${join("", aws_secretsmanager_secret.twilio[*].arn)}:account_sid::" : null
      TWILIO_AUTH_TOKEN  = local.twilio ? "${join("", aws_secretsmanager_secret.twilio[*].arn)}:auth_token::" : null
    }
    email = { DATABASE_URL = "${var.database_secret_arn}:url::" }
    slack = {
      DATABASE_URL    = "${var.database_secret_arn}:url::"
      SLACK_BOT_TOKEN = aws_secretsmanager_secret.slack_bot_token.arn
    }
    callbacks = { DATABASE_URL = "${var.database_secret_arn}:url::" }
    migrate   = { DATABASE_URL = "${var.database_secret_arn}:url::" }
  }

  # Unset (null) optional settings are left out, so the service uses its default.
  container_environment = {
    for service, variables in local.environment : service => [
      for name, value in merge(local.common_environment, variables) : { name = name, value = value } if value != null
    ]
  }
  container_secrets = {
    for service, variables in local.secrets : service => [
      for name, value_from in variables : { name = name, valueFrom = value_from } if value_from != null
    ]
  }

  log_groups = toset(["gateway", "sms", "email", "slack", "callbacks", "migrate"])
}

resource "aws_ecr_repository" "service" {
  for_each = local.images

  name                 = "${var.name}/${each.key}"
  image_tag_mutability = "IMMUTABLE"

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
  }

  tags = var.tags
}

resource "aws_ecr_lifecycle_policy" "service" {
  for_each = aws_ecr_repository.service

  repository = each.value.name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "Keep the last 30 images"
      selection    = { tagStatus = "any", countType = "imageCountMoreThan", countNumber = 30 }
      action       = { type = "expire" }
    }]
  })
}

resource "aws_ecs_cluster" "this" {
  name = var.name

  # Container Insights publishes RunningTaskCount, which the senders' scaling policies divide by.
  setting {
    name  = "containerInsights"
    value = "enabled"
  }

  tags = var.tags
}

resource "aws_ecs_cluster_capacity_providers" "this" {
  cluster_name       = aws_ecs_cluster.this.name
  capacity_providers = ["FARGATE"]

  default_capacity_provider_strategy {
    capacity_provider = "FARGATE"
    weight            = 1
  }
}

resource "aws_cloudwatch_log_group" "service" {
  for_each = local.log_groups

  name              = "/ecs/${var.name}/${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.logs_kms_key_arn
  tags              = var.tags
}
