"""The database schema (SQLAlchemy Core). Alembic migrations in ``shared/migrations`` create it."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Identity,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

from shared.channels import CHANNEL_NAMES, CONTACT_FIELDS
from shared.statuses import DeliveryStatus

metadata = MetaData()


def _one_of(column: str, values: tuple[str, ...] | list[str]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


recipients = Table(
    "recipients",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("phone_number", String(16)),
    Column("email", String(320)),
    Column("slack_id", String(32)),
    # What the recipient wants (gateway/recipients/preferences.py): {"channels": {...},
    # "categories": {...}}; NULL: everything on.
    Column("preferences", JSONB),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint(" OR ".join(f"{field} IS NOT NULL" for field in CONTACT_FIELDS), name="recipients_has_contact"),
)

# A template's name and its newest version; deleted_at set: it is deleted (GETs 404, sends 400),
# its versions are kept (notifications refer to them) and a PUT makes the next version.
templates = Table(
    "templates",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("latest_version", Integer, nullable=False),
    Column("deleted_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Every version of every template, never changed once written: (name, version) always means the
# same content. ``content``: {"sms": "...", "email": {"subject": "...", "body": "..."}, "slack": "..."}.
template_versions = Table(
    "template_versions",
    metadata,
    Column("name", String(128), ForeignKey("templates.name"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("content", JSONB, nullable=False),
    Column("category", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# A CSV uploaded to be sent with one template version (see gateway/jobs/): each of its rows is a
# notification with this job_id. ``cancelled_at``: POST /jobs/{id}/cancel cancelled what was not
# yet released.
jobs = Table(
    "jobs",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("client", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("template", String(128), nullable=False),
    Column("template_version", Integer, nullable=False),
    Column("rows", Integer, nullable=False),
    Column("send_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("cancelled_at", DateTime(timezone=True)),
    Index("jobs_client_id", "client", "id"),
)

notifications = Table(
    "notifications",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    # The recipient's name and contact data as they were when the notification was accepted.
    Column("recipient", String(128), nullable=False),
    Column("phone_number", String(16)),
    Column("email", String(320)),
    Column("slack_id", String(32)),
    # A plain notification's text and email subject; a template's has ``content`` instead: what
    # each targeted channel sends, rendered when it was accepted ({"sms": {"body"}, "email":
    # {"subject", "body"}, "slack": {"text"}}), and the template version it was rendered from.
    Column("message", Text),
    Column("subject", Text),
    Column("content", JSONB),
    Column("template", String(128)),
    Column("template_version", Integer),
    Column("category", Text, nullable=False, server_default="general"),
    Column("channels", ARRAY(Text), nullable=False),
    # The client's own identifier for it (a batch item's), and whether it takes the bulk lane
    # (sent from a batch: see shared/topology.py).
    Column("reference", String(128)),
    Column("bulk", Boolean, nullable=False, server_default=false()),
    # The CSV job it is a row of (see gateway/jobs/); NULL: sent on its own or in a batch.
    Column("job_id", UUID(as_uuid=True), ForeignKey("jobs.id")),
    # Who sent it: the verified client certificate's subject CN and serial number.
    Column("client", Text, nullable=False),
    Column("client_serial", Text, nullable=False),
    Column("idempotency_key", Text),
    Column("request_hash", Text),
    # The time the client asked for (send_at), and when its deliveries are released: send_at,
    # or later when that falls in the recipient's quiet hours; NULL: at once.
    Column("send_at", DateTime(timezone=True)),
    Column("release_at", DateTime(timezone=True)),
    # "all": every channel at once; "first": one at a time in the order of ``channels`` until one
    # is sent (migration 0017's trigger moves it on).
    Column("delivery", Text, nullable=False, server_default="all"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index(
        "notifications_client_idempotency_key",
        "client",
        "idempotency_key",
        unique=True,
        postgresql_where=text("idempotency_key IS NOT NULL"),
    ),
    Index("notifications_created_at", "created_at"),
    Index("notifications_job_id", "job_id", "id", postgresql_where=text("job_id IS NOT NULL")),
    CheckConstraint("message IS NOT NULL OR content IS NOT NULL", name="notifications_has_content"),
    CheckConstraint(_one_of("delivery", ["all", "first"]), name="notifications_delivery"),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("notification_id", UUID(as_uuid=True), ForeignKey("notifications.id", ondelete="CASCADE"), primary_key=True),
    Column("channel", Text, primary_key=True),
    Column("status", Text, nullable=False, server_default=DeliveryStatus.PENDING.value),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("last_error", Text),
    Column("provider_message_id", Text),
    # Which of the channel's providers made the last attempt (shared/failover.py): "sns", "twilio".
    Column("provider", Text),
    # The sender replica working on it, and until when its claim holds (see shared/deliveries.py).
    Column("claimed_by", Text),
    Column("claimed_until", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("sent_at", DateTime(timezone=True)),
    # When SNS last took a message for it (the outbox's delete writes it, while not final):
    # with updated_at and claimed_until, what notifyctl reconcile tells a lost message by.
    Column("published_at", DateTime(timezone=True)),
    # When the provider reported it delivered (a receipt; see shared/receipts.py).
    Column("delivered_at", DateTime(timezone=True)),
    Index("deliveries_provider_message_id", "provider_message_id", postgresql_where=text("provider_message_id IS NOT NULL")),
    Index("deliveries_waiting", "notification_id", postgresql_where=text("status = 'waiting'")),
    CheckConstraint(_one_of("status", [status.value for status in DeliveryStatus]), name="deliveries_status"),
    CheckConstraint(_one_of("channel", CHANNEL_NAMES), name="deliveries_channel"),
)

# What providers reported about a delivery (SES events, SNS SMS delivery logs; see
# shared/receipts.py), each kept once: (channel, provider_event_id) is the provider's own id of
# the event, so a receipt read twice is stored once.
receipts = Table(
    "receipts",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("notification_id", UUID(as_uuid=True), nullable=False),
    Column("channel", Text, nullable=False),
    Column("event", Text, nullable=False),  # Delivery, Bounce, Complaint, Reject, SUCCESS, FAILURE ...
    Column("type", Text),  # a bounce's bounceType, a complaint's complaintFeedbackType
    Column("subtype", Text),  # a bounce's bounceSubType
    Column("at", DateTime(timezone=True), nullable=False),  # when the provider says it happened
    Column("detail", JSONB, nullable=False),
    Column("provider_event_id", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    ForeignKeyConstraint(
        ["notification_id", "channel"], ["deliveries.notification_id", "deliveries.channel"], ondelete="CASCADE"
    ),
    UniqueConstraint("channel", "provider_event_id", name="receipts_provider_event_id"),
    Index("receipts_delivery", "notification_id", "channel", "at"),
)

# Addresses not sent to (see gateway/suppressions/): a permanent bounce, a complaint or an SMS
# opt-out puts one here; the accept skips a delivery to it; DELETE /suppressions lifts it.
suppressions = Table(
    "suppressions",
    metadata,
    Column("channel", Text, primary_key=True),
    Column("address", Text, primary_key=True),
    Column("reason", Text, nullable=False),
    Column("notification_id", UUID(as_uuid=True)),  # the delivery whose receipt suppressed it
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Publications owed to SNS: a notification's message, addressed to ``channels``, due at
# ``next_attempt_at``. A row is deleted once SNS has the message (see gateway/outbox/).
outbox = Table(
    "outbox",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("notification_id", UUID(as_uuid=True), ForeignKey("notifications.id", ondelete="CASCADE"), nullable=False),
    # The SNS message's ``channels`` attribute: which channels' queues this publication reaches.
    Column("channels", ARRAY(Text), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("last_error", Text),
    # Set: a scheduled publication, not owed to SNS before then (its deliveries are ``scheduled``
    # until a relay claims it); not counted in the backlog while it waits.
    Column("release_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("outbox_next_attempt_at", "next_attempt_at"),
    Index("outbox_notification_id", "notification_id"),
)

# The gateway's per-client token buckets, shared by every replica (see gateway/client_rate_limit.py).
# UNLOGGED: no WAL for a row rewritten on every request; after a Postgres crash the table is
# empty, which only means every client starts with a full bucket.
rate_limit_buckets = Table(
    "rate_limit_buckets",
    metadata,
    Column("client", Text, primary_key=True),  # the client certificate's CN
    Column("tokens", Float, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # The decision of the last request that touched the row, so one statement can return it.
    Column("allowed", Boolean, nullable=False),
    prefixes=["UNLOGGED"],
    # Room on each page for the new row version: updates stay HOT (no index change, no bloat).
    postgresql_with={"fillfactor": 70},
)

# The senders' provider rate limits shared by their replicas (see shared/provider_rate_limit.py):
# one bucket per key (a channel, or a Slack channel), UNLOGGED as rate_limit_buckets.
provider_rate_limit_buckets = Table(
    "provider_rate_limit_buckets",
    metadata,
    Column("key", Text, primary_key=True),
    Column("tokens", Float, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    prefixes=["UNLOGGED"],
    postgresql_with={"fillfactor": 70},
)

# Each client's status callback (see gateway/callbacks/), by its certificate's CN.
callbacks = Table(
    "callbacks",
    metadata,
    Column("client", Text, primary_key=True),
    Column("url", Text, nullable=False),
    Column("events", ARRAY(Text), nullable=False),
    Column("secret", Text, nullable=False),
    Column("previous_secret", Text),
    Column("previous_secret_expires_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("last_success_at", DateTime(timezone=True)),
    Column("last_failure", JSONB),
)

# Status callbacks owed to clients (an outbox): written by triggers on ``deliveries`` in the
# status change's transaction (migration 0007), sent by callback_sender/ (its docstring).
callback_events = Table(
    "callback_events",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")),
    Column("client", Text, nullable=False),
    Column("type", Text, nullable=False),
    Column("notification_id", UUID(as_uuid=True), nullable=False),
    Column("channel", Text, nullable=False),
    Column("data", JSONB, nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("last_error", Text),
    Column("given_up_at", DateTime(timezone=True)),
    Index("callback_events_due", "client", "next_attempt_at", postgresql_where=text("given_up_at IS NULL")),
)
