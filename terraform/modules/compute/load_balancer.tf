# The gateway behind a Network Load Balancer that passes TCP through on 8443: the TLS handshake,
# and with it the client-certificate check, happens in the gateway itself. The NLB's health
# check asks the gateway's plain-HTTP ops port (/readyz) instead.

resource "aws_security_group" "load_balancer" {
  name        = "${var.name}-gateway-nlb"
  description = "Gateway NLB: mTLS clients in, gateway tasks out"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name}-gateway-nlb" })
}

resource "aws_vpc_security_group_ingress_rule" "load_balancer_clients" {
  for_each = toset(var.gateway_allowed_cidrs)

  security_group_id = aws_security_group.load_balancer.id
  description       = "mTLS clients (client certificates are checked by the gateway)"
  ip_protocol       = "tcp"
  from_port         = local.gateway_port
  to_port           = local.gateway_port
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_egress_rule" "load_balancer_to_gateway" {
  for_each = toset([tostring(local.gateway_port), tostring(local.gateway_ops_port)])

  security_group_id            = aws_security_group.load_balancer.id
  description                  = "Forwarded connections and health checks to the gateway tasks"
  ip_protocol                  = "tcp"
  from_port                    = tonumber(each.key)
  to_port                      = tonumber(each.key)
  referenced_security_group_id = aws_security_group.gateway.id
}

resource "aws_lb" "gateway" {
  #checkov:skip=CKV_AWS_91:NLB access logs are written only for TLS listeners; this listener is TCP passthrough (mTLS ends at the gateway), so there would be nothing to log. VPC flow logs record the connections.
  name                             = "${var.name}-gateway"
  load_balancer_type               = "network"
  internal                         = var.gateway_load_balancer_internal
  subnets                          = var.gateway_load_balancer_internal ? var.private_subnet_ids : var.public_subnet_ids
  security_groups                  = [aws_security_group.load_balancer.id]
  enable_cross_zone_load_balancing = true
  enable_deletion_protection       = var.load_balancer_deletion_protection
  tags                             = var.tags
}

resource "aws_lb_target_group" "gateway" {
  name                 = "${var.name}-gateway"
  vpc_id               = var.vpc_id
  target_type          = "ip"
  protocol             = "TCP"
  port                 = local.gateway_port
  deregistration_delay = 30

  health_check {
    protocol            = "HTTP"
    port                = tostring(local.gateway_ops_port)
    path                = "/readyz"
    matcher             = "200"
    interval            = 10
    healthy_threshold   = 3
    unhealthy_threshold = 3
  }

  tags = var.tags
}

resource "aws_lb_listener" "gateway" {
  load_balancer_arn = aws_lb.gateway.arn
  protocol          = "TCP"
  port              = local.gateway_port

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.gateway.arn
  }

  tags = var.tags
}

# --- Task security groups -------------------------------------------------------------------

resource "aws_security_group" "gateway" {
  name        = "${var.name}-gateway"
  description = "Gateway tasks: the NLB in; AWS APIs and the database out"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name}-gateway" })
}

resource "aws_vpc_security_group_ingress_rule" "gateway_from_load_balancer" {
  for_each = toset([tostring(local.gateway_port), tostring(local.gateway_ops_port)])

  security_group_id            = aws_security_group.gateway.id
  description                  = "Client connections and health checks from the NLB"
  ip_protocol                  = "tcp"
  from_port                    = tonumber(each.key)
  to_port                      = tonumber(each.key)
  referenced_security_group_id = aws_security_group.load_balancer.id
}

# Senders and the migrate task: no inbound traffic at all.
resource "aws_security_group" "workers" {
  name        = "${var.name}-workers"
  description = "Senders and one-off tasks: no inbound; AWS APIs, Slack and the database out"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name}-workers" })
}

# The callback sender: no inbound; the clients' receivers (HTTPS on var.callback_sender's
# egress_ports, anywhere: their addresses are the clients') and the database out. Which
# addresses it may reach is the application's rule (shared/callback_targets.py refuses private,
# link-local and metadata addresses), since a security group cannot say "public only".
resource "aws_security_group" "callbacks" {
  name        = "${var.name}-callbacks"
  description = "Callback sender: no inbound; the clients' HTTPS receivers and the database out"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name}-callbacks" })
}

resource "aws_vpc_security_group_egress_rule" "callbacks_receivers" {
  for_each = toset([for port in var.callback_sender.egress_ports : tostring(port) if port != 443])

  security_group_id = aws_security_group.callbacks.id
  description       = "HTTPS to the clients' callback receivers on port ${each.key}"
  ip_protocol       = "tcp"
  from_port         = tonumber(each.key)
  to_port           = tonumber(each.key)
  cidr_ipv4         = "0.0.0.0/0"
}

locals {
  task_security_groups = {
    gateway   = aws_security_group.gateway.id
    workers   = aws_security_group.workers.id
    callbacks = aws_security_group.callbacks.id
  }
}

# HTTPS out: AWS APIs (SNS, SQS, SES, Secrets Manager, ECR, CloudWatch Logs) and Slack, through
# the NAT gateway. DNS needs no rule: security groups do not filter the VPC resolver.
resource "aws_vpc_security_group_egress_rule" "tasks_https" {
  for_each = local.task_security_groups

  security_group_id = each.value
  description       = "HTTPS to AWS APIs, the Slack Web API and callback receivers"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_egress_rule" "tasks_database" {
  for_each = local.task_security_groups

  security_group_id            = each.value
  description                  = "PostgreSQL"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = var.database_security_group_id
}

resource "aws_vpc_security_group_ingress_rule" "database_from_tasks" {
  for_each = local.task_security_groups

  security_group_id            = var.database_security_group_id
  description                  = "PostgreSQL from the ${each.key} tasks"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = each.value
}
