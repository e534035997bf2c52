"""Commands that go through the gateway: ``recipients ...`` (and their preferences),
``templates ...``, ``send`` and ``status``."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from notifications_client import Page

from notifyctl.errors import FailedError, NotDoneError
from notifyctl.gateway_client import Profile, answer, gateway, with_profile
from notifyctl.output import JsonOption, emit, report_errors
from shared.channels import Channel
from shared.statuses import FINAL_STATUSES

recipients_app = typer.Typer(help="Register, read and delete recipients (needs the 'recipients' role).", no_args_is_help=True)
preferences_app = typer.Typer(help="The channels a recipient turned off, globally and per category.", no_args_is_help=True)
recipients_app.add_typer(preferences_app, name="preferences")
templates_app = typer.Typer(help="Create, read, preview and delete templates (needs the 'templates' role).", no_args_is_help=True)

RecipientArgument = Annotated[str, typer.Argument(help="The recipient's name.")]
NotificationIdArgument = Annotated[str, typer.Argument(metavar="ID", help="The notification id `send` printed.")]
TemplateArgument = Annotated[str, typer.Argument(help="The template's name.")]
LimitOption = Annotated[int | None, typer.Option("--limit", min=1, max=1000, help="Page size.")]
CursorOption = Annotated[str | None, typer.Option("--cursor", help="next_cursor of the previous page.")]
AllPagesOption = Annotated[bool, typer.Option("--all", help="Follow next_cursor to the end.")]
PersonalisationOption = Annotated[
    list[str] | None,
    typer.Option(
        "--personalisation",
        "-p",
        metavar="KEY=VALUE",
        help="A placeholder's value (text); repeatable; a key given twice makes a list (one item per line).",
    ),
]
PersonalisationFileOption = Annotated[
    Path | None,
    typer.Option("--personalisation-file", help="A JSON object of values (numbers, true/false and lists too); -p values go on top."),
]


@recipients_app.command("put")
@report_errors
@with_profile
def put_recipient(
    name: RecipientArgument,
    phone: Annotated[str | None, typer.Option("--phone", help="Phone number in E.164 form (+14155552671).")] = None,
    email: Annotated[str | None, typer.Option("--email", help="Email address.")] = None,
    slack_id: Annotated[str | None, typer.Option("--slack-id", help="Slack member or channel id (U0123456789).")] = None,
    *,
    profile: Profile,
    as_json: JsonOption = False,
) -> None:
    """Create or replace a recipient (at least one of --phone, --email, --slack-id)."""
    contacts = {k: v for k, v in (("phone_number", phone), ("email", email), ("slack_id", slack_id)) if v is not None}
    with gateway(profile) as client:
        client.put_recipient(name, contacts)
        stored = answer(client.get_recipient(name))
    emit(stored, as_json=as_json, human=lambda r: f"Stored {_describe_recipient(r)}")


@recipients_app.command("get")
@report_errors
@with_profile
def get_recipient(
    name: RecipientArgument,
    *,
    profile: Profile,
    as_json: JsonOption = False,
) -> None:
    """Show a recipient and its contact methods."""
    with gateway(profile) as client:
        recipient = answer(client.get_recipient(name))
    emit(recipient, as_json=as_json, human=_describe_recipient)


@recipients_app.command("delete")
@report_errors
@with_profile
def delete_recipient(
    name: RecipientArgument,
    *,
    profile: Profile,
    as_json: JsonOption = False,
) -> None:
    """Delete a recipient (succeeds when there is none); accepted notifications are still delivered."""
    with gateway(profile) as client:
        client.delete_recipient(name)
    emit({"deleted": name}, as_json=as_json, human=f"Deleted {name!r} (if it existed).")


@recipients_app.command("list")
@report_errors
@with_profile
def list_recipients(
    limit: LimitOption = None,
    cursor: CursorOption = None,
    all_pages: AllPagesOption = False,
    *,
    profile: Profile,
    as_json: JsonOption = False,
) -> None:
    """List recipients by name, a page at a time (or all of them with --all)."""
    with gateway(profile) as client:
        result = pages(client.list_recipients, limit=limit, cursor=cursor, all_pages=all_pages)
    emit(result, as_json=as_json, human=_describe_page)


@report_errors
@with_profile
def send(
    recipient: Annotated[str, typer.Argument(help="The recipient's name.")],
    message: Annotated[str | None, typer.Argument(help="The text to deliver (or give --template).")] = None,
    subject: Annotated[str | None, typer.Option("--subject", help="Email subject (default: Notification).")] = None,
    template: Annotated[str | None, typer.Option("--template", help="Send this template instead of a message.")] = None,
    template_version: Annotated[
        int | None, typer.Option("--template-version", min=1, help="That version of the template (default: its latest).")
    ] = None,
    personalisation: PersonalisationOption = None,
    personalisation_file: PersonalisationFileOption = None,
    category: Annotated[str | None, typer.Option("--category", help="For the recipient's preferences (default: the template's, else general).")] = None,
    channel: Annotated[
        list[Channel] | None, typer.Option("--channel", help="Deliver on this channel only; repeatable (default: all the recipient's).")
    ] = None,
    idempotency_key: Annotated[
        str | None, typer.Option("--idempotency-key", help="Makes a retry safe: the same key and message send nothing twice.")
    ] = None,
    send_at: Annotated[
        str | None, typer.Option("--send-at", help="Send it then: ISO 8601 with a UTC offset, e.g. 2026-12-02T09:00:00+01:00 (up to 7 days ahead).")
    ] = None,
    first: Annotated[
        bool,
        typer.Option(
            "--first", help="Deliver on the first --channel that works, in the order given (the next only if one fails); needs --channel."
        ),
    ] = False,
    *,
    profile: Profile,
    as_json: JsonOption = False,
) -> None:
    """Send a message, or a template with --template, to a recipient (needs the 'notifications' role); prints its id (alone, on stdout)."""
    if (message is None) == (template is None):
        raise typer.BadParameter("give either MESSAGE or --template NAME", param_hint="MESSAGE / --template")
    values = personalisation_values(personalisation, personalisation_file)
    if template is None and (values or template_version is not None):
        raise typer.BadParameter("--personalisation and --template-version go with --template", param_hint="--template")
    if first and not channel:
        raise typer.BadParameter("--first needs the channels to try, in order: --channel sms --channel email", param_hint="--first")
    with gateway(profile) as client:
        optional = {
            "delivery": "first" if first else None,
            "message": message,
            "subject": subject,
            "template": template,
            "template_version": template_version,
            "personalisation": values if template is not None else None,
            "category": category,
            "channels": [c.value for c in channel] if channel else None,
            "send_at": send_at,
        }
        # As a document: the gateway judges the values (a file's personalisation may hold anything).
        notification = {"recipient": recipient, **{key: value for key, value in optional.items() if value is not None}}
        accepted = answer(client.send(notification=notification, idempotency_key=idempotency_key))
    # Only the id on stdout, so that `id=$(notifyctl send ...)` works; the sentence goes to stderr.
    emit(accepted, as_json=as_json, human=accepted["id"])
    if not as_json:
        replayed = " (a repeat of an earlier request: nothing new was sent)" if accepted["replayed"] else ""
        sms = f"; SMS in {accepted['sms_fragments']} part(s), {accepted['sms_encoding']}" if "sms_fragments" in accepted else ""
        held = f"; held until {accepted['release_at']}" if accepted.get("release_at") else ""
        on = " then ".join(accepted["channels"]) + " (the first that works)" if accepted.get("delivery") == "first" else ", ".join(accepted["channels"])
        typer.echo(f"accepted for {accepted['recipient']} on {on}{sms}{held}{replayed}", err=True)


@report_errors
@with_profile
def cancel(
    notification_id: NotificationIdArgument,
    *,
    profile: Profile,
    as_json: JsonOption = False,
) -> None:
    """Cancel a scheduled notification (exit 1 with 'already released' once it has been published)."""
    with gateway(profile) as client:
        notification = answer(client.cancel(notification_id))
    emit(notification, as_json=as_json, human=_describe_status)


@report_errors
@with_profile
def status(
    notification_id: NotificationIdArgument,
    wait: Annotated[bool, typer.Option("--wait", help="Wait until every delivery is sent or failed.")] = False,
    timeout: Annotated[float, typer.Option("--timeout", min=0, help="How long --wait waits, in seconds.")] = 60.0,
    *,
    profile: Profile,
    as_json: JsonOption = False,
) -> None:
    """Show a notification's delivery on each channel; --wait exits 0 all sent, 1 one failed, 5 out of time."""
    deadline = time.monotonic() + timeout
    with gateway(profile) as client:
        while True:
            notification = answer(client.get_notification(notification_id))
            done = all(d["status"] in FINAL_STATUSES for d in notification["deliveries"].values())
            if not wait or done or time.monotonic() >= deadline:
                break
            time.sleep(0.5)
    emit(notification, as_json=as_json, human=_describe_status)
    if wait:
        failed = sorted(channel for channel, d in notification["deliveries"].items() if d["status"] == "failed")
        if notification.get("delivery") == "first" and notification.get("delivered_by"):
            failed = []  # a channel before the one that worked failed: that is what "first" is for
        if not done:
            raise NotDoneError(f"not every delivery was final after {timeout:g} s")
        if failed:
            raise FailedError(f"delivery failed on {', '.join(failed)}")


