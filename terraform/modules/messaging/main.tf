# The SNS/SQS topology of shared/topology.py, in Terraform.
#
# One topic fans every accepted notification out to two queues per channel, one per lane: the
# one-offs' and the bulk one (batch items), so a bulk backlog never sits in front of a one-off
# (shared/topology.py says why). Each subscription delivers raw messages and filters on the
# String.Array message attribute `channels` and the String `lane`; each queue moves a message to
# its own dead-letter queue after `max_receive_count` failed receives.
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

  # Per channel and lane (the key: the channel, or the channel and "_bulk").
  queues = {
    sms = {
      channel           = "sms"
      lane              = "standard"
      queue             = "sms_notifications"
      dead_letter_queue = "sms_notifications_dlq"
    }
    sms_bulk = {
      channel           = "sms"
      lane              = "bulk"
      queue             = "sms_bulk_notifications"
      dead_letter_queue = "sms_bulk_notifications_dlq"
    }
    email = {
      channel           = "email"
      lane              = "standard"
      queue             = "email_notifications"
      dead_letter_queue = "email_notifications_dlq"
    }
    email_bulk = {
      channel           = "email"
      lane              = "bulk"
      queue             = "email_bulk_notifications"
      dead_letter_queue = "email_bulk_notifications_dlq"
    }
    slack = {
      channel           = "slack"
      lane              = "standard"
      queue             = "slack_notifications"
      dead_letter_queue = "slack_notifications_dlq"
    }
    slack_bulk = {
      channel           = "slack"
      lane              = "bulk"
      queue             = "slack_bulk_notifications"
      dead_letter_queue = "slack_bulk_notifications_dlq"
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
  for_each = local.queues

  name                              = each.value.dead_letter_queue
  message_retention_seconds         = local.dlq_retention_seconds
  kms_master_key_id                 = local.kms_key_arn
  kms_data_key_reuse_period_seconds = var.create_kms_key ? 300 : null
  sqs_managed_sse_enabled           = var.create_kms_key ? null : true
  tags                              = var.tags
}

resource "aws_sqs_queue" "channel" {
  for_each = local.queues

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

# A dead-letter queue takes messages only from its own queue.
resource "aws_sqs_queue_redrive_allow_policy" "dead_letter" {
  for_each = local.queues

  queue_url = aws_sqs_queue.dead_letter[each.key].id
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.channel[each.key].arn]
  })
}

data "aws_iam_policy_document" "allow_topic" {
  for_each = local.queues

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
  for_each = local.queues

  queue_url = aws_sqs_queue.channel[each.key].id
  policy    = data.aws_iam_policy_document.allow_topic[each.key].json
}

resource "aws_sns_topic_subscription" "channel" {
  for_each = local.queues

  topic_arn            = aws_sns_topic.notifications.arn
  protocol             = "sqs"
  endpoint             = aws_sqs_queue.channel[each.key].arn
  raw_message_delivery = true
  filter_policy_scope  = "MessageAttributes"
  # `channels` (String.Array) and `lane` (String) are message attributes the gateway sets on every notification.
  filter_policy = jsonencode({ channels = [each.value.channel], lane = [each.value.lane] })

  # SNS checks that it may send to the queue when the subscription is created.
  depends_on = [aws_sqs_queue_policy.channel]
}
