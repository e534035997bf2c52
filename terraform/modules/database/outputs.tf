output "endpoint" {
  description = "host:port of the database."
  value       = aws_db_instance.this.endpoint
}

output "security_group_id" {
  description = "Security group of the database; clients add ingress rules to it."
  value       = aws_security_group.database.id
}

output "secret_arn" {
  description = "ARN of the credentials secret (JSON; key `url` is DATABASE_URL)."
  value       = aws_secretsmanager_secret.database.arn
}

output "kms_key_arn" {
  description = "ARN of the key that encrypts the database and its secret."
  value       = aws_kms_key.database.arn
}

output "instance_identifier" {
  description = "RDS instance identifier."
  value       = aws_db_instance.this.identifier
}

output "instance_arn" {
  description = "ARN of the RDS instance (what a standby's read replica names as its source)."
  value       = aws_db_instance.this.arn
}