@preferences_app.command("get")
@report_errors
@with_profile
def get_preferences(
    name: RecipientArgument,
    *,
    profile: Profile,
    as_json: JsonOption = False,
) -> None:
    """Show which channels a recipient gets, globally and per category."""
    with gateway(profile) as client:
        preferences = answer(client.get_preferences(name))
    emit(preferences, as_json=as_json, human=_describe_preferences)


@preferences_app.command("set")
@report_errors
@with_profile
def set_preferences(
    name: RecipientArgument,
    off: Annotated[
        list[str] | None,
        typer.Option("--off", metavar="[CATEGORY:]CHANNEL", help="Turn a channel off (sms), or off for one category (marketing:email); repeatable."),
    ] = None,
    from_file: Annotated[Path | None, typer.Option("--file", help="The whole document as JSON, as the API takes it.")] = None,
    *,
    profile: Profile,
    as_json: JsonOption = False,
) -> None:
    """Replace a recipient's preferences: every channel on except those --off (or the --file document)."""
    document: dict[str, Any] = _json_file(from_file) if from_file is not None else {}
    for switch in off or ():
        category, _, channel = switch.rpartition(":")
        if channel not in {c.value for c in Channel}:
            raise typer.BadParameter(f"{switch!r}: the channel is one of sms, email, slack", param_hint="--off")
        target = document.setdefault("categories", {}).setdefault(category, {}) if category else document.setdefault("channels", {})
        target[channel] = False
    with gateway(profile) as client:
        client.put_preferences(name, document)
        stored = answer(client.get_preferences(name))
    emit(stored, as_json=as_json, human=_describe_preferences)


