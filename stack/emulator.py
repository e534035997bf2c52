"""What the AWS emulators (moto, LocalStack) have in common, and what they report as sent.

Tests and benchmarks written against :class:`Emulator` run on either: both start, stop and reset
the same way, and ``sent_emails()`` / ``sent_sms()`` return the same shapes, built here.
"""

from __future__ import annotations

import email
import email.policy
import email.utils
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from stack.processes import ChildServer

# The account both emulators give the access key "test", which every client here uses.
EMULATOR_ACCOUNT_ID = "000000000000"
EMULATOR_CREDENTIALS = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}


class Emulator(ChildServer):
    """An AWS emulator (SNS, SQS, SES) in a child process: :class:`stack.moto.MotoServer` or
    :class:`stack.localstack.LocalStackServer`."""

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def reset(self) -> None:
        """Forget every resource and message: the topology and SES identities must be created again."""
        raise NotImplementedError

    def sent_emails(self) -> list[dict[str, Any]]:
        """Emails sent through SES, simple or raw, oldest first.

        Each is ``{"id", "source", "destination", "subject", "body", "raw"}``; ``destination`` is
        the list of addresses, ``raw`` the MIME text for raw sends. Simple sends have one body: the
        HTML part when there is one, else the text part (what moto keeps).
        """
        raise NotImplementedError

    def sent_sms(self) -> list[dict[str, Any]]:
        """SMS published through SNS to a phone number, oldest first: ``{"id", "phone_number", "message"}``."""
        raise NotImplementedError


@dataclass(frozen=True)
class SentEmail:
    """One email that the emulator's SES accepted, in a form tests can compare."""

    id: str
    source: str
    destination: list[str]
    subject: str | None
    body: str | None
    raw: str | None


def simple_email(
    message_id: str, *, source: str, destinations: Mapping[str, list[str]], subject: str | None, body: str | None
) -> dict[str, Any]:
    """A simple send: its To, Cc and Bcc addresses (``destinations`` as SES's ``Destination``), in that order."""
    addresses = [address for kind in ("ToAddresses", "CcAddresses", "BccAddresses") for address in destinations.get(kind, [])]
    return asdict(SentEmail(id=message_id, source=source, destination=addresses, subject=subject, body=body, raw=None))


def raw_email(message_id: str, raw: str, *, source: str | None, destination: list[str] | None) -> dict[str, Any]:
    """A raw send, read from its MIME text; without ``destination``, the To and Cc headers' addresses."""
    parsed = email.message_from_string(raw, policy=email.policy.default)
    body_part = parsed.get_body(preferencelist=("plain", "html"))
    body = body_part.get_content() if body_part is not None else None
    if destination is None:
        headers = [str(value) for name in ("To", "Cc") for value in parsed.get_all(name, [])]
        destination = [address for _name, address in email.utils.getaddresses(headers) if address]
    sent = SentEmail(
        id=message_id,
        source=source or str(parsed.get("From", "")),
        destination=destination,
        subject=str(parsed["Subject"]) if parsed["Subject"] is not None else None,
        body=body,
        raw=raw,
    )
    return asdict(sent)


def sent_sms(message_id: str | None, phone_number: str, message: str) -> dict[str, Any]:
    return {"id": message_id, "phone_number": phone_number, "message": message}
