variable "name" {
  description = "Prefix for resource names."
  type        = string
}

variable "alarm_emails" {
  description = "Email addresses subscribed to the alarm topic (each confirms by mail)."
  type        = list(string)
  default     = []
}

variable "queues" {
  description = "Per channel: name and dead_letter_queue of its queues, and the bulk lane's dead-letter queue, from the messaging module."
  type = map(object({
    name                   = string
    dead_letter_queue      = string
    bulk_dead_letter_queue = string
  }))
}

variable "oldest_message_age_threshold_seconds" {
  description = "Alarm when a queue's oldest message is older than this."
  type        = number
}

variable "cluster_name" {
  description = "ECS cluster of the services."
  type        = string
}

variable "service_names" {
  description = "ECS service name per service key (gateway, sms, email, slack)."
  type        = map(string)
}

variable "minimum_running_tasks" {
  description = "Per service key: alarm when fewer tasks run."
  type        = map(number)
}

variable "load_balancer_arn_suffix" {
  description = "ARN suffix of the gateway's NLB."
  type        = string
}

variable "target_group_arn_suffix" {
  description = "ARN suffix of the gateway's target group."
  type        = string
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
