"""Commands that talk to SQS/SNS and Postgres directly: ``dlq ...`` and ``topology ...``.

They read the same settings as the services (``DATABASE_URL``, ``AWS_ENDPOINT_URL``,
``AWS_REGION``, credentials), through ``shared.settings.ServiceSettings``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, contextmanager
from enum import StrEnum
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from notifyctl.aws_errors import run_translated
from notifyctl.errors import FailedError
from notifyctl.output import JsonOption, emit, format_age, report_errors
from shared.channels import CHANNEL_NAMES, Channel
from shared.topology import Lane, create_topology, verify_topology

if TYPE_CHECKING:
    from notifyctl.dead_letters import ChannelStats, DeadLetter, DeadLetterQueues, RedriveResult

# aiobotocore, botocore and SQLAlchemy are imported inside the functions that use them: they take
# longer to import than the gateway commands take to run.

T = TypeVar("T")

dlq_app = typer.Typer(help="Inspect, replay and purge the channels' dead-letter queues.", no_args_is_help=True)
topology_app = typer.Typer(help="Create or check the SNS topic, SQS queues, DLQs and subscriptions.", no_args_is_help=True)



class RedriveMethod(StrEnum):
    AUTO = "auto"
    COPY = "copy"
    MOVE_TASK = "move-task"


ChannelArgument = Annotated[
    Channel, typer.Argument(help=f"{', '.join(CHANNEL_NAMES[:-1])} or {CHANNEL_NAMES[-1]}.", case_sensitive=False)
]
LaneOption = Annotated[
    Lane,
    typer.Option(help="standard: the one-offs' DLQ (<channel>_notifications_dlq); bulk: batch items' (<channel>_bulk_notifications_dlq).", case_sensitive=False),
]


def _run(work: Callable[[Any, Any, Any], Awaitable[T]], *, database: bool = True) -> T:
    """Run ``work(sqs, sns, database)`` with clients from the environment; map outages to exit 4."""
    from shared.aws import aws_clients
    from shared.database import Database
    from shared.settings import ServiceSettings

    settings = ServiceSettings()

    async def main() -> T:
        async with AsyncExitStack() as stack:
            sqs, sns = await stack.enter_async_context(aws_clients(settings, "sqs", "sns"))
            pool = await stack.enter_async_context(Database.for_service(settings)) if database else None
            return await work(sqs, sns, pool)

    return run_translated(main, database_url=settings.database_url)


def _queues(sqs: Any, database: Any, probe: Any | None = None) -> DeadLetterQueues:
    from notifyctl.dead_letters import DeadLetterQueues

    return DeadLetterQueues(sqs=sqs, database=database, sqs_probe=probe)


# ---------------------------------------------------------------- dlq


@dlq_app.command("stats")
@report_errors
def dlq_stats(
    channel: Annotated[list[Channel] | None, typer.Option("--channel", help="Only this channel; repeatable.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Depth of every channel's queue and DLQ, and the age of the oldest dead letter."""
    stats = _run(lambda sqs, _sns, database: _queues(sqs, database).stats(channel or tuple(Channel)), database=False)
    emit([asdict(s) for s in stats], as_json=as_json, human=lambda _: _describe_stats(stats))


@dlq_app.command("peek")
@report_errors
def dlq_peek(
    channel: ChannelArgument,
    count: Annotated[int, typer.Option("-n", "--count", min=1, max=1000, help="How many messages to show at most.")] = 10,
    lane: LaneOption = Lane.STANDARD,
    as_json: JsonOption = False,
) -> None:
    """Show dead letters (notification, recipient, why it failed) without consuming them."""
    letters = _run(lambda sqs, _sns, database: _queues(sqs, database).peek(channel, count, lane=lane))
    emit([asdict(letter) for letter in letters], as_json=as_json, human=lambda _: _describe_letters(channel, letters))


@dlq_app.command("redrive")
@report_errors
def dlq_redrive(
    channel: ChannelArgument,
    method: Annotated[
        RedriveMethod,
        typer.Option(help="auto: SQS StartMessageMoveTask where the endpoint supports it, else copy (receive, send, delete)."),
    ] = RedriveMethod.AUTO,
    lane: LaneOption = Lane.STANDARD,
    as_json: JsonOption = False,
) -> None:
    """Replay a channel's dead letters: reset their deliveries to pending and move them back to the queue."""
    with _progress(enabled=not as_json) as update:
        async def work(sqs: Any, _sns: Any, database: Any) -> RedriveResult:
            from notifyctl.dead_letters import PROBE_CONFIG
            from shared.aws import aws_clients
            from shared.settings import ServiceSettings

            async with aws_clients(ServiceSettings(), "sqs", config=PROBE_CONFIG) as probe:
                return await _queues(sqs, database, probe).redrive(channel, method=method.value, progress=update, lane=lane)

        result = _run(work)
    emit(asdict(result), as_json=as_json, human=lambda _: _describe_redrive(result))
    problems = []
    if result.failed:
        problems.append(f"{result.failed} message(s) could not be moved and stay in the DLQ (run redrive again)")
    if result.late:
        problems.append(f"{len(result.late)} delivery(ies) gave up while the move task ran and were not resent (send them again)")
    if problems:
        raise FailedError("; ".join(problems))


