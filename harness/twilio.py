"""Twilio's Programmable Messaging API as WireMock plays it: the messages created, and scripted errors.

The stack's file mapping (``stack/wiremock/mappings/twilio-messages.json``) answers a well-formed
create-message call with 201 and a ``sid``; the errors here are Twilio's real bodies
(``{"code", "message", "more_info", "status"}``).
"""

from __future__ import annotations

import re
from typing import Any

from harness.slack import journal_time
from stack.wiremock_server import WireMock

MESSAGES_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<account>[^/]+)/Messages\.json$")
MESSAGES_PATH_PATTERN = r"/2010-04-01/Accounts/[^/]+/Messages\.json"
# Twilio's own texts for the codes the sender classifies.
ERROR_MESSAGES = {
    20003: (401, "Authenticate"),
    20429: (429, "Too Many Requests"),
    21211: (400, "The 'To' number +0123 is not a valid phone number."),
    21610: (400, "Attempt to send to unsubscribed recipient"),
}


class Twilio:
    def __init__(self, wiremock: WireMock) -> None:
        self.wiremock = wiremock

    def messages(self, *, to: str | None = None, body: str | None = None) -> list[dict[str, Any]]:
        """Create-message requests received (their form fields, plus ``account``, ``authorization``,
        ``timestamp`` (unix seconds) and the answer's ``status``), oldest first."""
        found = []
        for request in self.wiremock.requests():
            matched = MESSAGES_PATH.match(request["path"] or "")
            form = request["body"]
            if not matched or not isinstance(form, dict):
                continue
            if (to is None or form.get("To") == to) and (body is None or form.get("Body") == body):
                headers = {name.lower(): value for name, value in (request["headers"] or {}).items()}
                found.append(
                    {
                        **form,
                        "account": matched["account"],
                        "authorization": headers.get("authorization"),
                        "timestamp": journal_time(request),
                        "status": request["status"],
                    }
                )
        return found

    def answer_every_message(self, response: dict[str, Any]) -> str:
        """Answer every create-message call with ``response``, ahead of the stack's mapping; returns its id."""
        return self.wiremock.add_mapping(
            {"priority": 1, "request": {"method": "POST", "urlPathPattern": MESSAGES_PATH_PATTERN}, "response": response}
        )

    def answer_to(self, to: str, response: dict[str, Any]) -> str:
        """Answer create-message calls to this number with ``response``."""
        return self.wiremock.add_mapping(
            {
                "priority": 1,
                "request": {
                    "method": "POST",
                    "urlPathPattern": MESSAGES_PATH_PATTERN,
                    "formParameters": {"To": {"equalTo": to}},
                },
                "response": response,
            }
        )


def twilio_error(code: int, *, status: int | None = None, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """A Twilio error answer as the API sends it (status from ERROR_MESSAGES unless given)."""
    default_status, message = ERROR_MESSAGES.get(code, (status or 400, f"error {code}"))
    status = status or default_status
    return {
        "status": status,
        "headers": {"Content-Type": "application/json; charset=utf-8", **(headers or {})},
        "jsonBody": {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status},
    }


def twilio_server_error(status: int = 503) -> dict[str, Any]:
    """A 5xx from Twilio's edge: an HTML body, no Twilio error code."""
    return {"status": status, "headers": {"Content-Type": "text/html"}, "body": "<html><body>Service Unavailable</body></html>"}
