"""The callback sender's Prometheus metrics, defined once."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

DELIVERIES = Counter(
    "callback_deliveries",
    "Callback attempts by outcome: delivered (2xx), retried (connection error, timeout, 5xx, 429), "
    "failed (other 4xx, 3xx, a refused address: not retried), expired (still failing after CALLBACKS_RETRY_FOR_SECONDS)",
    ["client", "outcome"],
)
REQUEST_DURATION = Histogram(
    "callback_request_duration_seconds",
    "Duration of callback requests, whatever their outcome",
    ["client"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
EVENT_DELAY = Histogram(
    "callback_event_delay_seconds",
    "From the status change to the receiver's 2xx",
    ["client"],
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, 21600, 86400),
)
IN_FLIGHT = Gauge("callback_requests_in_flight", "Callback requests under way in this process")
PENDING = Gauge("callback_events_pending", "Events not yet delivered nor given up on, per client (every replica reports it: use max)", ["client"])
OLDEST_PENDING_AGE = Gauge(
    "callback_oldest_pending_age_seconds", "Age of the oldest event not yet delivered, per client (use max)", ["client"]
)
