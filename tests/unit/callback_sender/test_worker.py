"""What the callback sender decides after an attempt (callback_sender/worker.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from callback_sender.repository import ClaimedEvent
from callback_sender.settings import CallbackSenderSettings
from callback_sender.webhook import Attempt
from callback_sender.worker import CallbackWorker


def _worker(**settings: float) -> CallbackWorker:
    return CallbackWorker(settings=CallbackSenderSettings(**settings), database=None, client=None)  # type: ignore[arg-type]


def _event(*, attempts: int = 1, age_seconds: float = 0.0) -> ClaimedEvent:
    return ClaimedEvent(
        id=uuid.uuid4(), client="acme", type="delivery.sent", data={}, attempts=attempts, url="https://example.com/",
        occurred_at=datetime.now(UTC) - timedelta(seconds=age_seconds), secrets=("whsec_AAAA",),
    )


class TestDecide:
    def test_delivered(self) -> None:
        assert _worker()._decide(_event(), Attempt("delivered", status=204)).kind == "delivered"

    def test_a_transient_failure_backs_off_exponentially(self) -> None:
        worker = _worker(backoff_base_seconds=5, backoff_max_seconds=3600)
        delays = [worker._decide(_event(attempts=n), Attempt("transient", "HTTP 503")).delay_seconds for n in (1, 2, 3, 10, 30)]
        assert 2.5 <= delays[0] <= 5 and 5 <= delays[1] <= 10 and 10 <= delays[2] <= 20
        assert 1280 <= delays[3] <= 2560 and 1800 <= delays[4] <= 3600  # 5 s x 2^9, then the 1 h cap

    def test_retry_after_wins(self) -> None:
        outcome = _worker()._decide(_event(), Attempt("transient", "HTTP 429", retry_after=120))
        assert (outcome.kind, outcome.delay_seconds) == ("retry", 120)
        assert outcome.failure is not None and outcome.failure["will_retry"] is True

    def test_given_up_once_the_next_attempt_would_be_past_the_retry_window(self) -> None:
        worker = _worker(retry_for_seconds=86_400, backoff_max_seconds=3600)
        assert worker._decide(_event(attempts=20, age_seconds=80_000), Attempt("transient", "timed out")).kind == "retry"
        outcome = worker._decide(_event(attempts=30, age_seconds=86_000), Attempt("transient", "timed out after 5 s"))
        assert outcome.kind == "give_up"
        assert outcome.error == "gave up after 30 attempts over 86400 s: timed out after 5 s"
        assert outcome.failure is not None and outcome.failure["will_retry"] is False

    def test_a_permanent_failure_is_given_up_at_once(self) -> None:
        outcome = _worker()._decide(_event(), Attempt("permanent", "HTTP 404"))
        assert (outcome.kind, outcome.error) == ("give_up", "HTTP 404")


class TestSettings:
    def test_the_lease_must_outlast_two_requests(self) -> None:
        with pytest.raises(ValueError, match="lease_seconds"):
            CallbackSenderSettings(timeout_seconds=20, lease_seconds=30)