@dlq_app.command("purge")
@report_errors
def dlq_purge(
    channel: ChannelArgument,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation (for scripts).")] = False,
    lane: LaneOption = Lane.STANDARD,
    as_json: JsonOption = False,
) -> None:
    """Delete every message in a channel's DLQ, for good (their deliveries keep saying failed)."""
    which = f"{channel.value} {'bulk ' if lane is Lane.BULK else ''}dead-letter queue"
    if not yes:
        typer.confirm(f"Delete every message in the {which}? This cannot be undone", abort=True)
    purged = _run(lambda sqs, _sns, database: _queues(sqs, database).purge(channel, lane=lane), database=False)
    emit({"channel": channel.value, "lane": lane.value, "purged": purged}, as_json=as_json, human=f"Purged about {purged} message(s) from the {which}.")


# ---------------------------------------------------------------- topology


@topology_app.command("create")
@report_errors
def topology_create(as_json: JsonOption = False) -> None:
    """Create (or confirm) the topic, queues, DLQs and subscriptions. Idempotent."""
    created = _run(lambda sqs, sns, _database: create_topology(sns, sqs), database=False)
    emit(created, as_json=as_json, human=lambda c: "\n".join(f"{name}: {value}" for name, value in c.items()))


@topology_app.command("verify")
@report_errors
def topology_verify(as_json: JsonOption = False) -> None:
    """Compare the live SNS/SQS resources with the definitions; exit 1 on any difference."""
    problems = _run(lambda sqs, sns, _database: verify_topology(sns, sqs), database=False)
    emit(
        {"matches": not problems, "differences": problems},
        as_json=as_json,
        human="\n".join([*problems, "topology matches" if not problems else f"{len(problems)} difference(s)"]),
    )
    if problems:
        raise typer.Exit(1)


# ---------------------------------------------------------------- printing


@contextmanager
def _progress(*, enabled: bool) -> Iterator[Callable[[int, int | None], None]]:
    """A progress bar on stderr, updated with (done, total); nothing with --json."""
    if not enabled:
        yield lambda _done, _total: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("redriving"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True)) as progress:
        task = progress.add_task("redrive", total=None)
        yield lambda done, total: progress.update(task, completed=done, total=total)


def _describe_stats(stats: list[ChannelStats]) -> str:
    lines = [f"{'channel':<8}{'queue':>8}{'in flight':>11}{'DLQ':>8}{'oldest dead letter':>21}"]
    for s in stats:
        age = format_age(s.oldest_dead_letter_age_seconds) if s.oldest_dead_letter_age_seconds is not None else "-"
        lines.append(f"{s.channel:<8}{s.queue_depth:>8}{s.queue_in_flight:>11}{s.dead_letters:>8}{age:>21}")
    return "\n".join(lines)


def _describe_letters(channel: Channel, letters: list[DeadLetter]) -> str:
    if not letters:
        return f"The {channel.value} dead-letter queue is empty."
    blocks = []
    for letter in letters:
        if letter.notification_id is None:
            blocks.append(f"message {letter.message_id}: not a {channel.value} notification ({letter.sender_error or 'unparseable'})\n  body: {letter.body!r}")
            continue
        reason = letter.last_error or letter.sender_error or "-"
        blocks.append(
            f"notification {letter.notification_id} (message {letter.message_id})\n"
            f"  recipient: {letter.recipient} ({letter.contact})   client: {letter.client}   sent: {letter.sent_at:%Y-%m-%d %H:%M:%S} UTC\n"
            f"  delivery:  {letter.delivery_status or 'no row'} after {letter.delivery_attempts or 0} attempt(s)\n"
            f"  reason:    {reason}\n"
            f"  message:   {_shorten(letter.message or '')}"
        )
    return "\n".join(blocks)


def _describe_redrive(result: RedriveResult) -> str:
    lines = [
        f"Moved {result.moved} message(s) back to the {result.channel} queue ({result.method}); "
        f"{result.deliveries_reset} delivery(ies) set back to pending."
    ]
    if result.left_unparseable:
        lines.append(f"Left {result.left_unparseable} message(s) no sender can use in the DLQ (see `notifyctl dlq peek {result.channel}`).")
    if result.late:
        lines.append(f"Gave up while the move task ran, so skipped by the sender: {', '.join(result.late)}")
    return "\n".join(lines)


def _shorten(text: str, width: int = 100) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
