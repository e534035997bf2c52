"""One callback request: the event signed per Standard Webhooks and POSTed, and what came of it.

The signature is the ``standardwebhooks`` package's (``webhook-id``: the event's id, the same on
every attempt; ``webhook-timestamp``: now; ``webhook-signature``: ``v1,<base64 HMAC-SHA256>`` for
each secret that signs, space-separated, so a receiver that still has the previous secret after a
rotation verifies too). The request goes through ``shared/callback_targets.py``'s rules: the URL
again (it was set under the rules of that day), an IP literal host checked here, a host name
resolved by ``FilteringResolver`` (the only resolver of this client). Redirects are not followed.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from standardwebhooks.webhooks import Webhook

from callback_sender.repository import ClaimedEvent
from shared.backoff import retry_after_seconds
from shared.callback_events import event_body
from shared.callback_targets import FilteringResolver, TargetPolicy, TargetRefused

USER_AGENT = "notifications-callbacks/1"
# Enough of a refusal's body to say why, in last_error.
ERROR_BODY_BYTES = 200


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one request came to: ``delivered``, ``transient`` (retry) or ``permanent`` (give up)."""

    kind: str
    detail: str = ""
    status: int | None = None
    retry_after: float | None = None


def signature_headers(event: ClaimedEvent, body: str, *, now: datetime | None = None) -> dict[str, str]:
    moment = now or datetime.now(UTC)
    message_id = str(event.id)
    signatures = [Webhook(secret).sign(message_id, moment, body) for secret in event.secrets]
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": " ".join(signatures),
    }


def classify(status: int, *, retry_after: str | None, body: str) -> Attempt:
    """A receiver's answer: 2xx delivered; 5xx, 429 and 408 retried (Retry-After honoured); any
    other answer (4xx, a redirect) is not retried."""
    excerpt = " ".join(body.split())[:ERROR_BODY_BYTES]
    detail = f"HTTP {status}" + (f": {excerpt}" if excerpt else "")
    if 200 <= status < 300:
        return Attempt("delivered", status=status)
    if status >= 500 or status in (429, 408):
        return Attempt("transient", detail, status=status, retry_after=retry_after_seconds(retry_after))
    if 300 <= status < 400:
        return Attempt("permanent", f"{detail} (redirects are not followed: set the final URL)", status=status)
    return Attempt("permanent", detail, status=status)


class WebhookClient:
    """Sends callbacks; one per process, its connections pooled."""

    def __init__(self, *, policy: TargetPolicy, timeout_seconds: float, connections: int, ca_bundle: Path | None = None) -> None:
        self._policy = policy
        self._timeout_seconds = timeout_seconds
        context = ssl.create_default_context()
        if ca_bundle is not None:
            context.load_verify_locations(cafile=str(ca_bundle))
        self._connector = aiohttp.TCPConnector(resolver=FilteringResolver(policy), ssl=context, limit=connections)
        self._session = aiohttp.ClientSession(
            connector=self._connector,
            timeout=aiohttp.ClientTimeout(total=timeout_seconds),
            headers={"User-Agent": USER_AGENT},
            auto_decompress=False,
        )

    async def close(self) -> None:
        await self._session.close()

    async def send(self, event: ClaimedEvent) -> Attempt:
        """POST the event; never raises for what a receiver or the network does."""
        try:
            target = self._policy.check_url(event.url)
            if target.literal is not None:
                self._policy.check_address(target.literal, host=target.host)
        except TargetRefused as exc:
            return Attempt("permanent", f"refused: {exc}")
        body = event_body(type_=event.type, occurred_at=event.occurred_at, data=event.data)
        headers = {"Content-Type": "application/json", **signature_headers(event, body)}
        try:
            async with self._session.post(event.url, data=body.encode(), headers=headers, allow_redirects=False) as response:
                text = (await response.content.read(ERROR_BODY_BYTES * 4)).decode(errors="replace")
                return classify(response.status, retry_after=response.headers.get("Retry-After"), body=text)
        except TargetRefused as exc:
            return Attempt("permanent", f"refused: {exc}")
        except TimeoutError:
            return Attempt("transient", f"timed out after {self._timeout_seconds:g} s")
        except aiohttp.ClientError as exc:
            return Attempt("transient", f"{type(exc).__name__}: {exc}")
        except (OSError, asyncio.IncompleteReadError) as exc:
            return Attempt("transient", f"{type(exc).__name__}: {exc}")
