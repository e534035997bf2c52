"""The provider interface's error types and the AWS error classification SNS and SES share."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from shared.providers import PermanentSendError, SendError, TransientSendError, classify_aws_error


def client_error(code: str, message: str = "details", status: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Publish"
    )


class TestClassifyAwsError:
    @pytest.mark.parametrize(
        ("code", "metric_code"),
        [
            ("InvalidParameter", "invalid_parameter"),
            ("InvalidParameterValue", "invalid_parameter_value"),
            ("MessageRejected", "message_rejected"),
            ("ValidationError", "validation_error"),
        ],
    )
    def test_problems_with_this_message_are_permanent(self, code: str, metric_code: str) -> None:
        error = classify_aws_error(client_error(code, "Phone number does not meet the E164 format"))
        assert isinstance(error, PermanentSendError)
        assert error.reason == f"{code}: Phone number does not meet the E164 format"
        assert error.code == metric_code

    @pytest.mark.parametrize(
        ("code", "status"),
        [
            ("Throttling", 400),
            ("ThrottlingException", 400),
            ("InternalError", 500),
            ("ServiceUnavailable", 503),
            ("AccessDenied", 403),  # our configuration, not the message: fix it and replay
        ],
    )
    def test_everything_else_is_transient(self, code: str, status: int) -> None:
        error = classify_aws_error(client_error(code, status=status))
        assert isinstance(error, TransientSendError)
        assert error.retry_after is None

    def test_timeouts_and_connection_errors_are_transient(self) -> None:
        timeout = classify_aws_error(ReadTimeoutError(endpoint_url="http://sns"))
        assert isinstance(timeout, TransientSendError) and timeout.code == "timeout"
        unreachable = classify_aws_error(EndpointConnectionError(endpoint_url="http://sns"))
        assert isinstance(unreachable, TransientSendError) and unreachable.code == "connection_error"

    def test_unknown_exceptions_are_transient(self) -> None:
        error = classify_aws_error(RuntimeError("???"))
        assert isinstance(error, TransientSendError)
        assert error.reason == "RuntimeError: ???"


class TestSendError:
    def test_code_is_a_tame_metric_label(self) -> None:
        assert SendError("x", code="Weird Code/with:stuff").code == "weird_code_with_stuff"
        assert len(SendError("x", code="a" * 200).code) == 48
        assert SendError("x", code="").code == "error"

    def test_hierarchy(self) -> None:
        assert issubclass(TransientSendError, SendError) and issubclass(PermanentSendError, SendError)
        assert TransientSendError("later", retry_after=3).retry_after == 3
