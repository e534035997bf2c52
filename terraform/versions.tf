terraform {
  required_version = ">= 1.6"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.80, < 7.0"
    }
    random = {
      source  = "hashicorp/random"
      version = ">= 3.6, < 4.0"
    }
  }

  # The state holds the database password: keep it in an encrypted, access-controlled bucket.
  # `terraform init -backend-config=...` supplies bucket, key and region (terraform/README.md).
  backend "s3" {}
}

provider "aws" {
  region = var.aws_region

  default_tags {
    tags = merge({ Application = var.name, ManagedBy = "terraform" }, var.tags)
  }
}

# The second SES region the email sender fails over to (ses_second_region). Unused, and then the
# deployment's own region, when there is none.
provider "aws" {
  alias  = "ses_second_region"
  region = coalesce(var.ses_second_region, var.aws_region)

  default_tags {
    tags = merge({ Application = var.name, ManagedBy = "terraform" }, var.tags)
  }
}

# The second region the database's automated backups are copied to (database_backup_replication_region).
# Unused, and then the deployment's own region, when no copy is made.
provider "aws" {
  alias  = "backup_replica"
  region = coalesce(var.database_backup_replication_region, var.aws_region)

  default_tags {
    tags = merge({ Application = var.name, ManagedBy = "terraform" }, var.tags)
  }
}
