# Task definitions and services.

locals {
  image = { for target, repository in aws_ecr_repository.service : target => "${repository.repository_url}:${var.image_tag}" }

  # Same probe as the Dockerfile's HEALTHCHECK: python's urllib, since the slim image has no curl.
  health_check_command = {
    for service, port in {
      gateway   = local.gateway_ops_port
      sms       = local.senders.sms.ops_port
      email     = local.senders.email.ops_port
      slack     = local.senders.slack.ops_port
      callbacks = local.callbacks_ops_port
    } : service => ["CMD", "python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:${port}/healthz', timeout=3)"]
  }

  log_configuration = {
    for service in local.log_groups : service => {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.service[service].name
        awslogs-region        = local.region
        awslogs-stream-prefix = service
      }
    }
  }

  # Writes the TLS material from Secrets Manager into the task's shared volume, then exits; the
  # gateway container starts only when this succeeded.
  tls_files_container = {
    name                   = "tls-files"
    image                  = local.image["gateway"]
    essential              = false
    readonlyRootFilesystem = true
    entryPoint             = ["sh", "-c"]
    command = [join(" && ", [
      "umask 077",
      "printf '%s\\n' \"$TLS_CA\" > ${local.mtls_dir}/ca.crt.pem",
      "printf '%s\\n' \"$TLS_CERT\" > ${local.mtls_dir}/server.crt.pem",
      "printf '%s\\n' \"$TLS_KEY\" > ${local.mtls_dir}/server.key.pem",
      "printf '%s\\n' \"$TLS_CRL\" > ${local.mtls_dir}/crl.pem",
    ])]
    secrets = [
      for name, key in { TLS_CA = "ca", TLS_CERT = "cert", TLS_KEY = "key", TLS_CRL = "crl" } :
      { name = name, valueFrom = "${aws_secretsmanager_secret.gateway_tls.arn}:${key}::" }
    ]
    mountPoints      = [{ sourceVolume = "mtls", containerPath = local.mtls_dir, readOnly = false }]
    logConfiguration = local.log_configuration["gateway"]
  }
}

resource "aws_ecs_task_definition" "gateway" {
  family                   = "${var.name}-gateway"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.gateway_cpu
  memory                   = var.gateway_memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.gateway.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }

  # Task-local scratch space for the PEM files; gone with the task.
  volume {
    name = "mtls"
  }

  container_definitions = jsonencode([
    local.tls_files_container,
    {
      name                   = "gateway"
      image                  = local.image["gateway"]
      essential              = true
      readonlyRootFilesystem = true
      portMappings = [
        { containerPort = local.gateway_port, protocol = "tcp" },
        { containerPort = local.gateway_ops_port, protocol = "tcp" },
      ]
      environment      = local.container_environment["gateway"]
      secrets          = local.container_secrets["gateway"]
      mountPoints      = [{ sourceVolume = "mtls", containerPath = local.mtls_dir, readOnly = true }]
      dependsOn        = [{ containerName = "tls-files", condition = "SUCCESS" }]
      healthCheck      = { command = local.health_check_command["gateway"], interval = 15, timeout = 5, retries = 3, startPeriod = 30 }
      linuxParameters  = { initProcessEnabled = true }
      stopTimeout      = 30
      logConfiguration = local.log_configuration["gateway"]
    },
  ])

  tags = var.tags
}

resource "aws_ecs_task_definition" "sender" {
  for_each = local.senders

  family                   = "${var.name}-sender-${each.key}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.senders[each.key].cpu
  memory                   = var.senders[each.key].memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.sender[each.key].arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }

  container_definitions = jsonencode([
    {
      name                   = "sender-${each.key}"
      image                  = local.image[each.value.image]
      essential              = true
      readonlyRootFilesystem = true
      portMappings           = [{ containerPort = each.value.ops_port, protocol = "tcp" }]
      environment            = local.container_environment[each.key]
      secrets                = local.container_secrets[each.key]
      healthCheck            = { command = local.health_check_command[each.key], interval = 15, timeout = 5, retries = 3, startPeriod = 30 }
      linuxParameters        = { initProcessEnabled = true }
      # Above the senders' shutdown grace (25 s by default), so in-flight sends finish.
      stopTimeout      = 40
      logConfiguration = local.log_configuration[each.key]
    },
  ])

  tags = var.tags
}

