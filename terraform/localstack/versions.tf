terraform {
  required_version = ">= 1.6"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.80, < 7.0"
    }
  }
}

# LocalStack on http://localhost:4566 (docker compose up localstack). It accepts any credentials;
# these are its documented dummy values, not secrets.
provider "aws" {
  region                      = var.region
  access_key                  = "test"
  secret_key                  = "test"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_requesting_account_id  = true

  endpoints {
    sns = var.localstack_endpoint
    sqs = var.localstack_endpoint
    sts = var.localstack_endpoint
  }
}
