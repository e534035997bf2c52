# The SNS/SQS topology of shared/topology.py, in Terraform.
#
# One topic fans every accepted notification out to one queue per channel. Each subscription
# delivers raw messages and filters on the String.Array message attribute `channels`; each queue
# moves a message to its dead-letter queue after `max_receive_count` failed receives.
#
# The names and numbers below are the ones in shared/topology.py: the Python services find the
# queues by name, and tests/infra/test_terraform_topology.py fails when the two disagree.

locals {
  topic_name                 = "notifications"
  max_receive_count          = 5
  visibility_timeout_seconds = 60
  message_retention_seconds  = 345600  # 4 days
  dlq_retention_seconds      = 1209600 # 14 days, the SQS maximum: time to inspect and redrive
  receive_wait_time_seconds  = 20

  channels = {
    sms = {
      queue             = "sms_notifications"
      dead_letter_queue = "sms_notifications_dlq"
    }
    email = {
      queue             = "email_notifications"
      dead_letter_queue = "email_notifications_dlq"
    }
    slack = {
      queue             = "slack_notifications"
      dead_letter_queue = "slack_notifications_dlq"
    }
  }

  kms_key_arn = var.create_kms_key ? aws_kms_key.messaging[0].arn : null
}

resource "aws_sns_topic" "notifications" {
  name = local.topic_name
  # Without a customer managed key (LocalStack), the AWS managed SNS key still encrypts at rest.
  kms_master_key_id = var.create_kms_key ? aws_kms_key.messaging[0].arn : "alias/aws/sns"
  tags              = var.tags
}

resource "aws_sqs_queue" "dead_letter" {
  for_each = local.channels

  name                              = each.value.dead_letter_queue
  message_retention_seconds         = local.dlq_retention_seconds
  kms_master_key_id                 = local.kms_key_arn
  kms_data_key_reuse_period_seconds = var.create_kms_key ? 300 : null
  sqs_managed_sse_enabled           = var.create_kms_key ? null : true
  tags                              = var.tags
}

resource "aws_sqs_queue" "channel" {
  for_each = local.channels

  name                              = each.value.queue
  visibility_timeout_seconds        = local.visibility_timeout_seconds
  message_retention_seconds         = local.message_retention_seconds
  receive_wait_time_seconds         = local.receive_wait_time_seconds
  kms_master_key_id                 = local.kms_key_arn
  kms_data_key_reuse_period_seconds = var.create_kms_key ? 300 : null
  sqs_managed_sse_enabled           = var.create_kms_key ? null : true
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dead_letter[each.key].arn
    maxReceiveCount     = local.max_receive_count
  })
  tags = var.tags
}

# A dead-letter queue takes messages only from its own channel's queue.
resource "aws_sqs_queue_redrive_allow_policy" "dead_letter" {
  for_each = local.channels

  queue_url = aws_sqs_queue.dead_letter[each.key].id
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.channel[each.key].arn]
  })
}

data "aws_iam_policy_document" "allow_topic" {
  for_each = local.channels

  statement {
    sid       = "AllowNotificationsTopic"
    effect    = "Allow"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.channel[each.key].arn]

    principals {
      type        = "Service"
      identifiers = ["sns.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_sns_topic.notifications.arn]
    }
  }
}

resource "aws_sqs_queue_policy" "channel" {
  for_each = local.channels

  queue_url = aws_sqs_queue.channel[each.key].id
  policy    = data.aws_iam_policy_document.allow_topic[each.key].json
}

resource "aws_sns_topic_subscription" "channel" {
  for_each = local.channels

  topic_arn            = aws_sns_topic.notifications.arn
  protocol             = "sqs"
  endpoint             = aws_sqs_queue.channel[each.key].arn
  raw_message_delivery = true
  filter_policy_scope  = "MessageAttributes"
  # `channels` is the String.Array message attribute the gateway sets on every notification.
  filter_policy = jsonencode({ channels = [each.key] })

  # SNS checks that it may send to the queue when the subscription is created.
  depends_on = [aws_sqs_queue_policy.channel]
}
