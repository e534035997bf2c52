# The SES identity the email sender sends from. An email-address identity is created (and SES
# mails its owner a confirmation link); a domain identity needs DNS records, so when ses_identity
# is a domain it must already be verified and is only referenced here.

locals {
  ses_identity     = coalesce(var.ses_identity, var.email_from_address)
  ses_identity_arn = "arn:${local.partition}:ses:${local.region}:${local.account_id}:identity/${local.ses_identity}"
}

resource "aws_ses_email_identity" "sender" {
  count = strcontains(local.ses_identity, "@") ? 1 : 0

  email = local.ses_identity
}

# Receipts: every SendEmail names this configuration set (EMAIL_CONFIGURATION_SET); its event
# destination publishes the events that are receipts to the email_events topic.
resource "aws_ses_configuration_set" "receipts" {
  name = "notifications"

  # Mail leaves SES only over TLS.
  delivery_options {
    tls_policy = "Require"
  }
}

resource "aws_ses_event_destination" "email_events" {
  name                   = "email_events"
  configuration_set_name = aws_ses_configuration_set.receipts.name
  enabled                = true
  matching_types         = ["delivery", "bounce", "complaint", "reject", "renderingFailure"]

  sns_destination {
    topic_arn = var.email_events_topic_arn
  }
}

# The second SES region (ses_second_region; none by default): the email sender's provider
# "ses:<region>" (EMAIL_SENDER_PROVIDERS) sends there when SES here cannot. It needs the same
# identity and configuration set there, and, because an event destination publishes only to a
# topic of its own region, an email_events topic there delivering to this region's email_events
# queue (whose policy, in the messaging module, admits the email_events topic of any region).
locals {
  ses_second_region = var.ses_second_region == null ? [] : [var.ses_second_region]
  ses_second_region_send_resources = flatten([
    for region in local.ses_second_region : [
      "arn:${local.partition}:ses:${region}:${local.account_id}:identity/${local.ses_identity}",
      "arn:${local.partition}:ses:${region}:${local.account_id}:configuration-set/${aws_ses_configuration_set.receipts.name}",
    ]
  ])
}

resource "aws_ses_email_identity" "sender_second_region" {
  count    = length(local.ses_second_region) == 1 && strcontains(local.ses_identity, "@") ? 1 : 0
  provider = aws.ses_second_region

  email = local.ses_identity
}

resource "aws_ses_configuration_set" "receipts_second_region" {
  count    = length(local.ses_second_region)
  provider = aws.ses_second_region

  name = aws_ses_configuration_set.receipts.name

  delivery_options {
    tls_policy = "Require"
  }
}

# SES publishes to an encrypted topic only with a customer managed key whose policy lets it.
resource "aws_kms_key" "email_events_second_region" {
  count    = length(local.ses_second_region)
  provider = aws.ses_second_region

  description             = "Encrypts the email_events topic of the second SES region"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "EnableIamPolicies"
        Effect    = "Allow"
        Principal = { AWS = "arn:${local.partition}:iam::${local.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*" # in a key policy, "*" is this key
      },
      {
        Sid       = "AllowSesToPublishToTheEncryptedTopic"
        Effect    = "Allow"
        Principal = { Service = "ses.amazonaws.com" }
        Action    = ["kms:GenerateDataKey*", "kms:Decrypt"]
        Resource  = "*"
        Condition = { StringEquals = { "aws:SourceAccount" = local.account_id } }
      },
    ]
  })
  tags = var.tags
}

resource "aws_sns_topic" "email_events_second_region" {
  count    = length(local.ses_second_region)
  provider = aws.ses_second_region

  name              = "email_events"
  kms_master_key_id = aws_kms_key.email_events_second_region[0].arn
  tags              = var.tags
}

data "aws_iam_policy_document" "email_events_second_region_topic" {
  count = length(local.ses_second_region)

  statement {
    sid       = "AllowSesOfThisAccount"
    effect    = "Allow"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.email_events_second_region[0].arn]

    principals {
      type        = "Service"
      identifiers = ["ses.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_sns_topic_policy" "email_events_second_region" {
  count    = length(local.ses_second_region)
  provider = aws.ses_second_region

  arn    = aws_sns_topic.email_events_second_region[0].arn
  policy = data.aws_iam_policy_document.email_events_second_region_topic[0].json
}

# Cross-region: the topic there, the queue here (not raw, as the primary's subscription).
resource "aws_sns_topic_subscription" "email_events_second_region" {
  count    = length(local.ses_second_region)
  provider = aws.ses_second_region

  topic_arn            = aws_sns_topic.email_events_second_region[0].arn
  protocol             = "sqs"
  endpoint             = var.email_events_queue.arn
  raw_message_delivery = false
}

resource "aws_ses_event_destination" "email_events_second_region" {
  count    = length(local.ses_second_region)
  provider = aws.ses_second_region

  name                   = aws_ses_event_destination.email_events.name
  configuration_set_name = aws_ses_configuration_set.receipts_second_region[0].name
  enabled                = true
  matching_types         = aws_ses_event_destination.email_events.matching_types

  sns_destination {
    topic_arn = aws_sns_topic.email_events_second_region[0].arn
  }

  depends_on = [aws_sns_topic_policy.email_events_second_region]
}

# SMS receipts: SNS logs every SMS's delivery status to CloudWatch Logs (groups
# sns/<region>/<account>/DirectPublishToPhoneNumber[/Failure], which the SMS sender reads) with
# this role.
data "aws_iam_policy_document" "sns_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["sns.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "sms_delivery_status" {
  name               = "${var.name}-sns-sms-delivery-status"
  assume_role_policy = data.aws_iam_policy_document.sns_assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "sms_delivery_status" {
  statement {
    sid       = "WriteSmsDeliveryStatusLogs"
    actions   = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:PutRetentionPolicy"]
    resources = [for group in local.sms_delivery_log_groups : "${group}:*"]
  }
}

resource "aws_iam_role_policy" "sms_delivery_status" {
  name   = "write-sms-delivery-status-logs"
  role   = aws_iam_role.sms_delivery_status.id
  policy = data.aws_iam_policy_document.sms_delivery_status.json
}

locals {
  sms_delivery_log_groups = [
    "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:sns/${local.region}/${local.account_id}/DirectPublishToPhoneNumber",
    "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:sns/${local.region}/${local.account_id}/DirectPublishToPhoneNumber/Failure",
  ]
}

resource "aws_sns_sms_preferences" "delivery_status" {
  default_sms_type                      = "Transactional"
  delivery_status_iam_role_arn          = aws_iam_role.sms_delivery_status.arn
  delivery_status_success_sampling_rate = "100"
}
