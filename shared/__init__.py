"""Code shared by the gateway and the senders: settings base, topology, message model,
database schema, logging, metrics and the SQS consumer runtime."""
