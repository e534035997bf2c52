# PostgreSQL on RDS in the private subnets, its credentials in Secrets Manager.
#
# The services read one setting, DATABASE_URL; the secret holds it (key `url`) next to the usual
# RDS secret fields, and ECS injects that key into the containers. The generated password is in
# the Terraform state too: keep the state in an encrypted, access-controlled backend.
#
# Disaster recovery (terraform/README.md): with replicate_source_db the instance is a cross-region
# read replica of the primary's, with the primary's data and master password; promoted, it is
# given this deployment's password (the secret's) when replicate_source_db is unset again. With
# backup_replication_region the automated backups are also copied to that region.

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

data "aws_region" "current" {}

locals {
  identifier    = "${var.name}-postgres"
  database_name = "notifications"
  username      = "notifications"
  major_version = split(".", var.engine_version)[0]
  # A replica takes its engine, database, user and password from its source.
  replica = var.replicate_source_db != null

  # Both keys' policy: AWS's default, IAM policies in this account decide who may use the key.
  key_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "EnableIamPolicies"
        Effect    = "Allow"
        Principal = { AWS = "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*" # in a key policy, "*" is this key
      },
    ]
  })
}

resource "aws_kms_key" "database" {
  description             = "Encrypts the ${var.name} database, its Performance Insights data and its credentials secret"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = local.key_policy
  tags                    = var.tags
}

resource "aws_kms_alias" "database" {
  name          = "alias/${var.name}-database"
  target_key_id = aws_kms_key.database.key_id
}

resource "aws_db_subnet_group" "this" {
  name       = local.identifier
  subnet_ids = var.subnet_ids
  tags       = var.tags
}

# Ingress rules are added by the compute module, one per service security group.
resource "aws_security_group" "database" {
  name        = local.identifier
  description = "PostgreSQL: reachable from the notification services only"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = local.identifier })
}

resource "aws_db_parameter_group" "this" {
  name   = "${local.identifier}-${local.major_version}"
  family = "postgres${local.major_version}"
  tags   = var.tags

  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }

  # Slow statements and schema changes go to the postgresql log (exported to CloudWatch).
  parameter {
    name  = "log_min_duration_statement"
    value = "1000"
  }

  parameter {
    name  = "log_statement"
    value = "ddl"
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "random_password" "master" {
  length = 40
  # Letters and digits only: the password goes into a URL unescaped.
  special = false
}

# RDS creates these on first write without retention or encryption; create them first instead.
resource "aws_cloudwatch_log_group" "database" {
  for_each = toset(["postgresql", "upgrade"])

  name              = "/aws/rds/instance/${local.identifier}/${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.logs_kms_key_arn
  tags              = var.tags
}

data "aws_iam_policy_document" "monitoring_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["monitoring.rds.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "monitoring" {
  name               = "${local.identifier}-enhanced-monitoring"
  assume_role_policy = data.aws_iam_policy_document.monitoring_assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy_attachment" "monitoring" {
  role       = aws_iam_role.monitoring.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}

resource "aws_db_instance" "this" {
  identifier          = local.identifier
  replicate_source_db = var.replicate_source_db
  engine              = local.replica ? null : "postgres"
  engine_version      = local.replica ? null : var.engine_version
  instance_class      = var.instance_class
  db_name             = local.replica ? null : local.database_name
  username            = local.replica ? null : local.username
  password            = local.replica ? null : random_password.master.result
  port                = 5432

  allocated_storage     = var.allocated_storage
  max_allocated_storage = var.max_allocated_storage
  storage_type          = "gp3"
  storage_encrypted     = true
  kms_key_id            = aws_kms_key.database.arn

  multi_az               = var.multi_az
  db_subnet_group_name   = aws_db_subnet_group.this.name
  vpc_security_group_ids = [aws_security_group.database.id]
  publicly_accessible    = false
  parameter_group_name   = aws_db_parameter_group.this.name

  backup_retention_period   = var.backup_retention_days
  backup_window             = "03:00-04:00"
  maintenance_window        = "sun:04:30-sun:05:30"
  copy_tags_to_snapshot     = true
  deletion_protection       = var.deletion_protection
  skip_final_snapshot       = false
  final_snapshot_identifier = "${local.identifier}-final"

  auto_minor_version_upgrade          = true
  allow_major_version_upgrade         = false
  iam_database_authentication_enabled = true

  enabled_cloudwatch_logs_exports       = ["postgresql", "upgrade"]
  monitoring_interval                   = 60
  monitoring_role_arn                   = aws_iam_role.monitoring.arn
  performance_insights_enabled          = true
  performance_insights_kms_key_id       = aws_kms_key.database.arn
  performance_insights_retention_period = 7 # the free tier

  tags = var.tags

  depends_on = [aws_cloudwatch_log_group.database]

  lifecycle {
    precondition {
      condition     = var.replicate_source_db == null || try(split(":", var.replicate_source_db)[3], "") != data.aws_region.current.name
      error_message = "A standby replicates a database in another region: the topic and queue names are fixed per region, so one region holds one deployment."
    }
  }
}

# A copy of the automated backups in a second region: a point-in-time restore there survives the
# loss of this region. Encrypted with a key of that region (a key cannot leave its region).
resource "aws_kms_key" "backup_replica" {
  count    = var.backup_replication_region == null ? 0 : 1
  provider = aws.backup_replica

  description             = "Encrypts the copies of the ${var.name} database's automated backups"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = local.key_policy
  tags                    = var.tags
}

resource "aws_kms_alias" "backup_replica" {
  count    = var.backup_replication_region == null ? 0 : 1
  provider = aws.backup_replica

  name          = "alias/${var.name}-database-backups"
  target_key_id = aws_kms_key.backup_replica[0].key_id
}

resource "aws_db_instance_automated_backups_replication" "this" {
  count    = var.backup_replication_region == null ? 0 : 1
  provider = aws.backup_replica

  source_db_instance_arn = aws_db_instance.this.arn
  kms_key_id             = aws_kms_key.backup_replica[0].arn
  retention_period       = var.backup_retention_days

  lifecycle {
    precondition {
      condition     = var.backup_replication_region != data.aws_region.current.name
      error_message = "database_backup_replication_region must be another region than the database's own."
    }
  }
}

resource "aws_secretsmanager_secret" "database" {
  #checkov:skip=CKV2_AWS_57:The services read DATABASE_URL once at start-up; rotating the master password needs a rotation Lambda plus a rolling restart of every service, which is an operator procedure (terraform/README.md), not an automatic one.
  name        = "${var.name}/database"
  description = "Credentials of the ${var.name} database; key `url` is the services' DATABASE_URL"
  kms_key_id  = aws_kms_key.database.arn
  tags        = var.tags
}

resource "aws_secretsmanager_secret_version" "database" {
  secret_id = aws_secretsmanager_secret.database.id
  secret_string = jsonencode({
    engine   = "postgres"
    host     = aws_db_instance.this.address
    port     = aws_db_instance.this.port
    username = local.username
    password = random_password.master.result
    dbname   = local.database_name
    url      = "postgresql://${local.username}:${random_password.master.result}@${aws_db_instance.this.address}:${aws_db_instance.this.port}/${local.database_name}"
  })
}
