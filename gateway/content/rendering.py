"""Templates' placeholders and their rendering with a notification's personalisation.

A placeholder is ``((name))``. Names match personalisation keys ignoring case, spaces,
underscores and hyphens: ``((First name))`` is filled by ``first name``, ``First_Name`` or
``first-name``. ``((name??text))`` shows ``text`` when the value is true-ish (``true``, ``1``,
or the text ``yes``, ``true`` or ``1`` in any case) and nothing otherwise. A list value renders
one item per line. That is all: no expressions, no loops, no attribute access.

Values are inserted as they are, except where the channel has markup: for Slack ``&``, ``<``
and ``>`` become ``&amp;``, ``&lt;`` and ``&gt;``. A value is never read for placeholders, so
``((other))`` in a value stays that text.

A template's texts are parsed once per version (``CompiledTemplate``, cached by the gateway,
since versions never change); rendering is then a join over the parsed pieces.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.errors import BadRequestError
from shared.channels import Channel
from shared.messages import MAX_CONTENT_BYTES, ChannelContent, EmailContent, SlackContent, SmsContent

# ((name)) or ((name??text)): a name has no parentheses or question marks, the text no parentheses.
PLACEHOLDER_PATTERN = re.compile(r"\(\(([^()?]+)(?:\?\?([^()]*))?\)\)")
_IGNORED_IN_NAMES = re.compile(r"[\s_-]+")
MAX_PLACEHOLDER_NAME_CHARACTERS = 100
_TRUE_TEXTS = frozenset({"yes", "true", "1"})


def placeholder_key(name: str) -> str:
    """What a placeholder's name and a personalisation key are compared by."""
    return _IGNORED_IN_NAMES.sub("", name).casefold()


@dataclass(frozen=True, slots=True)
class Placeholder:
    key: str
    name: str  # as the template spells it
    conditional_text: str | None = None  # ((name??text))


Piece = str | Placeholder


def parse(text: str, *, field: str) -> tuple[Piece, ...]:
    """``text`` as literal pieces and placeholders; 400 naming ``field`` for a placeholder without a name."""
    pieces: list[Piece] = []
    position = 0
    for match in PLACEHOLDER_PATTERN.finditer(text):
        name, conditional = match.group(1), match.group(2)
        key = placeholder_key(name)
        if not key:
            raise BadRequestError(f"{field} has a placeholder without a name: {match.group(0)}", field=field)
        if len(name) > MAX_PLACEHOLDER_NAME_CHARACTERS:
            raise BadRequestError(
                f"{field} has a placeholder name longer than {MAX_PLACEHOLDER_NAME_CHARACTERS} characters", field=field
            )
        if match.start() > position:
            pieces.append(text[position : match.start()])
        pieces.append(Placeholder(key, name.strip(), conditional))
        position = match.end()
    if position < len(text):
        pieces.append(text[position:])
    return tuple(pieces)


