output "topic_arn" {
  description = "ARN of the notifications topic on LocalStack."
  value       = module.messaging.topic_arn
}

output "queues" {
  description = "Per channel: the queue's and the dead-letter queue's name, ARN and URL on LocalStack."
  value       = module.messaging.queues
}
