# The messaging topology on LocalStack: the same module as the AWS deployment, without the customer
# managed KMS key (LocalStack runs here with SERVICES=sns,sqs,ses,logs,sts). It creates what
# `python -m shared.topology create` creates, so `python -m shared.topology verify` passes after
# `terraform apply` here.

module "messaging" {
  source = "../modules/messaging"

  create_kms_key = false
}
