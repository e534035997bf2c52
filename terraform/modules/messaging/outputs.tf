output "topic_arn" {
  description = "ARN of the notifications topic."
  value       = aws_sns_topic.notifications.arn
}

output "kms_key_arn" {
  description = "ARN of the key that encrypts the topic and queues (null without a customer managed key)."
  value       = local.kms_key_arn
}

output "queues" {
  description = "Per channel: the one-off queue's and its dead-letter queue's name, ARN and URL, and the bulk lane's (bulk_*)."
  value = {
    for key, queue in local.queues : queue.channel => {
      name                       = aws_sqs_queue.channel[key].name
      arn                        = aws_sqs_queue.channel[key].arn
      url                        = aws_sqs_queue.channel[key].id
      dead_letter_queue          = aws_sqs_queue.dead_letter[key].name
      dead_letter_queue_arn      = aws_sqs_queue.dead_letter[key].arn
      dead_letter_queue_url      = aws_sqs_queue.dead_letter[key].id
      bulk_name                  = aws_sqs_queue.channel["${key}_bulk"].name
      bulk_arn                   = aws_sqs_queue.channel["${key}_bulk"].arn
      bulk_url                   = aws_sqs_queue.channel["${key}_bulk"].id
      bulk_dead_letter_queue     = aws_sqs_queue.dead_letter["${key}_bulk"].name
      bulk_dead_letter_queue_arn = aws_sqs_queue.dead_letter["${key}_bulk"].arn
      bulk_dead_letter_queue_url = aws_sqs_queue.dead_letter["${key}_bulk"].id
    } if queue.lane == "standard"
  }
}

output "email_events_topic_arn" {
  description = "ARN of the topic SES publishes email events (receipts) to."
  value       = aws_sns_topic.email_events.arn
}

output "email_events_queue" {
  description = "The email events queue and its dead-letter queue: name, ARN and URL."
  value = {
    name                  = aws_sqs_queue.email_events.name
    arn                   = aws_sqs_queue.email_events.arn
    url                   = aws_sqs_queue.email_events.id
    dead_letter_queue     = aws_sqs_queue.email_events_dead_letter.name
    dead_letter_queue_arn = aws_sqs_queue.email_events_dead_letter.arn
    dead_letter_queue_url = aws_sqs_queue.email_events_dead_letter.id
  }
}
