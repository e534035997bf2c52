# Every variable is described in terraform/README.md (a test checks that none is missing there).

# --- General --------------------------------------------------------------------------------

variable "aws_region" {
  description = "Region to deploy to."
  type        = string
  default     = "us-east-1"
}

variable "name" {
  description = "Prefix of resource names (cluster, services, roles, keys). The topic and queue names are fixed by shared/topology.py, so one deployment per account and region."
  type        = string
  default     = "notifications"
}

variable "tags" {
  description = "Extra tags for every resource (Application and ManagedBy are always set)."
  type        = map(string)
  default     = {}
}

# --- Network --------------------------------------------------------------------------------

variable "vpc_cidr_block" {
  description = "Address range of the VPC."
  type        = string
  default     = "10.40.0.0/16"
}

variable "availability_zone_count" {
  description = "Availability zones for the subnets (2 or 3)."
  type        = number
  default     = 2
}

variable "single_nat_gateway" {
  description = "One NAT gateway for all zones (cheaper) instead of one per zone (keeps egress through a zone outage)."
  type        = bool
  default     = true
}

# --- Images and services --------------------------------------------------------------------

variable "image_tag" {
  description = "Tag of the images to run; the same tag is pushed to each ECR repository (gateway, sender-sms, sender-email, sender-slack)."
  type        = string
}

variable "cpu_architecture" {
  description = "X86_64 or ARM64: the platform the images were built for. ARM64 (Graviton) Fargate is about 20% cheaper."
  type        = string
  default     = "X86_64"

  validation {
    condition     = contains(["X86_64", "ARM64"], var.cpu_architecture)
    error_message = "cpu_architecture must be X86_64 or ARM64."
  }
}

variable "log_level" {
  description = "LOG_LEVEL of every service."
  type        = string
  default     = "INFO"
}

variable "log_retention_days" {
  description = "Retention of every CloudWatch log group (services, RDS, VPC flow logs), in days."
  type        = number
  default     = 365
}

variable "gateway_task_count" {
  description = "Gateway tasks (spread over the zones by ECS)."
  type        = number
  default     = 2
}

variable "gateway_cpu" {
  description = "Gateway task CPU units (1024 = 1 vCPU)."
  type        = number
  default     = 512
}

variable "gateway_memory" {
  description = "Gateway task memory in MiB."
  type        = number
  default     = 1024
}

