"""Commands that go through the gateway: ``recipients ...``, ``send`` and ``status``."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

from notifyctl.errors import FailedError, NotDoneError
from notifyctl.gateway_client import GatewayClient, Profile, with_profile
from notifyctl.output import JsonOption, emit, report_errors
from shared.channels import Channel
from shared.statuses import FINAL_STATUSES

recipients_app = typer.Typer(help="Register, read and delete recipients (needs the 'recipients' role).", no_args_is_help=True)


@recipients_app.command("put")
@report_errors
@with_profile
def put_recipient(
    name: Annotated[str, typer.Argument(help="The recipient's name.")],
    phone: Annotated[str | None, typer.Option("--phone", help="Phone number in E.164 form (+14155552671).")] = None,
    email: Annotated[str | None, typer.Option("--email", help="Email address.")] = None,
    slack_id: Annotated[str | None, typer.Option("--slack-id", help="Slack member or channel id (U0123456789).")] = None,
    *,
    profile: Profile,
    as_json: JsonOption = False,
) -> None:
    """Create or replace a recipient (at least one of --phone, --email, --slack-id)."""
    contacts = {k: v for k, v in (("phone_number", phone), ("email", email), ("slack_id", slack_id)) if v is not None}
    with GatewayClient(profile) as client:
        client.put_recipient(name, contacts)
        stored = client.get_recipient(name)
    emit(stored, as_json=as_json, human=lambda r: f"Stored {_describe_recipient(r)}")


@recipients_app.command("get")
@report_errors
@with_profile
def get_recipient(
    name: Annotated[str, typer.Argument(help="The recipient's name.")],
    *,
    profile: Profile,
    as_json: JsonOption = False,
) -> None:
    """Show a recipient and its contact methods."""
    with GatewayClient(profile) as client:
        recipient = client.get_recipient(name)
    emit(recipient, as_json=as_json, human=_describe_recipient)


@recipients_app.command("delete")
@report_errors
@with_profile
def delete_recipient(
    name: Annotated[str, typer.Argument(help="The recipient's name.")],
    *,
    profile: Profile,
    as_json: JsonOption = False,
) -> None:
    """Delete a recipient (succeeds when there is none); accepted notifications are still delivered."""
    with GatewayClient(profile) as client:
        client.delete_recipient(name)
    emit({"deleted": name}, as_json=as_json, human=f"Deleted {name!r} (if it existed).")


@recipients_app.command("list")
@report_errors
@with_profile
def list_recipients(
    limit: Annotated[int | None, typer.Option("--limit", min=1, max=1000, help="Page size.")] = None,
    cursor: Annotated[str | None, typer.Option("--cursor", help="next_cursor of the previous page.")] = None,
    all_pages: Annotated[bool, typer.Option("--all", help="Follow next_cursor to the end.")] = False,
    *,
    profile: Profile,
    as_json: JsonOption = False,
) -> None:
    """List recipients by name, a page at a time (or all of them with --all)."""
    items: list[dict[str, Any]] = []
    with GatewayClient(profile) as client:
        while True:
            page = client.list_recipients(limit=limit, cursor=cursor)
            items.extend(page["items"])
            cursor = page.get("next_cursor")
            if not all_pages or not cursor:
                break
    result: dict[str, Any] = {"items": items}
    if cursor:
        result["next_cursor"] = cursor
    emit(result, as_json=as_json, human=_describe_page)


@report_errors
@with_profile
def send(
    recipient: Annotated[str, typer.Argument(help="The recipient's name.")],
    message: Annotated[str, typer.Argument(help="The text to deliver.")],
    subject: Annotated[str | None, typer.Option("--subject", help="Email subject (default: Notification).")] = None,
    channel: Annotated[
        list[Channel] | None, typer.Option("--channel", help="Deliver on this channel only; repeatable (default: all the recipient's).")
    ] = None,
    idempotency_key: Annotated[
        str | None, typer.Option("--idempotency-key", help="Makes a retry safe: the same key and message send nothing twice.")
    ] = None,
    *,
    profile: Profile,
    as_json: JsonOption = False,
) -> None:
    """Send a notification to a recipient (needs the 'notifications' role); prints its id (alone, on stdout)."""
    with GatewayClient(profile) as client:
        accepted = client.send(
            recipient=recipient,
            message=message,
            subject=subject,
            channels=[c.value for c in channel] if channel else None,
            idempotency_key=idempotency_key,
        )
    # Only the id on stdout, so that `id=$(notifyctl send ...)` works; the sentence goes to stderr.
    emit(accepted, as_json=as_json, human=accepted["id"])
    if not as_json:
        replayed = " (a repeat of an earlier request: nothing new was sent)" if accepted["replayed"] else ""
        typer.echo(f"accepted for {accepted['recipient']} on {', '.join(accepted['channels'])}{replayed}", err=True)


@report_errors
@with_profile
def status(
    notification_id: Annotated[str, typer.Argument(metavar="ID", help="The notification id `send` printed.")],
    wait: Annotated[bool, typer.Option("--wait", help="Wait until every delivery is sent or failed.")] = False,
    timeout: Annotated[float, typer.Option("--timeout", min=0, help="How long --wait waits, in seconds.")] = 60.0,
    *,
    profile: Profile,
    as_json: JsonOption = False,
) -> None:
    """Show a notification's delivery on each channel; --wait exits 0 all sent, 1 one failed, 5 out of time."""
    deadline = time.monotonic() + timeout
    with GatewayClient(profile) as client:
        while True:
            notification = client.status(notification_id)
            done = all(d["status"] in FINAL_STATUSES for d in notification["deliveries"].values())
            if not wait or done or time.monotonic() >= deadline:
                break
            time.sleep(0.5)
    emit(notification, as_json=as_json, human=_describe_status)
    if wait:
        failed = sorted(channel for channel, d in notification["deliveries"].items() if d["status"] == "failed")
        if not done:
            raise NotDoneError(f"not every delivery was final after {timeout:g} s")
        if failed:
            raise FailedError(f"delivery failed on {', '.join(failed)}")


def _describe_recipient(recipient: dict[str, Any]) -> str:
    contacts = [f"{label}={recipient[field]}" for field, label in (("phone_number", "phone"), ("email", "email"), ("slack_id", "slack"))
                if recipient.get(field)]
    return f"{recipient['name']}: {' '.join(contacts)}"


def _describe_page(page: dict[str, Any]) -> str:
    lines = [_describe_recipient(r) for r in page["items"]] or ["No recipients."]
    if page.get("next_cursor"):
        lines.append(f"(more: --cursor {page['next_cursor']} or --all)")
    return "\n".join(lines)


def _describe_status(notification: dict[str, Any]) -> str:
    lines = [
        f"{notification['id']} to {notification['recipient']} from {notification['client']}, "
        f"created {notification['created_at']}, {'published' if notification['published'] else 'not yet published'}"
    ]
    for channel, delivery in sorted(notification["deliveries"].items()):
        line = f"  {channel:<6} {delivery['status']:<8} attempts={delivery['attempts']}"
        if delivery.get("sent_at"):
            line += f" sent_at={delivery['sent_at']}"
        if delivery.get("last_error"):
            line += f" last_error={delivery['last_error']!r}"
        lines.append(line)
    return "\n".join(lines)
