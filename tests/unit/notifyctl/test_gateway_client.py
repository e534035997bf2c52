"""notifyctl/gateway_client.py: the gateway's answers mapped to exit codes."""

from __future__ import annotations

import httpx
import pytest

from notifyctl.errors import ExitCode
from notifyctl.gateway_client import _http_error


class TestGatewayErrorMapping:
    @pytest.mark.parametrize(
        ("status", "code"),
        [(400, ExitCode.FAILED), (404, ExitCode.FAILED), (409, ExitCode.FAILED), (403, ExitCode.REFUSED),
         (429, ExitCode.UNAVAILABLE), (503, ExitCode.UNAVAILABLE), (500, ExitCode.UNAVAILABLE)],
    )
    def test_status_to_exit_code(self, status: int, code: ExitCode) -> None:
        response = httpx.Response(status, json={"message": "why", "field": "recipient"}, headers={"Retry-After": "3"})
        error = _http_error(response)
        assert (error.exit_code, error.message, error.status) == (code, "why", status)
        if code is ExitCode.UNAVAILABLE:
            assert error.details["retry_after_seconds"] == 3
