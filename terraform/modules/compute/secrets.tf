# Secrets the services need that Terraform does not make: the gateway's TLS material and the Slack
# bot token. Terraform creates the (empty) secrets; an operator puts the values in, so no private
# key or token ever passes through Terraform's state (terraform/README.md, "Secrets").

resource "aws_kms_key" "secrets" {
  description             = "Encrypts the ${var.name} services' secrets (gateway TLS material, Slack bot token)"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        # AWS's default key policy: IAM policies in this account decide who may use the key.
        Sid       = "EnableIamPolicies"
        Effect    = "Allow"
        Principal = { AWS = "arn:${local.partition}:iam::${local.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*" # in a key policy, "*" is this key
      },
    ]
  })
  tags = var.tags
}

resource "aws_kms_alias" "secrets" {
  name          = "alias/${var.name}-secrets"
  target_key_id = aws_kms_key.secrets.key_id
}

# JSON with the PEM texts under `ca`, `cert`, `key` and `crl` (python -m mtls init writes them).
resource "aws_secretsmanager_secret" "gateway_tls" {
  #checkov:skip=CKV2_AWS_57:Certificates are renewed by issuing new ones from our CA (python -m mtls), then updating this secret and redeploying the gateway; no Lambda can do that for us.
  name        = "${var.name}/gateway-tls"
  description = "The gateway's mTLS material: JSON with PEM texts under ca, cert, key and crl"
  kms_key_id  = aws_kms_key.secrets.arn
  tags        = var.tags
}

resource "aws_secretsmanager_secret" "slack_bot_token" {
  #checkov:skip=CKV2_AWS_57:Slack bot tokens are rotated in Slack's app settings, not by an AWS rotation Lambda; the operator then updates this secret.
  name        = "${var.name}/slack-bot-token"
  description = "The Slack app's bot token (xoxb-...), plain text"
  kms_key_id  = aws_kms_key.secrets.arn
  tags        = var.tags
}

# JSON with Twilio's `account_sid` and `auth_token`; only when sms_providers names twilio (an ECS
# task cannot start with a secret that has no value yet).
resource "aws_secretsmanager_secret" "twilio" {
  #checkov:skip=CKV2_AWS_57:Twilio auth tokens are rotated in Twilio's console (a secondary token, then promoted), not by an AWS rotation Lambda; the operator then updates this secret.
  count       = local.twilio ? 1 : 0
  name        = "${var.name}/twilio"
  description = "The Twilio account the SMS sender uses as a second provider: JSON with account_sid and auth_token"
  kms_key_id  = aws_kms_key.secrets.arn
  tags        = var.tags

  lifecycle {
    precondition {
      condition     = var.twilio_from != null
      error_message = "sms_providers names twilio: set twilio_from (the Twilio number or Messaging Service SID the SMS are sent from)."
    }
  }
}
