"""The Slack sender: consumes ``slack_notifications`` and posts each notification with chat.postMessage."""
