"""The callback sender's loop: events out of Postgres, signed POSTs to the clients' receivers.

What happens to an event
------------------------
0. **Written.** A delivery's status changes to one with an event (``sent``, ``delivered``,
   ``failed``, ``skipped``, ``cancelled``) and its notification's client has a callback that asks
   for it: the triggers on ``deliveries`` (migration 0007) insert the event in the same
   transaction as the change, whoever made it. A committed status change always has its event;
   a rolled-back one never has.
1. **Claimed.** Every ``CALLBACKS_POLL_INTERVAL_SECONDS`` (at once again after a pass that
   filled every free slot) a sender claims due events with ``FOR UPDATE SKIP LOCKED``: at most its
   free slots (``CALLBACKS_CONCURRENCY``) in all and at most
   ``CALLBACKS_MAX_IN_FLIGHT_PER_CLIENT`` per client, counting those it is already sending. A
   claim is a lease: the event's due time moves ``CALLBACKS_LEASE_SECONDS`` ahead, so other
   replicas skip it. Events of one client are not sent in order (a retry does not hold back the
   next event); each says what happened and when.
2. **Sent**, signed (``callback_sender/webhook.py``), within ``CALLBACKS_TIMEOUT_SECONDS``, to the
   callback's URL as it is now, through the SSRF rules of ``shared/callback_targets.py``.
3. **Recorded** (outcomes of requests that finish together go as one statement; recording is
   retried for about a minute while Postgres is unreachable):

   - *Delivered* (2xx): the event is deleted; the callback's ``last_success_at`` is set.
   - *Transient failure* (connection error, timeout, 5xx, 429, 408): the event is due again
     after ``compute_backoff(attempt)`` (exponential with jitter from
     ``CALLBACKS_BACKOFF_BASE_SECONDS`` up to ``CALLBACKS_BACKOFF_MAX_SECONDS``; the receiver's
     ``Retry-After`` wins), with the reason in ``last_error`` and the callback's
     ``last_failure``. When that would be more than ``CALLBACKS_RETRY_FOR_SECONDS`` (24 h) after
     the status change, it is given up on instead (*expired*).
   - *Permanent failure* (any other 4xx, a redirect, a URL or address the rules refuse): not
     retried. The event stays in the table with ``given_up_at`` and the reason, and the
     callback's ``last_failure`` says so (``will_retry`` false).

A crash (SIGKILL, a lost machine) before an outcome is recorded leaves the event leased: it is
due again when the lease ends and another sender (or this one, restarted) sends it again. So
every event is delivered at least once, and a receiver may see one twice: the ``webhook-id`` is
the same, for it to drop the repeat.

Shutdown (SIGTERM/SIGINT): no more claims; requests under way get
``CALLBACKS_SHUTDOWN_GRACE_SECONDS`` to finish and be recorded. Those still running then are
abandoned: their leases end and they are sent again (at least once, as after a crash).

Isolation: a receiver that hangs holds a slot for the timeout and then its event waits for its
backoff; the per-client cap keeps one client's slow or dead receiver (and its backlog) from
taking every slot, so other clients' events go out as before. Nothing here touches
``deliveries``: a callback never delays a delivery.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

from callback_sender.metrics import DELIVERIES, EVENT_DELAY, IN_FLIGHT, OLDEST_PENDING_AGE, PENDING, REQUEST_DURATION
from callback_sender.repository import CallbackEventRepository, ClaimedEvent, Outcome
from callback_sender.settings import CallbackSenderSettings
from callback_sender.webhook import Attempt, WebhookClient
from shared.backoff import RECORD_SENT, compute_backoff, database_pause
from shared.batching import StatementBatcher
from shared.database import Database, is_database_unavailable
from shared.logging import get_logger

log = get_logger(__name__)

PENDING_REPORT_SECONDS = 15.0


class CallbackWorker:
    def __init__(self, *, settings: CallbackSenderSettings, database: Database, client: WebhookClient) -> None:
        self._settings = settings
        self._database = database
        self._client = client
        self._events = CallbackEventRepository()
        self._in_flight: Counter[str] = Counter()
        self._tasks: set[asyncio.Task[None]] = set()
        self._slot_freed = asyncio.Event()
        self._outcomes: StatementBatcher[Outcome, None] = StatementBatcher(self._record_batch)
        self._database_pause = database_pause(base_seconds=0.5, max_seconds=settings.backoff_max_seconds)

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def run(self, stop: asyncio.Event) -> None:
        reporter = asyncio.create_task(self._report_pending(stop), name="callback-pending-report")
        failures = 0
        try:
            while not stop.is_set():
                free = self._settings.concurrency - len(self._tasks)
                claimed: list[ClaimedEvent] = []
                if free > 0:
                    try:
                        claimed = await self._claim(free)
                        failures = 0
                    except Exception as exc:  # noqa: BLE001 - keep going whatever one pass hit
                        failures += 1
                        self._log_claim_failure(exc)
                        await _wait(stop, self._database_pause.delay(failures))
                        continue
                for event in claimed:
                    self._start(event)
                if free > 0 and len(claimed) == free:
                    continue  # every free slot filled: more may be due
                self._slot_freed.clear()
                # Full: until a slot frees (or the next poll). Otherwise until the next poll.
                await _wait(stop, self._settings.poll_interval_seconds, self._slot_freed if free <= len(claimed) else None)
        finally:
            reporter.cancel()
            await self._drain()

    # -- claiming ------------------------------------------------------------------------

    async def _claim(self, free: int) -> list[ClaimedEvent]:
        async with self._database.connection() as connection:
            return await self._events.claim(
                connection,
                limit=free,
                per_client=self._settings.max_in_flight_per_client,
                busy={client: count for client, count in self._in_flight.items() if count},
                lease_seconds=self._settings.lease_seconds,
            )

    def _start(self, event: ClaimedEvent) -> None:
        self._in_flight[event.client] += 1
        IN_FLIGHT.inc()
        task = asyncio.create_task(self._deliver(event), name=f"callback-{event.id}")
        self._tasks.add(task)
        task.add_done_callback(lambda done, client=event.client: self._finished(done, client))

    def _finished(self, task: asyncio.Task[None], client: str) -> None:
        self._tasks.discard(task)
        self._in_flight[client] -= 1
        if not self._in_flight[client]:
            del self._in_flight[client]
        IN_FLIGHT.dec()
        self._slot_freed.set()

    # -- one event -----------------------------------------------------------------------

    async def _deliver(self, event: ClaimedEvent) -> None:
        try:
            await self._deliver_once(event)
        except Exception:  # noqa: BLE001 - a bug here must not stop the loop; the lease brings the event back
            log.exception("callback_delivery_crashed", event_id=str(event.id), client=event.client)

    async def _deliver_once(self, event: ClaimedEvent) -> None:
        started = time.monotonic()
        attempt = await self._client.send(event)
        REQUEST_DURATION.labels(event.client).observe(time.monotonic() - started)
        outcome = self._decide(event, attempt)
        DELIVERIES.labels(event.client, _metric_outcome(outcome, attempt)).inc()
        if outcome.kind == "delivered":
            EVENT_DELAY.labels(event.client).observe(max((datetime.now(UTC) - event.occurred_at).total_seconds(), 0.0))
            log.info("callback_delivered", event_id=str(event.id), client=event.client, type=event.type, attempt=event.attempts)
        else:
            log.warning(
                "callback_failed",
                event_id=str(event.id),
                client=event.client,
                type=event.type,
                attempt=event.attempts,
                error=attempt.detail,
                will_retry=outcome.kind == "retry",
                retry_in_seconds=outcome.delay_seconds if outcome.kind == "retry" else None,
            )
        await self._record(outcome)

    def _decide(self, event: ClaimedEvent, attempt: Attempt) -> Outcome:
        if attempt.kind == "delivered":
            return Outcome(event, "delivered")
        now = datetime.now(UTC)
        if attempt.kind == "transient":
            delay = compute_backoff(
                event.attempts,
                base_seconds=self._settings.backoff_base_seconds,
                max_seconds=self._settings.backoff_max_seconds,
                retry_after=attempt.retry_after,
            )
            deadline = event.occurred_at + timedelta(seconds=self._settings.retry_for_seconds)
            if now + timedelta(seconds=delay) <= deadline:
                return Outcome(event, "retry", delay_seconds=delay, error=attempt.detail, failure=_failure(event, attempt.detail, now, True))
            error = f"gave up after {event.attempts} attempts over {self._settings.retry_for_seconds:g} s: {attempt.detail}"
        else:
            error = attempt.detail
        return Outcome(event, "give_up", error=error, failure=_failure(event, error, now, False))

    async def _record(self, outcome: Outcome) -> None:
        """Record one outcome (batched with those finishing meanwhile); while Postgres is
        unreachable, retried for about a minute, then left to the lease (sent again later)."""
        for attempt in range(1, (RECORD_SENT.max_attempts or 1) + 1):
            try:
                await self._outcomes.submit(outcome)
                return
            except Exception as exc:  # noqa: BLE001 - decided below
                if not is_database_unavailable(exc) or attempt == RECORD_SENT.max_attempts:
                    log.error("callback_outcome_not_recorded", event_id=str(outcome.event.id), error=f"{type(exc).__name__}: {exc}")
                    return
                await asyncio.sleep(RECORD_SENT.delay(attempt))

    async def _record_batch(self, outcomes: list[Outcome]) -> list[None]:
        async with self._database.connection() as connection:
            await self._events.record(connection, outcomes)
        return [None] * len(outcomes)

    # -- around ------------------------------------------------------------------------

    async def _drain(self) -> None:
        if not self._tasks:
            return
        log.info("callback_sender_draining", in_flight=len(self._tasks), grace_seconds=self._settings.shutdown_grace_seconds)
        _, unfinished = await asyncio.wait(set(self._tasks), timeout=self._settings.shutdown_grace_seconds or None)
        for task in unfinished:
            task.cancel()
        if unfinished:
            # Their leases end and they are sent again: at least once, as after a crash.
            log.warning("callback_sender_abandoned", count=len(unfinished))
            await asyncio.gather(*unfinished, return_exceptions=True)

    async def _report_pending(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                async with self._database.connection() as connection:
                    rows = await self._events.pending(connection)
                PENDING.clear()
                OLDEST_PENDING_AGE.clear()
                for row in rows:
                    PENDING.labels(row["client"]).set(row["pending"])
                    OLDEST_PENDING_AGE.labels(row["client"]).set(row["oldest_seconds"])
            except Exception as exc:  # noqa: BLE001 - a report missed; the next one comes
                log.warning("callback_pending_report_failed", error=f"{type(exc).__name__}: {exc}")
            await _wait(stop, PENDING_REPORT_SECONDS)

    @staticmethod
    def _log_claim_failure(exc: BaseException) -> None:
        if is_database_unavailable(exc):
            log.warning("callback_claim_database_unavailable", error=f"{type(exc).__name__}: {exc}")
        else:
            log.exception("callback_claim_failed")


def _failure(event: ClaimedEvent, error: str, at: datetime, will_retry: bool) -> dict[str, object]:
    return {"at": at.isoformat(), "event_id": str(event.id), "type": event.type, "error": error, "will_retry": will_retry}


def _metric_outcome(outcome: Outcome, attempt: Attempt) -> str:
    if outcome.kind == "delivered":
        return "delivered"
    if outcome.kind == "retry":
        return "retried"
    return "expired" if attempt.kind == "transient" else "failed"


async def _wait(stop: asyncio.Event, seconds: float, also: asyncio.Event | None = None) -> None:
    """Sleep ``seconds``, or less when ``stop`` (or ``also``) is set meanwhile."""
    waiters = [asyncio.ensure_future(stop.wait())]
    if also is not None:
        waiters.append(asyncio.ensure_future(also.wait()))
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*waiters, return_exceptions=True)
