variable "name" {
  description = "Prefix for resource names."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the services."
  type        = string
}

variable "public_subnet_ids" {
  description = "Subnets of an internet-facing gateway load balancer."
  type        = list(string)
}

variable "private_subnet_ids" {
  description = "Subnets of the tasks (and of an internal gateway load balancer)."
  type        = list(string)
}

variable "image_tag" {
  description = "Tag of the images in the ECR repositories to run."
  type        = string
}

variable "cpu_architecture" {
  description = "X86_64 or ARM64: the platform the images were built for."
  type        = string
}

variable "log_level" {
  description = "LOG_LEVEL of every service."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the services' log groups, in days."
  type        = number
}

variable "logs_kms_key_arn" {
  description = "KMS key that encrypts the services' log groups."
  type        = string
}

variable "topic_arn" {
  description = "ARN of the notifications topic."
  type        = string
}

variable "email_events_topic_arn" {
  description = "ARN of the topic SES publishes email events (receipts) to."
  type        = string
}

variable "email_events_queue" {
  description = "The email events queue the email sender consumes: arn and dead_letter_queue_arn (and more), from the messaging module."
  type = object({
    arn                   = string
    dead_letter_queue_arn = string
  })
}

variable "messaging_kms_key_arn" {
  description = "ARN of the key that encrypts the topic and queues."
  type        = string
}

variable "queues" {
  description = "Per channel: name, arn, dead_letter_queue_arn (and more) of its queues, and the bulk lane's, from the messaging module."
  type = map(object({
    name                       = string
    arn                        = string
    dead_letter_queue_arn      = string
    bulk_arn                   = string
    bulk_dead_letter_queue_arn = string
  }))
}

variable "database_secret_arn" {
  description = "ARN of the database credentials secret (key `url` is DATABASE_URL)."
  type        = string
}

variable "database_kms_key_arn" {
  description = "ARN of the key that encrypts the database secret."
  type        = string
}

variable "database_security_group_id" {
  description = "Security group of the database; this module adds the services' ingress rules."
  type        = string
}

variable "gateway_task_count" {
  description = "Gateway tasks to run."
  type        = number
}

variable "gateway_cpu" {
  description = "Gateway task CPU units (1024 = 1 vCPU)."
  type        = number
}

variable "gateway_memory" {
  description = "Gateway task memory in MiB."
  type        = number
}

variable "gateway_allowed_cidrs" {
  description = "IPv4 ranges that may connect to the gateway's port 8443."
  type        = list(string)
}

variable "gateway_load_balancer_internal" {
  description = "Put the gateway's NLB in the private subnets (clients inside the VPC or peered networks)."
  type        = bool
}

variable "load_balancer_deletion_protection" {
  description = "Refuse to delete the gateway's NLB until this is turned off."
  type        = bool
}

variable "senders" {
  description = "Per channel (sms, email, slack): task size, backlog-based scaling bounds, each task's rate limit (null: the sender's default)."
  type = map(object({
    min_tasks               = number
    max_tasks               = number
    target_backlog_per_task = number
    cpu                     = number
    memory                  = number
    rate_limit_per_second   = optional(number)
  }))
}

variable "callback_sender" {
  description = "The callback sender: tasks, task size, TCP ports its receivers may listen on (443 always), CALLBACKS_ALLOWED_NETWORKS."
  type = object({
    tasks            = number
    cpu              = number
    memory           = number
    egress_ports     = list(number)
    allowed_networks = list(string)
  })
}

variable "email_from_address" {
  description = "EMAIL_FROM_ADDRESS of the email sender."
  type        = string
}

variable "ses_identity" {
  description = "SES identity (address or domain) the email sender may send from; null means email_from_address."
  type        = string
  default     = null
}

variable "ses_second_region" {
  description = "A second SES region the email sender fails over to (the aws.ses_second_region provider's); null: none."
  type        = string
  default     = null
}

variable "sms_sender_id" {
  description = "SMS_SENDER_ID of the SMS sender (alphanumeric sender id); null leaves it unset."
  type        = string
  default     = null
}

variable "sms_origination_number" {
  description = "SMS_ORIGINATION_NUMBER of the SMS sender; null leaves it unset."
  type        = string
  default     = null
}

variable "sms_providers" {
  description = "SMS_SENDER_PROVIDERS of the SMS sender, in failover order: [\"sns\"] or [\"sns\", \"twilio\"]."
  type        = list(string)
  default     = ["sns"]
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
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
