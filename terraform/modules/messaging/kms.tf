# The customer managed key that encrypts the topic and every queue.
#
# SNS encrypts what it delivers to an encrypted queue with the queue's key, so the key policy must
# let the SNS service use it; the services' task roles get kms:GenerateDataKey/Decrypt through IAM
# (the root statement delegates to IAM), scoped to this key.

data "aws_caller_identity" "current" {
  count = var.create_kms_key ? 1 : 0
}

data "aws_partition" "current" {}

data "aws_region" "current" {}

locals {
  account_id = var.create_kms_key ? data.aws_caller_identity.current[0].account_id : ""
  # Built rather than read from aws_sns_topic: the topic depends on this key.
  topic_arn_for_key_policy           = "arn:${data.aws_partition.current.partition}:sns:${data.aws_region.current.name}:${local.account_id}:${local.topic_name}"
  email_events_topics_for_key_policy = "arn:${data.aws_partition.current.partition}:sns:*:${local.account_id}:${local.email_events_topic_name}"
}

resource "aws_kms_key" "messaging" {
  count = var.create_kms_key ? 1 : 0

  description             = "Encrypts the ${local.topic_name} SNS topic and its SQS queues"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        # AWS's default key policy: IAM policies in this account decide who may use the key.
        Sid       = "EnableIamPolicies"
        Effect    = "Allow"
        Principal = { AWS = "arn:${data.aws_partition.current.partition}:iam::${local.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*" # in a key policy, "*" is this key
      },
      {
        Sid       = "AllowSnsToEncryptForEncryptedQueues"
        Effect    = "Allow"
        Principal = { Service = "sns.amazonaws.com" }
        Action    = ["kms:GenerateDataKey*", "kms:Decrypt"]
        Resource  = "*"
        # The notifications topic, and the email_events topics (any region's: a second SES
        # region's delivers to the email_events queue here).
        Condition = { ArnLike = { "aws:SourceArn" = [local.topic_arn_for_key_policy, local.email_events_topics_for_key_policy] } }
      },
    ]
  })
  tags = var.tags
}

resource "aws_kms_alias" "messaging" {
  count = var.create_kms_key ? 1 : 0

  name          = "alias/${var.name}-messaging"
  target_key_id = aws_kms_key.messaging[0].key_id
}
