"""notifyctl/gateway_client.py: the client library's errors mapped to exit codes."""

from __future__ import annotations

import pytest

from notifications_client import ApiError, Conflict, Forbidden, NotFound, RateLimited, ServerError, ServiceUnavailable, ValidationError
from notifyctl.errors import ExitCode
from notifyctl.gateway_client import api_error


class TestApiError:
    @pytest.mark.parametrize(
        ("kind", "status", "code"),
        [(ValidationError, 400, ExitCode.FAILED), (NotFound, 404, ExitCode.FAILED), (Conflict, 409, ExitCode.FAILED),
         (ApiError, 413, ExitCode.FAILED), (Forbidden, 403, ExitCode.REFUSED), (RateLimited, 429, ExitCode.UNAVAILABLE),
         (ServiceUnavailable, 503, ExitCode.UNAVAILABLE), (ServerError, 500, ExitCode.UNAVAILABLE)],
    )
    def test_status_to_exit_code(self, kind: type[ApiError], status: int, code: ExitCode) -> None:
        error = api_error(kind("why", status=status, field="recipient", retry_after=3.0))
        assert (error.exit_code, error.message, error.status, error.details["field"]) == (code, "why", status, "recipient")
        if code is ExitCode.UNAVAILABLE:
            assert error.details["retry_after_seconds"] == 3

    def test_a_fraction_of_a_second_is_kept(self) -> None:
        assert api_error(RateLimited("slow down", status=429, retry_after=0.5)).details == {"retry_after_seconds": 0.5}
