# IAM: one task role per service with only what its code calls, and one execution role that the
# ECS agent uses to pull images, write logs and fill in secrets when a task starts (the
# application code never holds the execution role's credentials).

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }

    # Only ECS tasks of this account (confused-deputy protection).
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

# --- Execution role -------------------------------------------------------------------------

resource "aws_iam_role" "execution" {
  name               = "${var.name}-ecs-execution"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid = "EcrLogin"
    # GetAuthorizationToken has no resource to scope it to; the pulls below are scoped.
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid       = "PullServiceImages"
    actions   = ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"]
    resources = [for repository in aws_ecr_repository.service : repository.arn]
  }

  statement {
    sid       = "WriteServiceLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = [for group in aws_cloudwatch_log_group.service : "${group.arn}:*"]
  }

  statement {
    sid     = "InjectSecrets"
    actions = ["secretsmanager:GetSecretValue"]
    resources = concat(
      [
        var.database_secret_arn,
        aws_secretsmanager_secret.gateway_tls.arn,
        aws_secretsmanager_secret.slack_bot_token.arn,
      ],
      aws_secretsmanager_secret.twilio[*].arn,
    )
  }

  statement {
    sid       = "DecryptSecrets"
    actions   = ["kms:Decrypt"]
    resources = [var.database_kms_key_arn, aws_kms_key.secrets.arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["secretsmanager.${local.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "pull-log-inject-secrets"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

# --- Gateway --------------------------------------------------------------------------------

resource "aws_iam_role" "gateway" {
  name               = "${var.name}-gateway"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "gateway" {
  # Publish and PublishBatch (both authorised as sns:Publish); GetTopicAttributes is the
  # readiness check behind /readyz, which the NLB's health check asks.
  statement {
    sid       = "PublishNotifications"
    actions   = ["sns:Publish", "sns:GetTopicAttributes"]
    resources = [var.topic_arn]
  }

  # Publishing to a KMS-encrypted topic needs a data key from the topic's key.
  statement {
    sid       = "UseMessagingKey"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [var.messaging_kms_key_arn]
  }
}

resource "aws_iam_role_policy" "gateway" {
  name   = "publish-notifications"
  role   = aws_iam_role.gateway.id
  policy = data.aws_iam_policy_document.gateway.json
}

# --- Senders --------------------------------------------------------------------------------

resource "aws_iam_role" "sender" {
  for_each = local.senders

  name               = "${var.name}-sender-${each.key}"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
  tags               = var.tags
}

# What every sender does with its own queues, both lanes (shared/sqs_queue.py, shared/sender_service.py).
data "aws_iam_policy_document" "sender_queue" {
  for_each = local.senders

  statement {
    sid = "ConsumeOwnQueue"
    actions = [
      "sqs:GetQueueUrl",
      "sqs:GetQueueAttributes",
      "sqs:ReceiveMessage",
      "sqs:ChangeMessageVisibility",
      "sqs:DeleteMessage",
    ]
    resources = [var.queues[each.key].arn, var.queues[each.key].bulk_arn]
  }

  # A message the sender cannot even parse goes straight to the DLQ, with the reason attached
  # (SendMessage). The queue-depth gauges read the DLQ's counts and peek at its oldest messages
  # with VisibilityTimeout=0 (GetQueueAttributes, ReceiveMessage; shared/queue_metrics.py).
  statement {
    sid       = "DeadLetterOwnQueue"
    actions   = ["sqs:GetQueueUrl", "sqs:GetQueueAttributes", "sqs:ReceiveMessage", "sqs:SendMessage"]
    resources = [var.queues[each.key].dead_letter_queue_arn, var.queues[each.key].bulk_dead_letter_queue_arn]
  }

  # Receiving from and sending to KMS-encrypted queues.
  statement {
    sid       = "UseMessagingKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.messaging_kms_key_arn]
  }
}

data "aws_iam_policy_document" "sender_sms" {
  source_policy_documents = [data.aws_iam_policy_document.sender_queue["sms"].json]

  #checkov:skip=CKV_AWS_356:SNS Publish to a phone number (PhoneNumber=...) has no resource ARN; AWS requires Resource "*" for SMS. The role has no other SNS action.
  #checkov:skip=CKV_AWS_111:Same statement: sns:Publish for SMS cannot be scoped to a resource.
  statement {
    sid = "SendSms"
    # Resource "*" is required: a Publish to PhoneNumber has no topic or other ARN to scope it to.
    actions   = ["sns:Publish"]
    resources = ["*"]
  }

  # Receipts: SNS's SMS delivery status logs (sender_sms/delivery_logs.py).
  statement {
    sid       = "ReadSmsDeliveryStatusLogs"
    actions   = ["logs:FilterLogEvents"]
    resources = [for group in local.sms_delivery_log_groups : "${group}:*"]
  }
}

data "aws_iam_policy_document" "sender_email" {
  source_policy_documents = [data.aws_iam_policy_document.sender_queue["email"].json]

  statement {
    sid     = "SendEmailFromConfiguredIdentity"
    actions = ["ses:SendEmail", "ses:SendRawEmail"]
    # SES authorises a send naming a configuration set against the set too; the same two in the
    # second SES region, if any.
    resources = concat([local.ses_identity_arn, aws_ses_configuration_set.receipts.arn], local.ses_second_region_send_resources)

    condition {
      test     = "StringEquals"
      variable = "ses:FromAddress"
      values   = [var.email_from_address]
    }
  }

  # Receipts: the SES events queue, consumed as the sender's own (shared/consumer.py).
  statement {
    sid = "ConsumeEmailEvents"
    actions = [
      "sqs:GetQueueUrl",
      "sqs:GetQueueAttributes",
      "sqs:ReceiveMessage",
      "sqs:ChangeMessageVisibility",
      "sqs:DeleteMessage",
    ]
    resources = [var.email_events_queue.arn]
  }

  statement {
    sid       = "DeadLetterEmailEvents"
    actions   = ["sqs:GetQueueUrl", "sqs:GetQueueAttributes", "sqs:ReceiveMessage", "sqs:SendMessage"]
    resources = [var.email_events_queue.dead_letter_queue_arn]
  }
}

data "aws_iam_policy_document" "sender_slack" {
  source_policy_documents = [data.aws_iam_policy_document.sender_queue["slack"].json]

  # ECS injects the token as SLACK_BOT_TOKEN at start (execution role); this lets the sender read
  # the secret itself, so a rotated token can be picked up without a new task.
  statement {
    sid       = "ReadSlackToken"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.slack_bot_token.arn]
  }

  statement {
    sid       = "DecryptSlackToken"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.secrets.arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["secretsmanager.${local.region}.amazonaws.com"]
    }
  }
}

locals {
  sender_policies = {
    sms   = data.aws_iam_policy_document.sender_sms.json
    email = data.aws_iam_policy_document.sender_email.json
    slack = data.aws_iam_policy_document.sender_slack.json
  }
}

resource "aws_iam_role_policy" "sender" {
  for_each = local.senders

  name   = "consume-and-send-${each.key}"
  role   = aws_iam_role.sender[each.key].id
  policy = local.sender_policies[each.key]
}
