"""What a call can raise: one hierarchy, caught at the level the caller cares about.

``NotificationsError``
  ``TransportError``: the gateway could not be reached, or the connection broke, after the
  retries (``__cause__`` is httpx's exception: TLS refusals show there).
  ``ApiError``: the gateway answered with an error; ``status``, the server's ``message`` and the
  ``field`` at fault (when one is), and ``retry_after`` (seconds) when it said.
    ``ValidationError`` (400, 422), ``Unauthenticated`` (401), ``Forbidden`` (403: the certificate
    lacks the role), ``NotFound`` (404), ``Conflict`` (409: e.g. an Idempotency-Key reused with
    another body), ``PayloadTooLarge`` (413), ``RateLimited`` (429), ``ServiceUnavailable``
    (503), ``ServerError`` (any other 5xx).
  ``DeliveryFailed``: ``wait_for`` saw a delivery end ``failed`` or ``cancelled``.
  ``WaitTimeout`` (also a ``TimeoutError``): ``wait_for`` ran out of time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

import httpx

if TYPE_CHECKING:
    from notifications_client._models import Notification

E = TypeVar("E", bound=BaseException)


class NotificationsError(Exception):
    """Anything this client raises."""


class TransportError(NotificationsError):
    def cause_of(self, kind: type[E]) -> E | None:
        """The first exception of ``kind`` among its causes: ``ssl.SSLError`` when TLS refused,
        ``OSError`` for the system's reason."""
        return find_cause(self, kind)


def find_cause(exc: BaseException, kind: type[E]) -> E | None:
    """``exc`` or the first of its causes (or contexts) that is a ``kind``."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


class ApiError(NotificationsError):
    status: int = 0

    def __init__(self, message: str, *, status: int, field: str | None = None, retry_after: float | None = None, body: Any = None) -> None:
        super().__init__(f"{status}: {message}" + (f" (field {field})" if field else ""))
        self.message, self.status, self.field, self.retry_after, self.body = message, status, field, retry_after, body


class ValidationError(ApiError):
    pass


class Unauthenticated(ApiError):
    pass


class Forbidden(ApiError):
    pass


class NotFound(ApiError):
    pass


class Conflict(ApiError):
    pass


class PayloadTooLarge(ApiError):
    pass


class RateLimited(ApiError):
    pass


class ServiceUnavailable(ApiError):
    pass


class ServerError(ApiError):
    pass


class DeliveryFailed(NotificationsError):
    def __init__(self, notification: Notification, channels: list[str]) -> None:
        reasons = {channel: notification.deliveries[channel] for channel in channels}  # type: ignore[index]
        details = "; ".join(f"{channel} {delivery.status}: {delivery.last_error or 'no reason given'}" for channel, delivery in reasons.items())
        super().__init__(f"notification {notification.id} did not arrive on {', '.join(channels)} ({details})")
        self.notification, self.channels = notification, channels


class WaitTimeout(NotificationsError, TimeoutError):
    def __init__(self, notification: Notification, status: str, timeout: float) -> None:
        pending = sorted(f"{channel}={delivery.status}" for channel, delivery in notification.deliveries.items())
        super().__init__(f"notification {notification.id} was not {status} after {timeout:g} s ({', '.join(pending)})")
        self.notification = notification


_BY_STATUS: dict[int, type[ApiError]] = {
    400: ValidationError,
    401: Unauthenticated,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    422: ValidationError,
    429: RateLimited,
    503: ServiceUnavailable,
}


def error_from_response(response: httpx.Response, retry_after: float | None) -> ApiError:
    """The typed error of a gateway's error answer (``{"message", "field"?}``, as every one is)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        message, field = body["message"], body.get("field")
    else:
        message, field = response.text.strip()[:200] or response.reason_phrase, None
    status = response.status_code
    kind = _BY_STATUS.get(status, ServerError if status >= 500 else ApiError)
    return kind(message, status=status, field=field, retry_after=retry_after, body=body)
