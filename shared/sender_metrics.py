"""The senders' Prometheus metrics, defined once; every series carries the ``channel`` label."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

MESSAGES_RECEIVED = Counter(
    "sender_messages_received", "SQS messages received", ["channel"]
)
MESSAGES_SENT = Counter(
    "sender_messages_sent", "Notifications the provider accepted", ["channel"]
)
MESSAGES_FAILED = Counter(
    "sender_messages_failed",
    "Messages that ended failed (permanent error, retries exhausted, unparseable), by reason code",
    ["channel", "reason"],
)
MESSAGES_RETRIED = Counter(
    "sender_messages_retried", "Transient failures left on the queue for another attempt", ["channel"]
)
MESSAGES_IN_FLIGHT = Gauge(
    "sender_messages_in_flight", "Messages in a slot (waiting for their rate-limit turn, being sent, settled)", ["channel"]
)
MESSAGES_RECEIVED_AHEAD = Gauge(
    "sender_messages_received_ahead",
    "Messages received while every slot was busy, waiting in the receive-ahead buffer for one",
    ["channel"],
)
SEND_DURATION = Histogram(
    "sender_send_duration_seconds",
    "Duration of provider calls",
    ["channel"],
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
DUPLICATES_SKIPPED = Counter(
    "sender_duplicates_skipped",
    "Messages deleted without sending because their delivery was already sent or failed",
    ["channel"],
)
RECEIPTS = Counter(
    "sender_receipts",
    "Provider receipts read, by outcome: applied, duplicate, ignored (not a receipt), "
    "unknown_retried (no delivery has its message id yet), unknown_dropped (still none after the retry window)",
    ["channel", "outcome"],
)
