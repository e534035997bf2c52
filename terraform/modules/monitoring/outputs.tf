output "alarm_topic_arn" {
  description = "ARN of the topic the alarms notify."
  value       = aws_sns_topic.alarms.arn
}