@templates_app.command("put")
@report_errors
@with_profile
def put_template(
    name: TemplateArgument,
    sms: Annotated[str | None, typer.Option("--sms", help="The SMS text, with ((placeholders)).")] = None,
    email_subject: Annotated[str | None, typer.Option("--email-subject", help="The email subject (one line).")] = None,
    email_body: Annotated[str | None, typer.Option("--email-body", help="The email body (plain text).")] = None,
    slack: Annotated[str | None, typer.Option("--slack", help="The Slack text (mrkdwn; values are escaped).")] = None,
    category: Annotated[str | None, typer.Option("--category", help="The category of what is sent from it.")] = None,
    from_file: Annotated[Path | None, typer.Option("--file", help="The whole template as JSON, as the API takes it.")] = None,
    *,
    profile: Profile,
    as_json: JsonOption = False,
) -> None:
    """Create a template, or its next version when the content changed (the same content keeps its version)."""
    content: dict[str, Any] = _json_file(from_file) if from_file is not None else {}
    if email_subject is not None or email_body is not None:
        if email_subject is None or email_body is None:
            raise typer.BadParameter("an email needs both --email-subject and --email-body", param_hint="--email-subject / --email-body")
        content["email"] = {"subject": email_subject, "body": email_body}
    content.update({key: value for key, value in (("sms", sms), ("slack", slack), ("category", category)) if value is not None})
    with gateway(profile) as client:
        stored = answer(client.put_template(name, content))
    emit(stored, as_json=as_json, human=lambda t: f"{'Created' if t['created'] else 'Stored'} {_describe_template(t)}")


@templates_app.command("get")
@report_errors
@with_profile
def get_template(
    name: TemplateArgument,
    version: Annotated[int | None, typer.Option("--version", min=1, help="That version (default: the latest).")] = None,
    *,
    profile: Profile,
    as_json: JsonOption = False,
) -> None:
    """Show a template (its latest version, or --version N)."""
    with gateway(profile) as client:
        template = answer(client.get_template(name, version=version))
    emit(template, as_json=as_json, human=_describe_template)


@templates_app.command("list")
@report_errors
@with_profile
def list_templates(
    limit: LimitOption = None,
    cursor: CursorOption = None,
    all_pages: AllPagesOption = False,
    *,
    profile: Profile,
    as_json: JsonOption = False,
) -> None:
    """List templates (their latest versions) by name, a page at a time (or all of them with --all)."""
    with gateway(profile) as client:
        result = pages(client.list_templates, limit=limit, cursor=cursor, all_pages=all_pages)
    lines = [_summarise_template(t) for t in result["items"]] or ["No templates."]
    if result.get("next_cursor"):
        lines.append(f"(more: --cursor {result['next_cursor']} or --all)")
    emit(result, as_json=as_json, human="\n".join(lines))


