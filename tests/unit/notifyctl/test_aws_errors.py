"""botocore's errors as notifyctl's exit codes (notifyctl/aws_errors.py)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from notifyctl.aws_errors import translated_aws_errors
from notifyctl.errors import ExitCode, NotifyctlError


def _client_error(code: str, status: int) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": f"{code} happened"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "DoIt")


@pytest.mark.parametrize(
    "error, exit_code, words",
    [
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), ExitCode.UNAVAILABLE, "cannot reach AWS at http://127.0.0.1:1"),
        (ReadTimeoutError(endpoint_url="http://127.0.0.1:1"), ExitCode.UNAVAILABLE, "AWS: "),
        (_client_error("ThrottlingException", 400), ExitCode.UNAVAILABLE, "AWS is throttling or failing (ThrottlingException): try again later"),
        (_client_error("Throttling", 400), ExitCode.UNAVAILABLE, "try again later"),
        (_client_error("SomethingNew", 503), ExitCode.UNAVAILABLE, "try again later"),
        (_client_error("AccessDeniedException", 400), ExitCode.FAILED, "AWS refused: "),
        (_client_error("AWS.SimpleQueueService.NonExistentQueue", 400), ExitCode.FAILED, "notifyctl topology create"),
    ],
)
def test_exit_codes(error: Exception, exit_code: ExitCode, words: str) -> None:
    with pytest.raises(NotifyctlError) as raised, translated_aws_errors():
        raise error
    assert raised.value.exit_code == exit_code
    assert words in raised.value.message


def test_other_errors_pass_through() -> None:
    with pytest.raises(KeyError), translated_aws_errors():
        raise KeyError("not AWS")
