"""``Client`` and ``AsyncClient``: the gateway over mutual TLS, every operation a method.

The operations are written once (``_Operations``, over the calls of ``_calls.py``); the two
clients differ only in how they run a call (``_run``), page through a listing (``_iterate``) and
wait (``wait_for``). Both retry as ``_retry.py`` says.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar
from datetime import datetime
from uuid import UUID

import httpx

from notifications_client import _calls
from notifications_client._calls import Call
from notifications_client._errors import NotificationsError, TransportError, WaitTimeout, error_from_response, find_cause
from notifications_client import _models as models
from notifications_client._models import Personalisation
from notifications_client._retry import RETRIED_STATUSES, RetryPolicy, parse_retry_after

T = TypeVar("T")
log = logging.getLogger("notifications_client")

# The local stack's: `make up` serves the API here and the ops port beside it, with the
# certificates in mtls/ (or $MTLS_DIR).
DEFAULT_BASE_URL = "https://localhost:8443"
DEFAULT_OPS_URL = "http://127.0.0.1:9000"
DEFAULT_TIMEOUT_SECONDS = 15.0
CA_FILE, CERT_FILE, KEY_FILE = "ca.crt.pem", "client.crt.pem", "client.key.pem"


def mtls_context(*, ca: Path | str | None = None, cert: Path | str | None = None, key: Path | str | None = None) -> ssl.SSLContext:
    """A TLS context that trusts ``ca`` and presents ``cert`` with ``key``; each defaults to its file
    in ``$MTLS_DIR``, else ``./mtls`` (``ca.crt.pem``, ``client.crt.pem``, ``client.key.pem``)."""
    directory = Path(os.environ.get("MTLS_DIR") or "mtls")
    context = ssl.create_default_context(cafile=str(ca or directory / CA_FILE))
    context.load_cert_chain(str(cert or directory / CERT_FILE), str(key or directory / KEY_FILE))
    return context


class _Attempts:
    """One call's attempts: whether to try again after each failure, and how long to wait first."""

    def __init__(self, call: Call[Any], policy: RetryPolicy, rng: random.Random) -> None:
        self.call, self.policy, self.rng, self.number = call, policy, rng, 1

    def after_response(self, response: httpx.Response) -> float | None:
        """None: the answer is final (read it with ``result``); else seconds to wait."""
        if response.is_success or response.status_code in self.call.answers or response.status_code not in RETRIED_STATUSES:
            return None
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return self._next(retry_after, f"{response.status_code} (Retry-After: {response.headers.get('Retry-After')})")

    def after_transport_error(self, exc: httpx.TransportError, url: str) -> float:
        """Seconds to wait, or the TransportError to raise."""
        # The certificates are refused or untrusted: trying again changes nothing.
        permanent = find_cause(exc, ssl.SSLError) is not None
        # Only a connection never made cannot have delivered the request.
        unsent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
        delay = None if permanent or not (self.call.repeatable or unsent) else self._next(None, repr(exc))
        if delay is None:
            raise TransportError(f"cannot reach the gateway at {url} ({self.call.method} {self.call.path}): {_describe(exc)}") from exc
        return delay

    def result(self, response: httpx.Response) -> Any:
        if response.is_success or response.status_code in self.call.answers:
            return self.call.read(response)
        raise error_from_response(response, parse_retry_after(response.headers.get("Retry-After")))

    def _next(self, retry_after: float | None, why: str) -> float | None:
        delay = self.policy.delay(self.number, retry_after=retry_after, rng=self.rng)
        if delay is not None:
            log.info("retrying %s %s in %.2f s after attempt %d: %s", self.call.method, self.call.path, delay, self.number, why)
            self.number += 1
        return delay


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


