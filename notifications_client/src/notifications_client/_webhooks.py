"""Verifying a status callback: its Standard Webhooks signature, with the maintained package."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import ValidationError as ModelError
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from notifications_client._errors import NotificationsError
from notifications_client._models import CallbackEvent


class CallbackVerificationError(NotificationsError):
    """The callback's signature, timestamp (more than 5 minutes off) or body is not one of ours:
    answer it with a 4xx and do not act on it."""


def verify_callback(headers: Mapping[str, str], body: bytes | str, secret: str) -> CallbackEvent:
    """The event of a callback request, once ``webhook-id``, ``webhook-timestamp`` and
    ``webhook-signature`` (any case) prove the gateway signed ``body`` (the raw bytes, as received)
    with ``secret`` (``whsec_...``, from put_callback or rotate_callback_secret). The event's id,
    the same on every retry of it, is ``headers["webhook-id"]``: drop one already processed."""
    try:
        document = Webhook(secret).verify(body, dict(headers.items()))
    except WebhookVerificationError as exc:
        raise CallbackVerificationError(f"the callback is not signed with this secret: {exc}") from exc
    try:
        return CallbackEvent.model_validate(document)
    except ModelError as exc:
        raise CallbackVerificationError(f"the callback is signed but is not a delivery event: {exc}") from exc