@templates_app.command("delete")
@report_errors
@with_profile
def delete_template(
    name: TemplateArgument,
    *,
    profile: Profile,
    as_json: JsonOption = False,
) -> None:
    """Delete a template (succeeds when there is none): later sends by it are refused; accepted ones are still delivered."""
    with gateway(profile) as client:
        client.delete_template(name)
    emit({"deleted": name}, as_json=as_json, human=f"Deleted template {name!r} (if it existed).")


@templates_app.command("preview")
@report_errors
@with_profile
def preview_template(
    name: TemplateArgument,
    personalisation: PersonalisationOption = None,
    personalisation_file: PersonalisationFileOption = None,
    *,
    profile: Profile,
    as_json: JsonOption = False,
) -> None:
    """Render each channel of a template with these values, or say what a send with them would be refused for."""
    with gateway(profile) as client:
        rendered = answer(client.preview_template(name, personalisation_values(personalisation, personalisation_file)))
    emit(rendered, as_json=as_json, human=_describe_rendering)


def pages(fetch: Callable[..., Page], *, limit: int | None, cursor: str | None, all_pages: bool) -> dict[str, Any]:
    """A listing's page (from ``cursor``), or with ``all_pages`` every page after it too."""
    items: list[dict[str, Any]] = []
    while True:
        page = answer(fetch(limit=limit, cursor=cursor))
        items.extend(page["items"])
        cursor = page.get("next_cursor")
        if not all_pages or not cursor:
            break
    result: dict[str, Any] = {"items": items}
    if cursor:
        result["next_cursor"] = cursor
    return result


def personalisation_values(pairs: list[str] | None, from_file: Path | None) -> dict[str, Any]:
    """--personalisation-file's object, then each KEY=VALUE on top (a key given twice: a list)."""
    values: dict[str, Any] = _json_file(from_file) if from_file is not None else {}
    given: dict[str, list[str]] = {}
    for pair in pairs or ():
        key, separator, value = pair.partition("=")
        if not separator or not key:
            raise typer.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--personalisation")
        given.setdefault(key, []).append(value)
    values.update({key: items[0] if len(items) == 1 else items for key, items in given.items()})
    return values


def _json_file(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise typer.BadParameter(f"cannot read a JSON object from {path}: {exc}") from None
    if not isinstance(document, dict):
        raise typer.BadParameter(f"{path} holds JSON, but not an object")
    return document


def _describe_preferences(preferences: dict[str, Any]) -> str:
    def switches(channels: dict[str, bool]) -> str:
        return " ".join(f"{channel}={'on' if on else 'off'}" for channel, on in channels.items())

    lines = [f"every notification: {switches(preferences['channels'])}"]
    lines += [f"{category}: {switches(channels)}" for category, channels in preferences["categories"].items()]
    return "\n".join(lines)


def _summarise_template(template: dict[str, Any]) -> str:
    channels = [channel for channel in ("sms", "email", "slack") if channel in template]
    category = f" category={template['category']}" if template.get("category") else ""
    return f"{template['name']} v{template['version']}: {', '.join(channels)}{category}"


def _describe_template(template: dict[str, Any]) -> str:
    lines = [_summarise_template(template), f"  placeholders: {', '.join(template['placeholders']) or 'none'}"]
    if "sms" in template:
        lines.append(f"  sms: {template['sms']!r}")
    if "email" in template:
        lines.append(f"  email subject: {template['email']['subject']!r}")
        lines.append(f"  email body: {template['email']['body']!r}")
    if "slack" in template:
        lines.append(f"  slack: {template['slack']!r}")
    return "\n".join(lines)


def _describe_rendering(rendered: dict[str, Any]) -> str:
    lines = []
    if "sms" in rendered:
        sms = rendered["sms"]
        lines.append(f"sms ({sms['fragments']} part(s), {sms['encoding']}): {sms['body']!r}")
    if "email" in rendered:
        lines.append(f"email subject: {rendered['email']['subject']!r}")
        lines.append(f"email body: {rendered['email']['body']!r}")
    if "slack" in rendered:
        lines.append(f"slack: {rendered['slack']['text']!r}")
    return "\n".join(lines)


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
    if notification.get("template"):
        lines.append(f"  template {notification['template']['name']} v{notification['template']['version']}, category {notification['category']}")
    for channel, delivery in sorted(notification["deliveries"].items()):
        line = f"  {channel:<6} {delivery['status']:<8} attempts={delivery['attempts']}"
        if delivery.get("sent_at"):
            line += f" sent_at={delivery['sent_at']}"
        if delivery.get("release_at"):
            line += f" release_at={delivery['release_at']}"
        if delivery.get("last_error"):
            line += f" last_error={delivery['last_error']!r}"
        lines.append(line)
    return "\n".join(lines)
