"""What can go wrong, as exceptions that carry the exit code scripts rely on.

====  ============  ==========================================================================
code  name          meaning
====  ============  ==========================================================================
0     OK            done
1     FAILED        refused for its content (400 invalid input, 404 unknown recipient or
                    notification, 409), or an operation that did not complete (topology
                    differences, messages left in a DLQ, a certificate error); a delivery that
                    ended ``failed`` under ``status --wait``
2     USAGE         bad command line (Click's convention), and values it refuses before
                    doing anything (``scale`` bounds outside what Terraform allows)
3     REFUSED       who you are: the gateway refused the client certificate in the TLS
                    handshake (unknown CA, revoked, expired), the certificate lacks the role
                    (403), or the local certificate files are missing or unusable
4     UNAVAILABLE   try again later: the gateway, AWS or the database cannot be reached,
                    the gateway answered 429 (rate limit) or 5xx
5     NOT_DONE      ``status --wait`` gave up before every delivery was final
====  ============  ==========================================================================
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2
    REFUSED = 3
    UNAVAILABLE = 4
    NOT_DONE = 5


class NotifyctlError(Exception):
    """A failure to report in one sentence, with the exit code it maps to."""

    exit_code: ExitCode = ExitCode.FAILED

    def __init__(self, message: str, *, status: int | None = None, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status  # the gateway's HTTP status, when it answered
        self.details = details or {}

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"message": self.message, "exit_code": int(self.exit_code), "kind": self.exit_code.name.lower()}
        if self.status is not None:
            body["status"] = self.status
        return {**body, **self.details}


class FailedError(NotifyctlError):
    exit_code = ExitCode.FAILED


class BadCommandLineError(NotifyctlError):
    exit_code = ExitCode.USAGE


class RefusedError(NotifyctlError):
    exit_code = ExitCode.REFUSED


class UnavailableError(NotifyctlError):
    exit_code = ExitCode.UNAVAILABLE


class NotDoneError(NotifyctlError):
    exit_code = ExitCode.NOT_DONE
