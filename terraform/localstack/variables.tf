variable "localstack_endpoint" {
  description = "LocalStack's edge endpoint."
  type        = string
  default     = "http://localhost:4566"
}

variable "region" {
  description = "Region LocalStack emulates; the services' AWS_REGION must match."
  type        = string
  default     = "us-east-1"
}
