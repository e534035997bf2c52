"""The channels' limits (``shared/channels.py``), checked before a notification is accepted.

What a provider would refuse is refused here with a 400 naming the channel, the length and the
limit, for plain messages and rendered templates alike, and only for the channels a notification
is going to be sent on (a text too long for SMS is fine for a recipient without a phone number).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.content.rendering import CompiledTemplate
from gateway.errors import BadRequestError
from shared.channels import Channel, channel_spec
from shared.messages import MAX_CONTENT_BYTES, ChannelContent
from shared.sms import SmsLength, sms_length

RENDERED = "the rendered template"
_SMS_BYTES = channel_spec(Channel.SMS).limits.sms_bytes
_SLACK_CHARACTERS = channel_spec(Channel.SLACK).limits.text_characters
_SUBJECT_CHARACTERS = channel_spec(Channel.EMAIL).limits.subject_characters


def check_limits(
    content: ChannelContent, channels: Iterable[Channel | str], *, field: str, what: str | None = None, sms: SmsLength | None = None
) -> None:
    """400 for the first of ``channels`` whose content its provider would refuse. ``field`` is
    the field the error names, ``what`` how its sentence starts (default: the field); ``sms`` is
    the SMS text's length when the caller has measured it already."""
    for channel in channels:
        channel = Channel(channel)
        if channel is Channel.SMS and content.sms is not None:
            check_sms(sms if sms is not None else sms_length(content.sms.body), field=field, what=what)
        elif channel is Channel.EMAIL and content.email is not None:
            check_subject(content.email.subject, field=field)
        elif channel is Channel.SLACK and content.slack is not None:
            check_slack(content.slack.text, field=field, what=what)


def check_sms(length: SmsLength, *, field: str, what: str | None = None) -> None:
    if _SMS_BYTES is not None and length.bytes > _SMS_BYTES:
        raise BadRequestError(
            f"{what or field} too long for sms: {length.bytes:,} bytes as {length.encoding} ({length.fragments} fragments); "
            f"SNS takes at most {_SMS_BYTES:,} bytes",
            field=field,
        )


def check_slack(text: str, *, field: str, what: str | None = None) -> None:
    if _SLACK_CHARACTERS is not None and len(text) > _SLACK_CHARACTERS:
        raise BadRequestError(
            f"{what or field} too long for slack: {len(text):,} characters; Slack takes at most {_SLACK_CHARACTERS:,}", field=field
        )


def check_subject(subject: str, *, field: str) -> None:
    if "\r" in subject or "\n" in subject:
        raise BadRequestError("email subject must be one line, without CR or LF", field=field)
    if _SUBJECT_CHARACTERS is not None and len(subject) > _SUBJECT_CHARACTERS:
        raise BadRequestError(f"email subject too long: {len(subject):,} characters; the limit is {_SUBJECT_CHARACTERS:,}", field=field)


def check_content_size(content_json: str, *, field: str, what: str) -> None:
    """400 when a rendering would not fit in the SNS message that carries it (``content_json``:
    the content as the message and the notification store it)."""
    size = len(content_json.encode())
    if size > MAX_CONTENT_BYTES:
        raise BadRequestError(
            f"{what} is {size:,} bytes; a notification's content is at most {MAX_CONTENT_BYTES:,} (an SNS message takes 256 KiB)",
            field=field,
        )


@dataclass(slots=True)
class Rendering:
    """A template rendered for a notification, within its channels' limits."""

    content: ChannelContent
    content_json: str  # as the notification stores it and its SNS message carries it
    sms: SmsLength | None  # the SMS text's length, when SMS is rendered


def render_within_limits(
    template: CompiledTemplate,
    personalisation: Mapping[str, Any] | None,
    *,
    channels: Sequence[Channel | str],
    sent: Sequence[Channel | str],
) -> Rendering:
    """Render ``channels`` of ``template`` and check the limits of those ``sent``, or the 400 a
    send gets (missing personalisation, a channel's limit, content too large for SNS)."""
    content = template.render(personalisation, channels)
    sms = sms_length(content.sms.body) if content.sms is not None else None
    check_limits(content, sent, field="template", what=RENDERED, sms=sms)
    content_json = content.model_dump_json(exclude_none=True)
    check_content_size(content_json, field="template", what=RENDERED)
    return Rendering(content, content_json, sms)
