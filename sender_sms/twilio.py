"""How an SMS is sent through Twilio: one Programmable Messaging create-message call.

``POST {TWILIO_BASE_URL}/2010-04-01/Accounts/{AccountSid}/Messages.json``, form-encoded ``To``,
``From`` (or ``MessagingServiceSid`` for an "MG..." sender) and ``Body``, HTTP basic auth with
the account SID and auth token. Twilio answers 201 with the message's ``sid`` and ``status``
(``queued``), or an error ``{"code": 21211, "message": ..., "more_info": ..., "status": 400}``.

On aiohttp (already loaded: aiobotocore runs on it) rather than the ``twilio`` package: twilio
9.13's client with its async HTTP client and the messages resource added 11.9 MB of RSS to a
process that had imported aioboto3 and aiohttp (48.3 MB), a quarter of the room left under
the sender's 100 MB target, for one API call (the Slack sender left slack_sdk out for 3 MB).
Retries are the runtime's; the failover to another provider is ``shared/failover.py``'s.
"""

from __future__ import annotations

from typing import Any

import aiohttp

from shared.backoff import retry_after_seconds
from shared.channels import Channel
from shared.http_provider import HttpProvider, json_object
from shared.messages import NotificationMessage
from shared.providers import (
    PermanentSendError,
    ProviderAccountError,
    SendError,
    SendResult,
    TransientSendError,
)

from sender_sms.settings import SmsSenderSettings

# Errors about the recipient: another provider would fail the same way.
RECIPIENT_ERROR_CODES = frozenset(
    {
        21211,  # invalid 'To' phone number
        21217,  # phone number does not appear to be valid
        21610,  # the recipient unsubscribed (replied STOP)
        21612,  # the 'To' number cannot be reached from the 'From' number
        21614,  # 'To' is not a mobile number
    }
)
# Errors about our account or configuration at Twilio: fail over and open the breaker.
ACCOUNT_ERROR_CODES = frozenset(
    {
        20003,  # authentication failed
        20005,  # account not active (suspended, closed)
        21212,  # invalid 'From' number
        21408,  # sending to this region is not enabled on the account
        21606,  # the 'From' number cannot send SMS
        21659,  # 'From' is not a Twilio number of this account
    }
)
TOO_MANY_REQUESTS = 20429


class TwilioProvider(HttpProvider):
    channel = Channel.SMS

    def __init__(self, settings: SmsSenderSettings) -> None:
        super().__init__(settings)
        self._url = (
            f"{settings.twilio_base_url.rstrip('/')}/2010-04-01/Accounts/{settings.twilio_account_sid}/Messages.json"
        )
        self._headers = {
            "Authorization": aiohttp.encode_basic_auth(settings.twilio_account_sid, settings.twilio_auth_token.get_secret_value())
        }
        sender = settings.twilio_from
        self._from_field = {"MessagingServiceSid": sender} if sender.startswith("MG") else {"From": sender}

    async def send(self, message: NotificationMessage) -> SendResult:
        phone_number = message.recipient.phone_number
        if not phone_number:
            raise PermanentSendError("recipient has no phone number", code="no_phone_number")
        form = {"To": phone_number, **self._from_field, "Body": message.sms_content().body}
        try:
            async with self.session.post(self._url, data=form, headers=self._headers) as response:
                status, retry_after = response.status, response.headers.get("Retry-After")
                raw = await response.read()
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise TransientSendError(f"Twilio unreachable: {type(exc).__name__}: {exc}", code="connection_error") from exc
        data = json_object(raw)
        if status in (200, 201) and data is not None and data.get("sid"):
            return SendResult(provider_message_id=str(data["sid"]))
        raise classify_twilio_response(status=status, data=data, retry_after=retry_after)


def classify_twilio_response(*, status: int, data: dict[str, Any] | None, retry_after: str | None) -> SendError:
    """A failed create-message call as a send error (the code tables above)."""
    code = data.get("code") if data is not None else None
    text = data.get("message") if data is not None else None
    reason = f"Twilio error {code}: {text}" if code is not None else f"Twilio answered HTTP {status}"
    if status == 429 or code == TOO_MANY_REQUESTS:
        return TransientSendError(reason, code="too_many_requests", retry_after=retry_after_seconds(retry_after))
    if status >= 500:
        return TransientSendError(reason, code="server_error")
    if code in ACCOUNT_ERROR_CODES or status in (401, 403):
        return ProviderAccountError(reason, code=f"twilio_{code}" if code is not None else "unauthorized")
    if code in RECIPIENT_ERROR_CODES or (isinstance(code, int) and 400 <= status < 500):
        # A coded 4xx not listed is still about this request (a body too long, a bad parameter).
        return PermanentSendError(reason, code=f"twilio_{code}")
    # No Twilio error body: not Twilio's API answering (a proxy, a wrong URL). Keep the message.
    return TransientSendError(f"unexpected Twilio response: HTTP {status}", code="unexpected_response")
