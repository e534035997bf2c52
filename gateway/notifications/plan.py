"""What a notification will do, decided before anything is stored: the plan of one item.

``plan_notification`` is a pure function of the request, the recipient as it is now (contacts and
preferences), the template version it names (parsed) and the critical categories. It decides the
channels targeted (those the recipient has, the request allows and, for a template, the template
has content for), which of them are skipped and why, the content each channel gets (a template is
rendered here) and checks it against the channels' limits; or it refuses the item with the 400 a
client sees. The accept (``service.py``) runs it for every item between reading the recipients
and storing what it decided; batch and CSV items go through it the same way, one at a time.

When it is released is decided here too (``release_time``): at once, or at its ``send_at``
(refused when more than 60 s past or more than 7 days ahead of ``now``), held further while that
falls in the recipient's quiet hours (until they end in the recipient's zone; not for critical
categories). A plan with a release time stores its deliveries ``scheduled`` and its outbox row
due then (see ``gateway/outbox/``). ``now`` is the caller's, so the rules are tested at any hour.

With ``delivery: "first"`` the channels are the requested ones in the order requested (the order
they are tried in), and a requested channel the recipient has no contact for is skipped
(``recipient has no sms contact``) rather than refused, as long as it has one of them: the point is
to reach the recipient by whichever channel it has. Only the first channel not skipped is
published; the others are stored ``waiting`` (see migration 0017 for what releases them). Every
channel that may be sent is checked against its limits now, as for ``"all"``.

A skipped delivery is never attempted: it is stored ``skipped`` with the reason in
``last_error`` and no queue message is published for it. ``skipped_channels`` is the one place
that says why a channel is skipped: the recipient's address for it is suppressed (a permanent
bounce, a complaint, an SMS opt-out; whatever the category, critical ones too), or the recipient's
preferences (a channel turned off globally or for the notification's category, unless the
category is critical).
"""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass
from datetime import datetime

from gateway.content.limits import check_sms, render_within_limits
from gateway.content.rendering import CompiledTemplate
from gateway.content.schemas import DEFAULT_CATEGORY
from gateway.errors import BadRequestError
from gateway.notifications.schemas import (
    MAX_MESSAGE_CHARACTERS,
    MAX_SEND_AHEAD,
    MAX_SEND_LATE,
    SEND_AT_IN_THE_PAST,
    SEND_AT_TOO_FAR,
    DeliveryMode,
    NotificationCreate,
)
from gateway.recipients.preferences import Preferences
from shared.channels import CHANNELS, Channel, channel_spec
from shared.messages import ChannelContent
from shared.sms import SmsLength, sms_length

# What the plain path relies on: no message the schema allows is too long for Slack.
assert MAX_MESSAGE_CHARACTERS <= (channel_spec(Channel.SLACK).limits.text_characters or MAX_MESSAGE_CHARACTERS)


# Not frozen: a frozen dataclass's __init__ costs several times more, and these are made for
# every item of every accept. Nothing changes them after they are made.
@dataclass(slots=True)
class RecipientRecord:
    """A recipient as the accept reads it: its contacts (the notification's snapshot) and preferences."""

    name: str
    phone_number: str | None
    email: str | None
    slack_id: str | None
    preferences: Preferences | None = None
    # Its channels whose address is on the suppression list, and why (None: none is).
    suppressed: dict[str, str] | None = None

    @property
    def channels(self) -> list[Channel]:
        """The channels it has a contact for, in the API's order."""
        return [spec.channel for spec in CHANNELS if getattr(self, spec.contact_field) is not None]


@dataclass(slots=True)
class Plan:
    """What one notification will do (see the module docstring)."""

    channels: list[Channel]  # targeted: one delivery each
    category: str
    skipped: dict[Channel, str]  # channel -> why
    published: list[Channel]  # whose queues get the message now: the targeted ones not skipped (delivery "first": the first of them)
    content: ChannelContent | None = None  # rendered from the template; None: the plain message
    content_json: str | None = None  # the content as stored and published
    sms: SmsLength | None = None  # when SMS is targeted
    release_at: datetime | None = None  # held until then (scheduled); None: published at once