# The callback sender needs no AWS API (only Postgres and the clients' receivers), so it has no
# task role, like the migrate task.
resource "aws_ecs_task_definition" "callback_sender" {
  family                   = "${var.name}-callback-sender"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.callback_sender.cpu
  memory                   = var.callback_sender.memory
  execution_role_arn       = aws_iam_role.execution.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }

  container_definitions = jsonencode([
    {
      name                   = "callback-sender"
      image                  = local.image["callback-sender"]
      essential              = true
      readonlyRootFilesystem = true
      portMappings           = [{ containerPort = local.callbacks_ops_port, protocol = "tcp" }]
      environment            = local.container_environment["callbacks"]
      secrets                = local.container_secrets["callbacks"]
      healthCheck            = { command = local.health_check_command["callbacks"], interval = 15, timeout = 5, retries = 3, startPeriod = 30 }
      linuxParameters        = { initProcessEnabled = true }
      # Above its shutdown grace (10 s by default), so requests under way finish.
      stopTimeout      = 20
      logConfiguration = local.log_configuration["callbacks"]
    },
  ])

  tags = var.tags
}

# One-off: `aws ecs run-task` it before the first deployment and after each release with new
# migrations (terraform/README.md). It needs only DATABASE_URL, so it has no task role.
resource "aws_ecs_task_definition" "migrate" {
  family                   = "${var.name}-migrate"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = 256
  memory                   = 512
  execution_role_arn       = aws_iam_role.execution.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }

  container_definitions = jsonencode([
    {
      name                   = "migrate"
      image                  = local.image["gateway"]
      essential              = true
      readonlyRootFilesystem = true
      command                = ["python", "-m", "shared.migrate", "upgrade"]
      environment            = local.container_environment["migrate"]
      secrets                = local.container_secrets["migrate"]
      logConfiguration       = local.log_configuration["migrate"]
    },
  ])

  tags = var.tags
}

resource "aws_ecs_service" "gateway" {
  name                              = "${var.name}-gateway"
  cluster                           = aws_ecs_cluster.this.id
  task_definition                   = aws_ecs_task_definition.gateway.arn
  desired_count                     = var.gateway_task_count
  launch_type                       = "FARGATE"
  platform_version                  = "LATEST"
  health_check_grace_period_seconds = 60
  propagate_tags                    = "SERVICE"
  enable_execute_command            = false

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.gateway.id]
    assign_public_ip = false
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.gateway.arn
    container_name   = "gateway"
    container_port   = local.gateway_port
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  depends_on = [aws_lb_listener.gateway]
  tags       = var.tags
}

resource "aws_ecs_service" "sender" {
  for_each = local.senders

  name                   = "${var.name}-sender-${each.key}"
  cluster                = aws_ecs_cluster.this.id
  task_definition        = aws_ecs_task_definition.sender[each.key].arn
  desired_count          = var.senders[each.key].min_tasks
  launch_type            = "FARGATE"
  platform_version       = "LATEST"
  propagate_tags         = "SERVICE"
  enable_execute_command = false

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.workers.id]
    assign_public_ip = false
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  # The scaling policy owns the task count once the service exists.
  lifecycle {
    ignore_changes = [desired_count]
  }

  tags = var.tags
}

resource "aws_ecs_service" "callback_sender" {
  name                   = "${var.name}-callback-sender"
  cluster                = aws_ecs_cluster.this.id
  task_definition        = aws_ecs_task_definition.callback_sender.arn
  desired_count          = var.callback_sender.tasks
  launch_type            = "FARGATE"
  platform_version       = "LATEST"
  propagate_tags         = "SERVICE"
  enable_execute_command = false

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.callbacks.id]
    assign_public_ip = false
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  tags = var.tags
}
