"""Structured logging for every service: JSON lines (or readable console lines) via structlog.

Context such as ``notification_id``, ``client`` and ``channel`` is bound with
``structlog.contextvars.bound_contextvars`` and appears on every line logged inside it. Phone
numbers and email addresses are masked before anything is written.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import structlog

_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")
_PHONE = re.compile(r"\+\d{4,12}(\d{2})\b")


def mask_personal_data(value: str) -> str:
    """``+14155552671`` -> ``+*********71``; ``jane@example.com`` -> ``j***@example.com``."""
    value = _EMAIL.sub(r"\1***@\2", value)
    return _PHONE.sub(lambda m: "+" + "*" * (len(m.group(0)) - 3) + m.group(1), value)


def _mask_event(_logger: Any, _method: str, event: dict[str, Any]) -> dict[str, Any]:
    for key, value in event.items():
        # Neither pattern matches without its "@" or "+"; most values have neither, and the
        # regexes cost more than the test (a line per accepted notification, in the gateway).
        if isinstance(value, str) and ("@" in value or "+" in value):
            event[key] = mask_personal_data(value)
    return event


def configure_logging(*, level: str = "INFO", fmt: str = "json", service: str) -> None:
    numeric_level = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    renderer: Any = structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _mask_event,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(service=service)
    # Libraries log through the standard library; keep their warnings, in the same stream.
    logging.basicConfig(level=max(numeric_level, logging.WARNING), stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name)