def plan_notification(
    notification: NotificationCreate,
    *,
    recipient: RecipientRecord | None,
    template: CompiledTemplate | None,
    critical_categories: Set[str],
    now: datetime,
) -> Plan:
    """The plan of one notification, or the BadRequestError it is refused with (see the module docstring).

    ``template`` is the version the request names, parsed (None for a plain message); the caller
    refuses a request naming a template that does not exist before planning it."""
    if recipient is None:
        raise BadRequestError(f"unknown recipient: {notification.recipient!r}", field="recipient")
    available = recipient.channels
    requested = notification.channels
    first = notification.delivery is DeliveryMode.FIRST
    lacking: list[Channel] = []
    if requested is not None:
        lacking = [channel for channel in requested if channel not in available]
        if lacking and (not first or len(lacking) == len(requested)):
            raise BadRequestError(
                f"recipient {recipient.name!r} has no {', '.join(lacking)} contact; its channels are: {', '.join(available)}",
                field="channels",
            )
    if first:
        assert requested is not None  # the schema requires channels with delivery "first"
        channels = list(requested)
    else:
        channels = [channel for channel in available if requested is None or channel in requested]
    if template is not None:
        if requested is not None:
            without = [channel for channel in requested if not template.has(channel)]
            if without:
                raise BadRequestError(
                    f"template {template.name!r} has no {', '.join(without)} content; "
                    f"its channels are: {', '.join(template.channels)}",
                    field="channels",
                )
        channels = [channel for channel in channels if template.has(channel)]
        if not channels:
            raise BadRequestError(
                f"template {template.name!r} has content for {', '.join(template.channels)} only, "
                f"and recipient {recipient.name!r} has none of them (its channels are: {', '.join(available)})",
                field="template",
            )
    category = notification.category or (template.category if template is not None else None) or DEFAULT_CATEGORY
    skipped = skipped_channels(channels, recipient=recipient, category=category, critical_categories=critical_categories)
    for channel in lacking:
        skipped[channel] = f"recipient has no {channel} contact"
    sent = [channel for channel in channels if channel not in skipped] if skipped else channels
    # Delivery "first" publishes one channel now; the others wait their turn (the limits below
    # are still checked for all of them: any may be sent).
    published = sent[:1] if first else sent
    release_at = release_time(notification.send_at, recipient=recipient, category=category, critical_categories=critical_categories, now=now)
    if not sent:
        release_at = None  # nothing is published: nothing to hold
    if template is not None:
        rendering = render_within_limits(template, notification.personalisation, channels=channels, sent=sent)
        return Plan(channels, category, skipped, published, rendering.content, rendering.content_json, rendering.sms, release_at)
    # A plain message: its subject is checked by its schema (one line, within the limit), and
    # no message the schema allows is too long for Slack; SMS is the channel that counts.
    sms = sms_length(notification.message) if Channel.SMS in channels else None
    if sms is not None and Channel.SMS in sent:
        check_sms(sms, field="message")
    return Plan(channels, category, skipped, published, None, None, sms, release_at)


def release_time(
    send_at: datetime | None, *, recipient: RecipientRecord, category: str, critical_categories: Set[str], now: datetime
) -> datetime | None:
    """When a notification asked for at ``send_at`` (None: at once) is released, or None for at
    once: the one place send_at's bounds and quiet hours are decided (see the module docstring)."""
    if send_at is not None:
        if send_at < now - MAX_SEND_LATE:
            raise BadRequestError(SEND_AT_IN_THE_PAST, field="send_at")
        if send_at > now + MAX_SEND_AHEAD:
            raise BadRequestError(SEND_AT_TOO_FAR, field="send_at")
    release = send_at if send_at is not None and send_at > now else now
    preferences = recipient.preferences
    quiet_hours = preferences.quiet_hours if preferences is not None and category not in critical_categories else None
    if quiet_hours is not None:
        release = quiet_hours.release_time(release)
    return release if release > now else None


def skipped_channels(
    channels: list[Channel], *, recipient: RecipientRecord, category: str, critical_categories: Set[str]
) -> dict[Channel, str]:
    """Which of ``channels`` are not to be sent to ``recipient`` for a notification of
    ``category``, and why: the one place a reason to skip a channel is decided."""
    skipped: dict[Channel, str] = {}
    if recipient.suppressed is not None:
        # Sending to an address that bounced or complained harms every later send (SES suspends
        # accounts that keep doing it): not even a critical category overrides it.
        for channel in channels:
            if (reason := recipient.suppressed.get(channel)) is not None:
                skipped[channel] = f"address suppressed: {reason}"
    preferences = recipient.preferences
    if preferences is None or category in critical_categories:
        return skipped
    for channel in channels:
        if channel not in skipped and (reason := preferences.turned_off(channel, category)):
            skipped[channel] = reason
    return skipped

