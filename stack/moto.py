"""moto's server as the AWS emulator: stock, or with the fixes to its SQS in :mod:`stack.patched_moto`."""

from __future__ import annotations

import email.utils
import sys
from pathlib import Path
from typing import Any

from stack.emulator import Emulator, raw_email, sent_sms, simple_email
from stack.network import http_json, wait_for_http
from stack.processes import REPO_ROOT, ManagedProcess


class MotoServer(Emulator):
    """moto's AWS emulator (SNS, SQS, SES, ...) as a child process on ``host:port``.

    ``patched=True`` runs ``python -m stack.patched_moto`` instead of ``python -m moto.server``:
    the same server with three fixes to its SQS, for runs that push thousands of messages.
    """

    name = "moto"
    # moto exits on SIGTERM only after its request threads finish, and an SQS long poll keeps one
    # busy for up to 20 s; it has nothing to flush, so do not wait long before SIGKILL.
    stop_timeout = 2.0

    def __init__(self, port: int, *, host: str = "127.0.0.1", log_path: Path | None = None, patched: bool = False) -> None:
        super().__init__(port, host=host, log_path=log_path)
        self.patched = patched

    def _launch(self) -> ManagedProcess:
        module = "stack.patched_moto" if self.patched else "moto.server"
        argv = [sys.executable, "-m", module, "-H", self.host, "-p", str(self.port)]
        return ManagedProcess(self.name, argv, cwd=REPO_ROOT, log_path=self.log_path).start()

    def _wait_ready(self, timeout: float) -> None:
        assert self.process is not None
        wait_for_http(f"{self.endpoint_url}/moto-api/data.json", timeout=timeout, process=self.process)

    def reset(self) -> None:
        http_json("POST", f"{self.endpoint_url}/moto-api/reset")

    def data(self) -> dict[str, Any]:
        """moto's whole state: ``{service: {model: [objects]}}`` over all accounts and regions."""
        return http_json("GET", f"{self.endpoint_url}/moto-api/data.json")

    def sent_emails(self) -> list[dict[str, Any]]:
        """See :meth:`Emulator.sent_emails`; SES v1 and v2 alike."""
        ses = self.data().get("ses", {})
        emails = [
            simple_email(
                message["id"],
                source=message["source"],
                destinations=message.get("destinations") or {},
                subject=message.get("subject"),
                body=message.get("body"),
            )
            for message in ses.get("Message", [])
        ]
        return emails + [_raw_email(message) for message in ses.get("RawMessage", [])]

    def sent_sms(self) -> list[dict[str, Any]]:
        return [
            sent_sms(message.get("message_id"), message["phone_number"], message["message"])
            for message in self.data().get("sns", {}).get("SMS", [])
        ]


def _raw_email(message: dict[str, Any]) -> dict[str, Any]:
    # moto lists each destination twice for raw sends, as given and as the To header spells it
    # ("Demo <demo@example.com>"); keep each address once, in order.
    addresses = email.utils.getaddresses(message.get("destinations", []))
    destination = list(dict.fromkeys(address for _name, address in addresses if address))
    return raw_email(message["id"], message.get("raw_data", ""), source=message.get("source"), destination=destination)
