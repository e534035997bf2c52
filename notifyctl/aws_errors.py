"""botocore's errors as notifyctl's: what an operator can act on, with the exit code scripts rely on.

Unreachable, throttled or failing AWS is exit 4 (try again); a refusal (a missing resource, no
permission, an invalid request) is exit 1, with AWS's own words.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from notifyctl.errors import FailedError, NotifyctlError, UnavailableError

T = TypeVar("T")

# Error codes that mean "not now" rather than "no".
RETRYABLE_CODES = frozenset(
    {
        "Throttling", "ThrottlingException", "ThrottledException", "RequestLimitExceeded", "TooManyRequestsException",
        "RequestThrottled", "SlowDown", "ServiceUnavailable", "ServiceUnavailableException", "InternalFailure",
        "InternalError", "InternalServerError",
    }
)  # fmt: skip


@contextmanager
def translated_aws_errors() -> Iterator[None]:
    """Raise botocore's errors inside the block as NotifyctlError; anything else passes through."""
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

    try:
        yield
    except NotifyctlError:
        raise
    except EndpointConnectionError as exc:
        raise UnavailableError(f"cannot reach AWS at {exc.kwargs.get('endpoint_url')}: is the AWS emulator running (AWS_ENDPOINT_URL)?") from None
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = error.get("Code", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if "NonExistentQueue" in code or "QueueDoesNotExist" in code:
            raise FailedError("a queue does not exist; create the topology with `notifyctl topology create`") from None
        if code in RETRYABLE_CODES or status >= 500:
            raise UnavailableError(f"AWS is throttling or failing ({code or status}): try again later. {error.get('Message', '')}".strip()) from None
        raise FailedError(f"AWS refused: {exc}") from None
    except BotoCoreError as exc:
        raise UnavailableError(f"AWS: {exc}") from None


def run_translated(main: Callable[[], Awaitable[T]], *, database_url: str) -> T:
    """Run ``main()`` to completion; AWS errors and an unreachable database (``database_url``'s)
    become NotifyctlError, so the command exits with their code."""
    from shared.database import is_database_unavailable

    try:
        with translated_aws_errors():
            return asyncio.run(main())
    except NotifyctlError:
        raise
    except Exception as exc:
        if is_database_unavailable(exc):
            raise UnavailableError(f"cannot reach the database ({database_url.split('@')[-1]}): {exc}") from None
        raise
