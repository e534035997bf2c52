# Each sender scales on its backlog per task: messages waiting in its queue divided by its running
# tasks, held near `target_backlog_per_task`: what one task sends in the delay you accept, so that a
# message waits about that long. CPU would be the wrong signal: a sender mostly waits on its
# provider's API. The defaults (terraform/variables.tf) are derived from measured figures, with the
# derivation written there: one task's rate is the least of efficiency x concurrency / provider
# latency, its CPU share / CPU per message, and the channel's provider limit, times 10 s
# (notifyctl/capacity_model.py; `notifyctl capacity --plan RATE` prints it for other inputs).

resource "aws_appautoscaling_target" "sender" {
  for_each = local.senders

  service_namespace  = "ecs"
  scalable_dimension = "ecs:service:DesiredCount"
  resource_id        = "service/${aws_ecs_cluster.this.name}/${aws_ecs_service.sender[each.key].name}"
  min_capacity       = var.senders[each.key].min_tasks
  max_capacity       = var.senders[each.key].max_tasks
}

resource "aws_appautoscaling_policy" "sender_backlog" {
  for_each = local.senders

  name               = "${var.name}-sender-${each.key}-backlog-per-task"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.sender[each.key].service_namespace
  scalable_dimension = aws_appautoscaling_target.sender[each.key].scalable_dimension
  resource_id        = aws_appautoscaling_target.sender[each.key].resource_id

  target_tracking_scaling_policy_configuration {
    target_value       = var.senders[each.key].target_backlog_per_task
    scale_out_cooldown = 60
    scale_in_cooldown  = 300

    customized_metric_specification {
      metrics {
        id          = "visible"
        label       = "Messages waiting in ${var.queues[each.key].name}"
        return_data = false

        metric_stat {
          stat = "Average"

          metric {
            namespace   = "AWS/SQS"
            metric_name = "ApproximateNumberOfMessagesVisible"

            dimensions {
              name  = "QueueName"
              value = var.queues[each.key].name
            }
          }
        }
      }

      metrics {
        id          = "tasks"
        label       = "Running tasks of ${aws_ecs_service.sender[each.key].name}"
        return_data = false

        metric_stat {
          stat = "Average"

          metric {
            namespace   = "ECS/ContainerInsights"
            metric_name = "RunningTaskCount"

            dimensions {
              name  = "ClusterName"
              value = aws_ecs_cluster.this.name
            }

            dimensions {
              name  = "ServiceName"
              value = aws_ecs_service.sender[each.key].name
            }
          }
        }
      }

      # min_tasks >= 1 (variables.tf), so the divisor is not 0 in steady state.
      metrics {
        id          = "backlog_per_task"
        label       = "Messages waiting per running task"
        expression  = "visible / tasks"
        return_data = true
      }
    }
  }
}
