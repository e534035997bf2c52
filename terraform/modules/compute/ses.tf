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
