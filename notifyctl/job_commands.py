"""``jobs ...``: CSV jobs through the gateway (needs the 'notifications' role): ``create`` (or its
dry run), ``status`` (with a progress bar while it is delivered), ``cancel`` and ``list``."""

from __future__ import annotations

import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from notifications_client import ValidationError

from notifyctl.api_commands import AllPagesOption, CursorOption, LimitOption, pages
from notifyctl.gateway_client import Profile, answer, gateway, with_profile
from notifyctl.output import JsonOption, emit, report_errors
from shared.statuses import FINAL_STATUSES

jobs_app = typer.Typer(help="Send a template to every row of a CSV, and follow it (needs the 'notifications' role).", no_args_is_help=True)

JobIdArgument = Annotated[str, typer.Argument(metavar="ID", help="The job id `jobs create` printed.")]
BAR_WIDTH = 30


@jobs_app.command("create")
@report_errors
@with_profile
def create_job(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="The CSV: a header row, then one row per recipient.")],
    template: Annotated[str, typer.Option("--template", help="The template to send.")],
    name: Annotated[str | None, typer.Option("--name", help="The job's name (default: the file's name).")] = None,
    send_at: Annotated[str | None, typer.Option("--send-at", help="ISO 8601 with a UTC offset, up to 7 days ahead.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate and report what would be sent; store nothing.")] = False,
    *,
    profile: Profile,
    as_json: JsonOption = False,
) -> None:
    """Validate a CSV and start the job (or, with --dry-run, only report what it would send)."""
    with gateway(profile) as client:
        try:
            outcome = answer(
                client.create_job(file.read_bytes(), template=template, name=name or file.name, send_at=send_at, dry_run=dry_run)
            )
        except ValidationError as refused:
            if not as_json:
                for error in (refused.body or {}).get("errors", []) if isinstance(refused.body, dict) else []:
                    typer.echo(_describe_row_error(error), err=True)
            raise
    emit(outcome, as_json=as_json, human=_describe_dry_run if dry_run else _describe_job)


@jobs_app.command("status")
@report_errors
@with_profile
def job_status(
    job_id: JobIdArgument,
    wait: Annotated[bool, typer.Option("--wait", help="Show a progress bar until the job is finished or cancelled.")] = False,
    *,
    profile: Profile,
    as_json: JsonOption = False,
) -> None:
    """Show a job and its deliveries per channel and status; --wait follows it to the end with a progress bar."""
    with gateway(profile) as client:
        job = answer(client.job(job_id))
        while wait and job["status"] in ("scheduled", "in_progress"):
            if not as_json:
                typer.echo(f"\r{progress_bar(job['counts'])}", nl=False, err=True)
            time.sleep(1)
            job = answer(client.job(job_id))
        if wait and not as_json and sys.stderr.isatty():
            typer.echo("", err=True)
    emit(job, as_json=as_json, human=_describe_job)


@jobs_app.command("cancel")
@report_errors
@with_profile
def cancel_job(job_id: JobIdArgument, *, profile: Profile, as_json: JsonOption = False) -> None:
    """Cancel what is not yet released of a job (exit 1 with 'already released' when all of it was)."""
    with gateway(profile) as client:
        job = answer(client.cancel_job(job_id))
    emit(job, as_json=as_json, human=_describe_job)


@jobs_app.command("list")
@report_errors
@with_profile
def list_jobs(
    limit: LimitOption = None,
    cursor: CursorOption = None,
    all_pages: AllPagesOption = False,
    *,
    profile: Profile,
    as_json: JsonOption = False,
) -> None:
    """This client's jobs, oldest first, a page at a time (or all of them with --all)."""
    with gateway(profile) as client:
        result = pages(client.jobs, limit=limit, cursor=cursor, all_pages=all_pages)
    more = lambda page: [f"(more: --cursor {page['next_cursor']} or --all)"] if page.get("next_cursor") else []  # noqa: E731
    emit(result, as_json=as_json, human=lambda page: "\n".join([*map(_summarise_job, page["items"]), *more(page)]) or "No jobs.")


def progress_bar(counts: dict[str, dict[str, int]], width: int = BAR_WIDTH) -> str:
    """A plain text bar of the deliveries that are final: ``[######----]  60% 600/1,000``."""
    total = sum(n for statuses in counts.values() for n in statuses.values())
    done = sum(n for statuses in counts.values() for status, n in statuses.items() if status in FINAL_STATUSES)
    filled = round(width * done / total) if total else width
    percent = 100 * done / total if total else 100.0
    return f"[{'#' * filled}{'-' * (width - filled)}] {percent:3.0f}% {done:,}/{total:,} deliveries final"


def _describe_row_error(error: dict[str, Any]) -> str:
    column = f", column {error['column']}" if error.get("column") else ""
    return f"row {error['row']}{column}: {error['message']}"


def _describe_dry_run(report: dict[str, Any]) -> str:
    channels = ", ".join(f"{channel} {count:,}" for channel, count in report["channels"].items())
    lines = [f"{report['rows']:,} rows would send: {channels}; {report['sms_fragments']:,} SMS fragments"]
    lines += [_describe_row_error(error) for error in report["errors"]]
    if report["errors"]:
        lines.append(f"{len(report['errors'])} row error(s) listed: the job would be refused")
    return "\n".join(lines)


def _summarise_job(job: dict[str, Any]) -> str:
    return f"{job['id']}  {job['status']:<11} {job['rows']:>7,} rows  {job['template']['name']} v{job['template']['version']}  {job['name']}"


def _describe_job(job: dict[str, Any]) -> str:
    lines = [_summarise_job(job)]
    if job.get("send_at"):
        lines.append(f"send_at {datetime.fromisoformat(job['send_at']).isoformat()}")
    for channel, statuses in (job.get("counts") or {}).items():
        lines.append(f"  {channel}: " + ", ".join(f"{status} {count:,}" for status, count in sorted(statuses.items())))
    if job.get("counts"):
        lines.append(progress_bar(job["counts"]))
    return "\n".join(lines)
