"""Printing results and errors: readable lines for people, one JSON document with ``--json``.

Results go to stdout, errors and progress to stderr, so ``notifyctl ... --json | jq`` only ever
sees the result.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from datetime import date, datetime
from typing import Annotated, Any, ParamSpec, TypeVar
from uuid import UUID

import typer

from notifyctl.errors import NotifyctlError

P = ParamSpec("P")
R = TypeVar("R")

JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON (errors as JSON on stderr).")]


def emit(data: Any, *, as_json: bool, human: Callable[[Any], str] | str | None = None) -> None:
    """Print ``data`` as JSON, or ``human`` (a string, or a function of data) for people."""
    if as_json:
        typer.echo(json.dumps(data, default=_json_value, indent=2))
        return
    text = human(data) if callable(human) else human
    if text:
        typer.echo(text)


def format_age(seconds: float) -> str:
    """A duration for people: 42s, 3.5m, 2.0h, 1.5d."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


def report_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn a NotifyctlError into its message on stderr and its exit code, without a traceback.

    The command's ``as_json`` parameter (the ``--json`` flag) chooses the error's format.
    """

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except NotifyctlError as error:
            if kwargs.get("as_json"):
                typer.echo(json.dumps({"error": error.as_dict()}, default=_json_value), err=True)
            else:
                typer.echo(f"error: {error.message}", err=True)
            raise typer.Exit(int(error.exit_code)) from None

    return wrapper


def _json_value(value: object) -> object:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")