def slack_escape(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _as_is(value: str) -> str:
    return value


@dataclass(frozen=True, slots=True)
class CompiledTemplate:
    """One template version, parsed: its texts per channel, its category and its placeholders."""

    name: str
    version: int
    sms: tuple[Piece, ...] | None
    email_subject: tuple[Piece, ...] | None
    email_body: tuple[Piece, ...] | None
    slack: tuple[Piece, ...] | None
    category: str | None
    placeholders: tuple[Placeholder, ...]  # each key once, in template order (sms, email, slack)
    channels: tuple[Channel, ...]  # those it has content for, in the API's order

    @classmethod
    def compile(cls, *, name: str, version: int, content: Mapping[str, Any], category: str | None) -> CompiledTemplate:
        """From a version's stored ``content`` ({"sms", "email": {"subject", "body"}, "slack"})."""
        email = content.get("email")
        texts = {
            "sms": content.get("sms"),
            "email.subject": email["subject"] if email else None,
            "email.body": email["body"] if email else None,
            "slack": content.get("slack"),
        }
        parsed = {field: parse(text, field=field) if text is not None else None for field, text in texts.items()}
        seen: dict[str, Placeholder] = {}
        for pieces in parsed.values():
            for piece in pieces or ():
                if isinstance(piece, Placeholder) and piece.key not in seen:
                    seen[piece.key] = Placeholder(piece.key, piece.name)
        present = {Channel.SMS: parsed["sms"], Channel.EMAIL: parsed["email.body"], Channel.SLACK: parsed["slack"]}
        return cls(
            name=name,
            version=version,
            sms=parsed["sms"],
            email_subject=parsed["email.subject"],
            email_body=parsed["email.body"],
            slack=parsed["slack"],
            category=category,
            placeholders=tuple(seen.values()),
            channels=tuple(channel for channel in Channel if present[channel] is not None),
        )

    def has(self, channel: Channel | str) -> bool:
        return channel in self.channels

    def render(self, personalisation: Mapping[str, Any] | None, channels: Sequence[Channel | str] | None = None) -> ChannelContent:
        """The content of ``channels`` (default: every one it has), filled from ``personalisation``.

        400 ``Missing personalisation: a, b`` naming every placeholder of the template without a
        value (in template order, whichever channels are rendered), or naming a value that is not
        text, a number, true/false or a list of those."""
        values = _values(self, personalisation or {})
        wanted = {Channel(channel) for channel in channels} if channels is not None else set(self.channels)
        content: dict[str, Any] = {}
        if Channel.SMS in wanted and self.sms is not None:
            content["sms"] = SmsContent(body=_fill(self.sms, values, _as_is))
        if Channel.EMAIL in wanted and self.email_subject is not None and self.email_body is not None:
            content["email"] = EmailContent(subject=_fill(self.email_subject, values, _as_is), body=_fill(self.email_body, values, _as_is))
        if Channel.SLACK in wanted and self.slack is not None:
            content["slack"] = SlackContent(text=_fill(self.slack, values, slack_escape))
        return ChannelContent(**content)

    def render_unfilled(self) -> ChannelContent:
        """Every channel with no placeholder's value (and no conditional text): the shortest any
        rendering can be, which must already be within the channels' limits."""
        values = {placeholder.key: _Value("", False) for placeholder in self.placeholders}
        return ChannelContent(
            sms=SmsContent(body=_fill(self.sms, values, _as_is)) if self.sms is not None else None,
            email=EmailContent(subject=_fill(self.email_subject, values, _as_is), body=_fill(self.email_body, values, _as_is))
            if self.email_subject is not None and self.email_body is not None
            else None,
            slack=SlackContent(text=_fill(self.slack, values, _as_is)) if self.slack is not None else None,
        )


@dataclass(frozen=True, slots=True)
class _Value:
    text: str
    true: bool


def _values(template: CompiledTemplate, personalisation: Mapping[str, Any]) -> dict[str, _Value]:
    """The template's placeholders' values, by key; 400 for missing or unusable ones."""
    wanted = {placeholder.key: placeholder for placeholder in template.placeholders}
    given: dict[str, tuple[str, Any]] = {}
    for key, value in personalisation.items():
        normalised = placeholder_key(key)
        if normalised not in wanted:
            continue  # unknown extra keys are ignored
        if normalised in given and value is not None and given[normalised][1] is not None:
            raise BadRequestError(
                f"personalisation has both {given[normalised][0]!r} and {key!r} for the placeholder "
                f"(({wanted[normalised].name}))",
                field="personalisation",
            )
        if value is not None or normalised not in given:
            given[normalised] = (key, value)
    missing = [placeholder.name for placeholder in template.placeholders if given.get(placeholder.key, ("", None))[1] is None]
    if missing:
        raise BadRequestError(f"Missing personalisation: {', '.join(missing)}", field="personalisation")
    return {normalised: _value(key, value) for normalised, (key, value) in given.items()}


def _value(key: str, value: Any) -> _Value:
    if isinstance(value, list):
        return _Value("\n".join(_scalar(key, item) for item in value), False)
    text = _scalar(key, value)
    true = value is True or (type(value) in (int, float) and value == 1) or (isinstance(value, str) and value.strip().lower() in _TRUE_TEXTS)
    return _Value(text, true)


def _scalar(key: str, value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    raise BadRequestError(
        f"personalisation value of {key!r} must be text, a number, true or false, or a list of those", field="personalisation"
    )


def _fill(pieces: tuple[Piece, ...] | None, values: Mapping[str, _Value], escape: Callable[[str], str]) -> str:
    assert pieces is not None
    parts = []
    length = 0
    for piece in pieces:
        if isinstance(piece, str):
            part = piece
        elif piece.conditional_text is not None:
            part = piece.conditional_text if values[piece.key].true else ""
        else:
            part = escape(values[piece.key].text)
        parts.append(part)
        length += len(part)
        # A value repeated in every one of thousands of placeholders could make a text of
        # hundreds of megabytes: stop as soon as it can no longer fit in a notification.
        if length > MAX_CONTENT_BYTES:
            raise BadRequestError(
                f"the rendered template is over {MAX_CONTENT_BYTES:,} characters; a notification's content is at most "
                f"{MAX_CONTENT_BYTES:,} bytes (an SNS message takes 256 KiB)",
                field="personalisation",
            )
    return "".join(parts)