class _Operations:
    """Every operation of the gateway. In ``AsyncClient`` each returns an awaitable of what it says
    (and the ``iter_*`` helpers async iterators)."""

    def _run(self, call: Call[T]) -> T:
        raise NotImplementedError

    def _iterate(self, page: Callable[[str | None], Call[Any]]) -> Any:
        raise NotImplementedError

    # -- recipients ------------------------------------------------------------------------

    def put_recipient(self, name: str, contacts: models.RecipientContacts | Mapping[str, Any] | None = None, **fields: Any) -> None:
        """Create or replace a recipient: ``phone_number``, ``email``, ``slack_id`` (at least one)."""
        return self._run(_calls.put_recipient(name, contacts, **fields))

    def get_recipient(self, name: str) -> models.Recipient:
        return self._run(_calls.get_recipient(name))

    def delete_recipient(self, name: str) -> None:
        """Delete a recipient (also when there is none); accepted notifications are still delivered."""
        return self._run(_calls.delete_recipient(name))

    def list_recipients(self, *, limit: int | None = None, cursor: str | None = None) -> models.RecipientPage:
        return self._run(_calls.list_recipients(limit, cursor))

    def iter_recipients(self, *, limit: int | None = None) -> Iterator[models.Recipient]:
        """Every recipient by name, following ``next_cursor`` (``limit``: the page size)."""
        return self._iterate(lambda cursor: _calls.list_recipients(limit, cursor))

    def put_preferences(self, name: str, preferences: models.Preferences | Mapping[str, Any] | None = None, **fields: Any) -> None:
        """Replace a recipient's preferences: ``channels`` and ``categories`` turned off."""
        return self._run(_calls.put_preferences(name, preferences, **fields))

    def get_preferences(self, name: str) -> models.PreferencesState:
        return self._run(_calls.get_preferences(name))

    # -- templates -------------------------------------------------------------------------

    def put_template(self, name: str, content: models.TemplateContent | Mapping[str, Any] | None = None, **fields: Any) -> models.Template:
        """Create a template or its next version (``sms``, ``email``, ``slack``, ``category``);
        ``created`` says whether it was the first."""
        return self._run(_calls.put_template(name, content, **fields))

    def get_template(self, name: str, *, version: int | None = None) -> models.Template:
        """The latest version, or ``version``."""
        return self._run(_calls.get_template(name, version))

    def delete_template(self, name: str) -> None:
        return self._run(_calls.delete_template(name))

    def list_templates(self, *, limit: int | None = None, cursor: str | None = None) -> models.TemplatePage:
        return self._run(_calls.list_templates(limit, cursor))

    def iter_templates(self, *, limit: int | None = None) -> Iterator[models.Template]:
        """Every template (its latest version) by name, following ``next_cursor``."""
        return self._iterate(lambda cursor: _calls.list_templates(limit, cursor))

    def preview_template(self, name: str, personalisation: Personalisation | None = None) -> models.Rendered:
        return self._run(_calls.preview_template(name, personalisation))

    # -- notifications ---------------------------------------------------------------------

    def send(
        self,
        recipient: str | None = None,
        *,
        message: str | None = None,
        subject: str | None = None,
        template: str | None = None,
        template_version: int | None = None,
        personalisation: Personalisation | None = None,
        channels: list[models.Channel | str] | None = None,
        category: str | None = None,
        send_at: datetime | None = None,
        delivery: models.DeliveryMode | str | None = None,
        idempotency_key: str | None = None,
        notification: models.NotificationRequest | Mapping[str, Any] | None = None,
    ) -> models.NotificationAccepted:
        """Send a message, or a template with its personalisation (or a whole ``notification``).
        Every retry repeats one ``Idempotency-Key`` (``idempotency_key``, else a new UUID), so a
        retried send is never sent twice; ``replayed`` says the gateway had it already."""
        fields = {
            "recipient": recipient,
            "message": message,
            "subject": subject,
            "template": template,
            "template_version": template_version,
            "personalisation": personalisation,
            "channels": channels,
            "category": category,
            "send_at": send_at,
            "delivery": delivery,
        }
        return self._run(_calls.send(notification, idempotency_key, **fields))

    def send_batch(
        self, notifications: Sequence[models.NotificationBatchItem | Mapping[str, Any]], *, idempotency_key: str | None = None
    ) -> models.BatchResults:
        """Up to 1,000 notifications at once (each what ``send`` takes, and a ``reference``), each
        judged on its own: a result per item. Retries repeat one Idempotency-Key for the batch."""
        return self._run(_calls.send_batch(notifications, idempotency_key))

    def get_notification(self, notification_id: UUID | str) -> models.Notification:
        """A notification of this client and each channel's delivery."""
        return self._run(_calls.get_notification(notification_id))

    def cancel(self, notification_id: UUID | str) -> models.Notification:
        """Cancel a scheduled notification of this client (its deliveries become cancelled);
        Conflict once it was released."""
        return self._run(_calls.cancel_notification(notification_id))

    # -- CSV jobs ------------------------------------------------------------------------

    def create_job(
        self, csv: bytes | str, *, template: str, name: str | None = None, send_at: Any = None, dry_run: bool = False
    ) -> models.Job | models.JobDryRun:
        """Send ``template`` to every row of ``csv`` (POST /jobs): the Job, or with ``dry_run``
        what it would send (JobDryRun); ValidationError listing the rows' errors in ``.body``."""
        return self._run(_calls.create_job(csv, template=template, name=name, send_at=send_at, dry_run=dry_run))

    def job(self, job_id: UUID | str) -> models.Job:
        """A job of this client with its deliveries counted per channel and status."""
        return self._run(_calls.get_job(job_id))

    def jobs(self, *, limit: int | None = None, cursor: str | None = None) -> models.JobPage:
        """This client's jobs, oldest first, a page at a time."""
        return self._run(_calls.list_jobs(limit, cursor))

    def job_notifications(
        self, job_id: UUID | str, *, status: models.DeliveryStatus | str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> models.JobNotificationPage:
        """A page of a job's notifications, in row order (``status``: those with a delivery in it)."""
        return self._run(_calls.list_job_notifications(job_id, status, limit, cursor))

    def cancel_job(self, job_id: UUID | str) -> models.Job:
        """Cancel what is not yet released of a job; Conflict when everything was."""
        return self._run(_calls.cancel_job(job_id))

    # -- suppressions ----------------------------------------------------------------------

    def list_suppressions(
        self, *, channel: models.Channel | str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> models.SuppressionPage:
        """Suppressed addresses by channel and address, a page at a time (``channel``: only its own)."""
        return self._run(_calls.list_suppressions(channel, limit, cursor))

    def iter_suppressions(self, *, channel: models.Channel | str | None = None, limit: int | None = None) -> Iterator[models.Suppression]:
        """Every suppressed address, following ``next_cursor``."""
        return self._iterate(lambda cursor: _calls.list_suppressions(channel, limit, cursor))

    def lift_suppression(self, channel: models.Channel | str, address: str) -> None:
        """Send to the address again; NotFound when it is not suppressed."""
        return self._run(_calls.lift_suppression(channel, address))

    # -- callbacks -------------------------------------------------------------------------

    def put_callback(self, url: str, *, events: list[models.CallbackEventType | str] | None = None) -> models.CallbackCreated:
        """Set this client's status callback; the answer has the signing secret."""
        return self._run(_calls.put_callback(models.CallbackSettings.model_validate({"url": url, "events": events})))

    def get_callback(self) -> models.Callback:
        return self._run(_calls.get_callback())

    def delete_callback(self) -> None:
        return self._run(_calls.delete_callback())

    def rotate_callback_secret(self) -> models.CallbackCreated:
        """A new signing secret; the previous one signs beside it for the gateway's grace period."""
        return self._run(_calls.rotate_callback_secret())

    # -- operations ------------------------------------------------------------------------

    def health(self) -> models.Health:
        """The gateway's readiness (its ops port's ``/readyz``): ``ready`` and each check."""
        return self._run(_calls.health())


class _ClientBase(_Operations):
    """What both clients are made of: where the gateway is, the TLS context, the retry policy."""

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        ops_url: str = DEFAULT_OPS_URL,
        ca: Path | str | None = None,
        cert: Path | str | None = None,
        key: Path | str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        retry: RetryPolicy = RetryPolicy(),
        transport: httpx.BaseTransport | httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._base_url, self._ops_url = base_url.rstrip("/"), ops_url.rstrip("/")
        self._retry, self._rng = retry, random.Random()
        self._http = self._http_client(verify=ssl_context or mtls_context(ca=ca, cert=cert, key=key), timeout=timeout, transport=transport)

    def _http_client(self, **options: Any) -> Any:
        raise NotImplementedError

    def _request(self, call: Call[Any]) -> httpx.Request:
        url = f"{self._ops_url if call.ops else self._base_url}{call.path}"
        return self._http.build_request(call.method, url, json=call.json, content=call.content, params=call.params, headers=call.headers)

    def _attempts(self, call: Call[Any]) -> _Attempts:
        return _Attempts(call, self._retry, self._rng)


class Client(_ClientBase):
    """The gateway, synchronously. ``with Client() as client: client.send(...)``.

    ``base_url`` the API (https), ``ops_url`` its ops port (``health``); the certificates
    ``ca``, ``cert``, ``key`` (see ``mtls_context``), or a ready ``ssl_context``; ``timeout`` per
    request, in seconds; ``retry`` the policy (``NO_RETRIES`` for none); ``transport`` an httpx
    transport (tests)."""

    _sleep: Callable[[float], None] = staticmethod(time.sleep)  # type: ignore[assignment]

    def _http_client(self, **options: Any) -> httpx.Client:
        return httpx.Client(**options)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _run(self, call: Call[T]) -> T:
        attempts = self._attempts(call)
        while True:
            try:
                response = self._http.send(self._request(call))
            except httpx.TransportError as exc:
                delay = attempts.after_transport_error(exc, self._base_url)
            else:
                delay = attempts.after_response(response)
                if delay is None:
                    return attempts.result(response)
            self._sleep(delay)

    def _iterate(self, page: Callable[[str | None], Call[Any]]) -> Iterator[Any]:
        cursor = None
        while True:
            answer = self._run(page(cursor))
            yield from answer.items
            if not (cursor := answer.next_cursor):
                return

    def wait_for(self, notification_id: UUID | str, *, status: str = "sent", timeout: float = 60.0, interval: float = 0.5) -> models.Notification:
        """Poll until every delivery is ``status`` ("sent" or "delivered"; a skipped one needs
        nothing); DeliveryFailed if one fails or is cancelled, WaitTimeout after ``timeout`` s."""
        wanted, deadline = _calls.wanted_status(status), time.monotonic() + timeout
        while not _calls.arrived(notification := self.get_notification(notification_id), wanted):
            if time.monotonic() >= deadline:
                raise WaitTimeout(notification, status, timeout)
            self._sleep(interval)
        return notification


class AsyncClient(_ClientBase):
    """The gateway, asynchronously: ``Client``'s methods, each awaited (``iter_*`` with ``async for``)."""

    _sleep: Callable[[float], Awaitable[None]] = staticmethod(asyncio.sleep)  # type: ignore[assignment]

    def _http_client(self, **options: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(**options)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    async def _run(self, call: Call[T]) -> T:  # type: ignore[override]
        attempts = self._attempts(call)
        while True:
            try:
                response = await self._http.send(self._request(call))
            except httpx.TransportError as exc:
                delay = attempts.after_transport_error(exc, self._base_url)
            else:
                delay = attempts.after_response(response)
                if delay is None:
                    return attempts.result(response)
            await self._sleep(delay)

    async def _iterate(self, page: Callable[[str | None], Call[Any]]) -> AsyncIterator[Any]:  # type: ignore[override]
        cursor = None
        while True:
            answer = await self._run(page(cursor))
            for item in answer.items:
                yield item
            if not (cursor := answer.next_cursor):
                return

    async def wait_for(
        self, notification_id: UUID | str, *, status: str = "sent", timeout: float = 60.0, interval: float = 0.5
    ) -> models.Notification:
        """As ``Client.wait_for``."""
        wanted, deadline = _calls.wanted_status(status), time.monotonic() + timeout
        while not _calls.arrived(notification := await self.get_notification(notification_id), wanted):  # type: ignore[misc]
            if time.monotonic() >= deadline:
                raise WaitTimeout(notification, status, timeout)
            await self._sleep(interval)
        return notification


__all__ = ["AsyncClient", "Client", "NotificationsError", "mtls_context"]
