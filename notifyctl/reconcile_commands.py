"""``notifyctl reconcile [--channel C] [--older-than DURATION] [--dry-run]`` (``notifyctl/reconcile.py``
says what it finds and how it publishes it again).

It reads the gateway's settings: ``DATABASE_URL``, the AWS ones, and ``GATEWAY_TOPIC_ARN`` (unset:
the topic is looked up by name, as the gateway does).
"""

from __future__ import annotations

import re
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated

import typer

from notifyctl.aws_errors import run_translated
from notifyctl.errors import BadCommandLineError, FailedError
from notifyctl.output import JsonOption, emit, format_age, report_errors
from shared.channels import Channel

if TYPE_CHECKING:
    from notifyctl.reconcile import Reconciliation

DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd]?)")
UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
# Below the queues' visibility timeout (60 s) a message a sender is about to receive again would
# count as lost.
MIN_OLDER_THAN_SECONDS = 120.0


def parse_duration(text: str) -> float:
    """``90s``, ``15m``, ``2h``, ``1d`` (or bare seconds) in seconds."""
    match = DURATION.fullmatch(text.strip().lower())
    if match is None:
        raise BadCommandLineError(f"--older-than takes a duration such as 90s, 15m, 2h or 1d, got {text!r}")
    return float(match[1]) * UNIT_SECONDS[match[2]]


@report_errors
def reconcile(
    channel: Annotated[list[Channel] | None, typer.Option("--channel", help="Only this channel; repeatable.", case_sensitive=False)] = None,
    older_than: Annotated[
        str, typer.Option(metavar="DURATION", help="Lost: no sign of life (accepted, changed, published, claimed) for this long: 90s, 15m, 2h, 1d.")
    ] = "15m",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only count what would be published again; change nothing.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Publish again the deliveries not final whose queue message is lost (a purged or lost queue, a lost region)."""
    seconds = parse_duration(older_than)
    if seconds < MIN_OLDER_THAN_SECONDS:
        raise BadCommandLineError(
            f"--older-than must be at least {format_age(MIN_OLDER_THAN_SECONDS)}: within the queues' 60 s visibility timeout a live message looks lost"
        )
    channels = list(dict.fromkeys(channel or Channel))
    result = _run(channels, older_than_seconds=seconds, dry_run=dry_run)
    emit(asdict(result), as_json=as_json, human=lambda _: _describe(result))
    if left := sum(c.left_in_outbox for c in result.channels):
        raise FailedError(f"SNS did not take {left} delivery(ies); they are in the outbox, which the gateways publish (or run reconcile again)")


def _run(channels: list[Channel], *, older_than_seconds: float, dry_run: bool) -> Reconciliation:
    from gateway.outbox.publisher import SnsPublisher
    from gateway.outbox.sns_batch import SnsBatchClient
    from gateway.settings import GatewaySettings
    from notifyctl.reconcile import Reconciler
    from shared.aws import aws_clients
    from shared.database import Database
    from shared.logging import configure_logging
    from shared.topology import topic_arn

    settings = GatewaySettings()
    # The outbox's own log lines (what it published, what SNS refused) are progress: on stderr.
    configure_logging(level=settings.log_level, fmt="console", service="notifyctl")

    async def main() -> Reconciliation:
        async with (
            aws_clients(settings, "sns", "cloudwatch") as (sns, cloudwatch),
            SnsBatchClient.for_client(sns) as publish_batch,
            Database.for_service(settings, size=2) as database,
        ):
            publisher = SnsPublisher(publish_batch, settings.topic_arn or await topic_arn(sns))
            reconciler = Reconciler(database=database, sns=publisher, cloudwatch=cloudwatch, max_backoff=settings.outbox_max_backoff_seconds)
            return await reconciler.reconcile(channels, older_than_seconds=older_than_seconds, dry_run=dry_run)

    return run_translated(main, database_url=settings.database_url)


def _describe(result: Reconciliation) -> str:
    verb = "would publish again" if result.dry_run else "published again"
    lines = [
        f"Deliveries not final with no sign of life for {format_age(result.older_than_seconds)} and no outbox row "
        f"({'dry run: nothing changed' if result.dry_run else 'published again through the topic'}):",
        f"{'channel':<8}{'found':>7}{'pending':>9}{'sending':>9}  {'quiet since':<22}{verb:>20}{'left in outbox':>16}",
    ]
    for c in result.channels:
        since = "-" if c.oldest_last_seen is None else f"{c.oldest_last_seen:%Y-%m-%d %H:%M:%S} UTC"
        done = c.found if result.dry_run else c.republished
        lines.append(f"{c.channel:<8}{c.found:>7}{c.pending:>9}{c.sending:>9}  {since:<22}{done:>20}{c.left_in_outbox:>16}")
    lines += [f"warning: {warning}" for warning in result.warnings]
    return "\n".join(lines)
