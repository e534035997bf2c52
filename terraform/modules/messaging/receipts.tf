# Email receipts (shared/topology.py): SES publishes the events of every email sent with the
# configuration set (compute module, ses.tf) to the topic email_events; its queue email_events
# (not raw: the SNS envelope's Message is the SES event) is consumed by the email sender, and
# moves a message to email_events_dlq after 10 receives (more than a notification queue's: an
# event for a message id not yet recorded is retried with backoff for five minutes).

locals {
  email_events_topic_name        = "email_events"
  email_events_queue             = "email_events"
  email_events_dead_letter_queue = "email_events_dlq"
  email_events_max_receive_count = 10
}

resource "aws_sns_topic" "email_events" {
  name              = local.email_events_topic_name
  kms_master_key_id = var.create_kms_key ? aws_kms_key.messaging[0].arn : "alias/aws/sns"
  tags              = var.tags
}

# SES of this account publishes to it.
data "aws_iam_policy_document" "email_events_topic" {
  statement {
    sid       = "AllowSesOfThisAccount"
    effect    = "Allow"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.email_events.arn]

    principals {
      type        = "Service"
      identifiers = ["ses.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.receipts.account_id]
    }
  }
}

data "aws_caller_identity" "receipts" {}

resource "aws_sns_topic_policy" "email_events" {
  arn    = aws_sns_topic.email_events.arn
  policy = data.aws_iam_policy_document.email_events_topic.json
}

resource "aws_sqs_queue" "email_events_dead_letter" {
  name                              = local.email_events_dead_letter_queue
  message_retention_seconds         = local.dlq_retention_seconds
  kms_master_key_id                 = local.kms_key_arn
  kms_data_key_reuse_period_seconds = var.create_kms_key ? 300 : null
  sqs_managed_sse_enabled           = var.create_kms_key ? null : true
  tags                              = var.tags
}

resource "aws_sqs_queue" "email_events" {
  name                              = local.email_events_queue
  visibility_timeout_seconds        = local.visibility_timeout_seconds
  message_retention_seconds         = local.message_retention_seconds
  receive_wait_time_seconds         = local.receive_wait_time_seconds
  kms_master_key_id                 = local.kms_key_arn
  kms_data_key_reuse_period_seconds = var.create_kms_key ? 300 : null
  sqs_managed_sse_enabled           = var.create_kms_key ? null : true
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.email_events_dead_letter.arn
    maxReceiveCount     = local.email_events_max_receive_count
  })
  tags = var.tags
}

resource "aws_sqs_queue_redrive_allow_policy" "email_events_dead_letter" {
  queue_url = aws_sqs_queue.email_events_dead_letter.id
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.email_events.arn]
  })
}

data "aws_iam_policy_document" "allow_email_events_topic" {
  statement {
    sid       = "AllowEmailEventsTopic"
    effect    = "Allow"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.email_events.arn]

    principals {
      type        = "Service"
      identifiers = ["sns.amazonaws.com"]
    }

    # The email_events topic of any region of this account: a second SES region's topic
    # delivers here too (compute module, ses.tf; shared/topology.py's in_any_region).
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${data.aws_partition.current.partition}:sns:*:${data.aws_caller_identity.receipts.account_id}:${local.email_events_topic_name}"]
    }
  }
}

resource "aws_sqs_queue_policy" "email_events" {
  queue_url = aws_sqs_queue.email_events.id
  policy    = data.aws_iam_policy_document.allow_email_events_topic.json
}

resource "aws_sns_topic_subscription" "email_events" {
  topic_arn            = aws_sns_topic.email_events.arn
  protocol             = "sqs"
  endpoint             = aws_sqs_queue.email_events.arn
  raw_message_delivery = false

  depends_on = [aws_sqs_queue_policy.email_events]
}