variable "gateway_allowed_cidrs" {
  description = "IPv4 ranges allowed to connect to the gateway on 8443. Every client must also present a certificate from our CA."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "gateway_load_balancer_internal" {
  description = "Make the gateway's NLB internal (private subnets) for clients inside the VPC or a peered network."
  type        = bool
  default     = false
}

variable "load_balancer_deletion_protection" {
  description = "Protect the gateway's NLB from deletion (turn off before `terraform destroy`)."
  type        = bool
  default     = true
}

# The defaults come from the capacity model of notifyctl/capacity_model.py (README "Capacity";
# `notifyctl capacity --plan RATE` prints them for other inputs, and
# tests/infra/test_terraform_capacity.py checks these defaults against it). One task delivers the
# least of 0.89 (measured efficiency) x 32 (concurrency) / 0.2 s (provider latency) = 142/s and
# 0.75 x 0.25 vCPU / 2.03 CPU ms per message = 92/s, and no more than its share of its provider's
# per-account quota (SNS SMS 20/s, SES 14/s; Slack limits each Slack channel, not the total).
# - target_backlog_per_task: what one task sends in 10 s.
#     sms   min(92, 20) x 10 s = 200;  email min(92, 14) x 10 s = 140;  slack 92 x 10 s = 923
# - max_tasks: 4 each. SMS and email tasks share one rate limit (SMS_/EMAIL_SENDER_RATE_LIMIT_SHARED,
#   a token bucket in Postgres), so more tasks never send more than the quota: one task already
#   sends the whole default quota, and the others add headroom for a slower provider (latency
#   above 0.2 s lowers a task's capacity) and a task being replaced. After AWS raises a quota, set
#   rate_limit_per_second to the quota (not a share). Slack's 4 is not quota-bound.
# - min_tasks and max_tasks stay within notifyctl/capacity_model.py's TASK_BOUNDS, which
#   `notifyctl scale` enforces too.
variable "senders" {
  description = "Per channel: task size, the bounds and target of its backlog-per-task autoscaling, and optionally each task's rate limit."
  type = map(object({
    min_tasks               = number
    max_tasks               = number
    target_backlog_per_task = number
    cpu                     = number
    memory                  = number
    rate_limit_per_second   = optional(number)
  }))
  default = {
    sms   = { min_tasks = 1, max_tasks = 4, target_backlog_per_task = 200, cpu = 256, memory = 512 }
    email = { min_tasks = 1, max_tasks = 4, target_backlog_per_task = 140, cpu = 256, memory = 512 }
    slack = { min_tasks = 1, max_tasks = 4, target_backlog_per_task = 923, cpu = 256, memory = 512 }
  }

  validation {
    condition     = toset(keys(var.senders)) == toset(["sms", "email", "slack"])
    error_message = "senders needs exactly the channels sms, email and slack."
  }

  validation {
    condition     = alltrue([for sender in values(var.senders) : sender.min_tasks >= 1 && sender.max_tasks >= sender.min_tasks && sender.max_tasks <= 50])
    error_message = "Each sender needs 1 <= min_tasks <= max_tasks <= 50 (the scaling metric divides by the running tasks; 50 tasks hold up to 1,000 database connections)."
  }
}

# The callback sender (status callbacks): one task is plenty for most deployments (64 requests at
# once, at most 8 per client); more tasks share the events through leases.
variable "callback_sender" {
  description = "The callback sender: tasks, cpu, memory, the TCP ports receivers may listen on besides 443, and networks it may reach although private (CALLBACKS_ALLOWED_NETWORKS)."
  type = object({
    tasks            = optional(number, 1)
    cpu              = optional(number, 256)
    memory           = optional(number, 512)
    egress_ports     = optional(list(number), [443])
    allowed_networks = optional(list(string), [])
  })
  default = {}

  validation {
    condition     = var.callback_sender.tasks >= 1 && var.callback_sender.tasks <= 10
    error_message = "callback_sender.tasks must be between 1 and 10."
  }
}

variable "email_from_address" {
  description = "EMAIL_FROM_ADDRESS: the address the email sender sends from."
  type        = string
  default     = "sender@notifications.com"
}

variable "ses_identity" {
  description = "Verified SES identity that covers email_from_address: null means the address itself (created here, confirmed by mail); a domain must be verified already."
  type        = string
  default     = null
}

variable "ses_second_region" {
  description = "A second SES region the email sender fails over to (EMAIL_SENDER_PROVIDERS=ses,ses:<region>): the identity, configuration set and an email_events topic there, delivering to this region's email_events queue. null: SES in aws_region only."
  type        = string
  default     = null

  validation {
    condition     = var.ses_second_region == null || (can(regex("^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]{1,2}$", var.ses_second_region)) && var.ses_second_region != var.aws_region)
    error_message = "ses_second_region must be an AWS region other than aws_region (e.g. eu-west-1), or null."
  }
}

variable "sms_sender_id" {
  description = "SMS_SENDER_ID: alphanumeric sender id shown where the destination country allows one; null leaves it unset."
  type        = string
  default     = null
}

variable "sms_origination_number" {
  description = "SMS_ORIGINATION_NUMBER: registered long code, toll-free number or short code SNS sends from; null leaves it unset."
  type        = string
  default     = null
}

variable "sms_providers" {
  description = "SMS_SENDER_PROVIDERS: the SMS providers in failover order; [\"sns\", \"twilio\"] adds Twilio behind SNS (fill twilio_secret_arn and set twilio_from)."
  type        = list(string)
  default     = ["sns"]

  validation {
    condition     = length(var.sms_providers) > 0 && alltrue([for name in var.sms_providers : contains(["sns", "twilio"], name)]) && length(distinct(var.sms_providers)) == length(var.sms_providers)
    error_message = "sms_providers: each of \"sns\" and \"twilio\" at most once, at least one."
  }
}

variable "twilio_base_url" {
  description = "TWILIO_BASE_URL of the SMS sender when sms_providers names twilio."
  type        = string
  default     = "https://api.twilio.com"
}

variable "twilio_from" {
  description = "TWILIO_FROM: the Twilio number (E.164) or Messaging Service SID (MG...) SMS are sent from; needed when sms_providers names twilio."
  type        = string
  default     = null
}

variable "slack_api_url" {
  description = "SLACK_API_URL of the Slack sender."
  type        = string
  default     = "https://slack.com/api/"
}

# --- Database -------------------------------------------------------------------------------

variable "database_instance_class" {
  description = "RDS instance class."
  type        = string
  default     = "db.t4g.small"
}

variable "database_engine_version" {
  description = "PostgreSQL version; a major version alone follows minor upgrades."
  type        = string
  default     = "15"
}

variable "database_allocated_storage_gb" {
  description = "Initial gp3 storage, GiB."
  type        = number
  default     = 20
}

variable "database_max_allocated_storage_gb" {
  description = "Storage autoscaling ceiling, GiB."
  type        = number
  default     = 100
}

variable "database_multi_az" {
  description = "Run a synchronous standby in a second zone (automatic failover; doubles the instance cost)."
  type        = bool
  default     = true
}

variable "database_backup_retention_days" {
  description = "Days of automated backups and point-in-time recovery (1-35)."
  type        = number
  default     = 7

  validation {
    condition     = var.database_backup_retention_days >= 1 && var.database_backup_retention_days <= 35
    error_message = "database_backup_retention_days must be between 1 and 35."
  }
}

variable "database_backup_replication_region" {
  description = "Copy the automated backups (daily snapshots and transaction logs) to this second region, kept database_backup_retention_days there, for a point-in-time restore after losing this region. null: no copy."
  type        = string
  default     = null
}

variable "database_replicate_source_arn" {
  description = "Make this deployment a disaster-recovery standby: its database is a cross-region read replica of that RDS instance (the primary deployment's database_instance_arn output), and it runs no services until promoted. null: a primary deployment."
  type        = string
  default     = null

  validation {
    condition     = var.database_replicate_source_arn == null || can(regex("^arn:aws[a-z-]*:rds:[a-z0-9-]+:[0-9]{12}:db:[A-Za-z][A-Za-z0-9-]*$", var.database_replicate_source_arn))
    error_message = "database_replicate_source_arn must be the ARN of an RDS instance (arn:aws:rds:<region>:<account>:db:<identifier>), or null."
  }
}

variable "database_deletion_protection" {
  description = "Protect the database from deletion (turn off before `terraform destroy`)."
  type        = bool
  default     = true
}

# --- Alarms ---------------------------------------------------------------------------------

variable "alarm_emails" {
  description = "Addresses subscribed to the alarm topic (each confirms by mail). Subscribe a pager through the topic ARN output instead if you have one."
  type        = list(string)
  default     = []
}

variable "oldest_message_age_alarm_seconds" {
  description = "Alarm when a channel queue's oldest message is older than this many seconds."
  type        = number
  default     = 900
}
