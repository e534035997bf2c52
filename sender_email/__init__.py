"""The email sender: consumes ``email_notifications`` and sends each notification with SES."""
