"""``notifyctl``: the operators' command line (certificates, recipients, notifications, DLQs, topology)."""
