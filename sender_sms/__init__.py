"""The SMS sender: consumes ``sms_notifications`` and sends each notification with SNS Publish."""
