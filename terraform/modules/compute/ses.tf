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
