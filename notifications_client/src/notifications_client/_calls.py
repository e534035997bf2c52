"""Every operation of the gateway, once, as a ``Call``: the request to make and how to read its
answer. The sync and async clients (``_client.py``) differ only in how they run a call.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from notifications_client._errors import DeliveryFailed
from notifications_client import _models as models
from notifications_client._models import Channel, DeliveryStatus, Personalisation, Request

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"


@dataclass(frozen=True)
class Call(Generic[T]):
    method: str
    path: str
    read: Callable[[httpx.Response], T]
    json: dict[str, Any] | None = None
    content: bytes | None = None  # a body that is not JSON (a CSV job's file)
    params: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    # False: the gateway may have acted on it before a connection broke, and doing it twice is
    # not the same as once (retried only when it cannot have acted: see _retry.py).
    repeatable: bool = True
    # The ops port (plain HTTP) rather than the API.
    ops: bool = False
    # Error statuses that are an answer here, read rather than raised (/readyz's 503).
    answers: frozenset[int] = frozenset()


def _model(model: type[M]) -> Callable[[httpx.Response], M]:
    return lambda response: model.model_validate_json(response.content)


def _nothing(_response: httpx.Response) -> None:
    return None


def _segment(value: str) -> str:
    return quote(value, safe="")


def _page_params(limit: int | None, cursor: str | None) -> dict[str, Any]:
    return {key: value for key, value in (("limit", limit), ("cursor", cursor)) if value is not None}


def _body(model: type[Request], value: Request | Mapping[str, Any] | None, **fields: Any) -> dict[str, Any]:
    """A request body from a model, keyword fields (validated as the model), or a dict, sent as
    given: the gateway is the judge of it, and answers what is wrong in words (ValidationError)."""
    if isinstance(value, Mapping):
        return dict(value)
    if value is None:
        value = model.model_validate({name: given for name, given in fields.items() if given is not None})
    return value.payload()


def put_recipient(name: str, contacts: models.RecipientContacts | Mapping[str, Any] | None, **fields: Any) -> Call[None]:
    return Call("PUT", f"/recipients/{_segment(name)}", _nothing, json=_body(models.RecipientContacts, contacts, **fields))


def get_recipient(name: str) -> Call[models.Recipient]:
    return Call("GET", f"/recipients/{_segment(name)}", _model(models.Recipient))


def delete_recipient(name: str) -> Call[None]:
    return Call("DELETE", f"/recipients/{_segment(name)}", _nothing)


def list_recipients(limit: int | None, cursor: str | None) -> Call[models.RecipientPage]:
    return Call("GET", "/recipients", _model(models.RecipientPage), params=_page_params(limit, cursor))


def put_preferences(name: str, preferences: models.Preferences | Mapping[str, Any] | None, **fields: Any) -> Call[None]:
    return Call("PUT", f"/recipients/{_segment(name)}/preferences", _nothing, json=_body(models.Preferences, preferences, **fields))


def get_preferences(name: str) -> Call[models.PreferencesState]:
    return Call("GET", f"/recipients/{_segment(name)}/preferences", _model(models.PreferencesState))


def _read_template(response: httpx.Response) -> models.Template:
    return models.Template.model_validate({**response.json(), "created": response.status_code == 201})


def put_template(name: str, content: models.TemplateContent | Mapping[str, Any] | None, **fields: Any) -> Call[models.Template]:
    return Call("PUT", f"/templates/{_segment(name)}", _read_template, json=_body(models.TemplateContent, content, **fields))


def get_template(name: str, version: int | None) -> Call[models.Template]:
    suffix = f"/versions/{version}" if version is not None else ""
    return Call("GET", f"/templates/{_segment(name)}{suffix}", _model(models.Template))


def delete_template(name: str) -> Call[None]:
    return Call("DELETE", f"/templates/{_segment(name)}", _nothing)


def list_templates(limit: int | None, cursor: str | None) -> Call[models.TemplatePage]:
    return Call("GET", "/templates", _model(models.TemplatePage), params=_page_params(limit, cursor))


def preview_template(name: str, personalisation: Personalisation | None) -> Call[models.Rendered]:
    body = {} if personalisation is None else {"personalisation": dict(personalisation)}
    return Call("POST", f"/templates/{_segment(name)}/preview", _model(models.Rendered), json=body)


def _read_accepted(response: httpx.Response) -> models.NotificationAccepted:
    replayed = response.headers.get("Idempotent-Replayed") == "true"
    return models.NotificationAccepted.model_validate({**response.json(), "replayed": replayed})


def send(notification: models.NotificationRequest | Mapping[str, Any] | None, idempotency_key: str | None, **fields: Any) -> Call[models.NotificationAccepted]:
    # One key per send, made before the first attempt, so that every retry repeats it.
    key = idempotency_key or str(uuid.uuid4())
    body = _body(models.NotificationRequest, notification, **fields)
    return Call("POST", "/notifications", _read_accepted, json=body, headers={IDEMPOTENCY_KEY_HEADER: key})


def _read_batch(response: httpx.Response) -> models.BatchResults:
    replayed = response.headers.get("Idempotent-Replayed") == "true"
    return models.BatchResults.model_validate({**response.json(), "replayed": replayed})


def send_batch(
    notifications: Sequence[models.NotificationBatchItem | Mapping[str, Any]], idempotency_key: str | None
) -> Call[models.BatchResults]:
    # One key for the whole batch, made before the first attempt: a retry stores nothing twice.
    key = idempotency_key or str(uuid.uuid4())
    items = [_body(models.NotificationBatchItem, item) for item in notifications]
    return Call("POST", "/notifications/batch", _read_batch, json={"notifications": items}, headers={IDEMPOTENCY_KEY_HEADER: key})


def get_notification(notification_id: uuid.UUID | str) -> Call[models.Notification]:
    return Call("GET", f"/notifications/{_segment(str(notification_id))}", _model(models.Notification))


def cancel_notification(notification_id: uuid.UUID | str) -> Call[models.Notification]:
    # Cancelling a cancelled notification answers it again: safe to repeat.
    return Call("POST", f"/notifications/{_segment(str(notification_id))}/cancel", _model(models.Notification))


def list_suppressions(channel: Channel | str | None, limit: int | None, cursor: str | None) -> Call[models.SuppressionPage]:
    params = {**({"channel": str(Channel(channel))} if channel is not None else {}), **_page_params(limit, cursor)}
    return Call("GET", "/suppressions", _model(models.SuppressionPage), params=params)


def lift_suppression(channel: Channel | str, address: str) -> Call[None]:
    return Call("DELETE", f"/suppressions/{_segment(str(Channel(channel)))}/{_segment(address)}", _nothing)


def create_job(
    csv: bytes | str, *, template: str, name: str | None, send_at: Any, dry_run: bool
) -> Call[models.Job | models.JobDryRun]:
    params = {"template": template, **({"name": name} if name is not None else {}), "dry_run": str(dry_run).lower()}
    if send_at is not None:
        params["send_at"] = send_at.isoformat() if hasattr(send_at, "isoformat") else str(send_at)
    body = csv.encode() if isinstance(csv, str) else csv
    read = _model(models.JobDryRun) if dry_run else _model(models.Job)
    # A job has no Idempotency-Key: posted twice, it is two jobs (a dry run stores nothing).
    return Call("POST", "/jobs", read, content=body, params=params, headers={"Content-Type": "text/csv"}, repeatable=dry_run)  # type: ignore[arg-type]


def get_job(job_id: uuid.UUID | str) -> Call[models.Job]:
    return Call("GET", f"/jobs/{_segment(str(job_id))}", _model(models.Job))


def list_jobs(limit: int | None, cursor: str | None) -> Call[models.JobPage]:
    return Call("GET", "/jobs", _model(models.JobPage), params=_page_params(limit, cursor))


def list_job_notifications(
    job_id: uuid.UUID | str, status: DeliveryStatus | str | None, limit: int | None, cursor: str | None
) -> Call[models.JobNotificationPage]:
    params = {**({"status": str(DeliveryStatus(status))} if status is not None else {}), **_page_params(limit, cursor)}
    return Call("GET", f"/jobs/{_segment(str(job_id))}/notifications", _model(models.JobNotificationPage), params=params)


def cancel_job(job_id: uuid.UUID | str) -> Call[models.Job]:
    # Cancelling a cancelled job answers it again: safe to repeat.
    return Call("POST", f"/jobs/{_segment(str(job_id))}/cancel", _model(models.Job))


def put_callback(settings: models.CallbackSettings | Mapping[str, Any] | None, **fields: Any) -> Call[models.CallbackCreated]:
    return Call("PUT", "/callbacks", _model(models.CallbackCreated), json=_body(models.CallbackSettings, settings, **fields))


def get_callback() -> Call[models.Callback]:
    return Call("GET", "/callbacks", _model(models.Callback))


def delete_callback() -> Call[None]:
    return Call("DELETE", "/callbacks", _nothing)


def rotate_callback_secret() -> Call[models.CallbackCreated]:
    # Twice is not once: the second rotation would drop the secret receivers still verify with.
    return Call("POST", "/callbacks/rotate-secret", _model(models.CallbackCreated), repeatable=False)


def health() -> Call[models.Health]:
    return Call("GET", "/readyz", _model(models.Health), ops=True, answers=frozenset({503}))


# -- wait_for -------------------------------------------------------------------------------

# What each wanted status is reached by: a delivered message was sent first.
_REACHED = {
    DeliveryStatus.SENT: {DeliveryStatus.SENT, DeliveryStatus.DELIVERED},
    DeliveryStatus.DELIVERED: {DeliveryStatus.DELIVERED},
}
_LOST = {DeliveryStatus.FAILED, DeliveryStatus.CANCELLED}
# Slack has no receipts: chat.postMessage's ok is final, and the delivery stays sent.
_SENT_IS_FINAL = {Channel.SLACK}


def wanted_status(status: str) -> DeliveryStatus:
    wanted = DeliveryStatus(status)
    if wanted not in _REACHED:
        raise ValueError(f"wait_for waits for 'sent' or 'delivered', not {status!r}")
    return wanted


def arrived(notification: models.Notification, wanted: DeliveryStatus) -> bool:
    """Whether every delivery reached ``wanted`` (a skipped one has nothing to wait for, a Slack
    one is final once sent); DeliveryFailed as soon as one failed or was cancelled. Delivery
    "first": whether the channel that was sent reached ``wanted``; DeliveryFailed once every
    channel ended without one sent."""
    if notification.delivery == models.DeliveryMode.FIRST:
        return _first_arrived(notification, wanted)
    lost = [channel for channel, delivery in notification.deliveries.items() if delivery.status in _LOST]
    if lost:
        raise DeliveryFailed(notification, sorted(lost))
    return all(
        delivery.status in _REACHED[DeliveryStatus.SENT if channel in _SENT_IS_FINAL else wanted] or delivery.status == DeliveryStatus.SKIPPED
        for channel, delivery in notification.deliveries.items()
    )


def _first_arrived(notification: models.Notification, wanted: DeliveryStatus) -> bool:
    channel = notification.delivered_by
    if channel is not None:
        return notification.deliveries[channel].status in _REACHED[DeliveryStatus.SENT if channel in _SENT_IS_FINAL else wanted]
    ended = _LOST | {DeliveryStatus.SKIPPED}
    if all(delivery.status in ended for delivery in notification.deliveries.values()):
        raise DeliveryFailed(notification, sorted(notification.deliveries))
    return False
