variable "name" {
  description = "Prefix for the names of the resources that are not fixed by shared/topology.py (the KMS alias)."
  type        = string
  default     = "notifications"
}

variable "create_kms_key" {
  description = "Encrypt the topic and queues with a customer managed KMS key. False uses the AWS managed SNS key and SQS-managed encryption (for LocalStack, which runs without KMS)."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
