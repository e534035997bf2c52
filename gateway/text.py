"""Rules about text the API takes, with their OpenAPI patterns.

A pattern in the OpenAPI document is an ECMA-262 regular expression, the gateway's checks are
Python's ``re``; the two disagree on ``\\w`` and ``\\s`` (ECMA: ASCII word characters, another set
of spaces), so every pattern here is written, or translated, to mean in the document exactly
what the gateway checks.
"""

from __future__ import annotations

import sys


def _character_class(predicate) -> str:  # noqa: ANN001 - a str -> bool
    """The characters ``predicate`` holds for, as the inside of a ``[...]`` both dialects read alike."""
    ranges: list[tuple[int, int]] = []
    for code in range(sys.maxunicode + 1):
        if predicate(chr(code)):
            if ranges and ranges[-1][1] == code - 1:
                ranges[-1] = (ranges[-1][0], code)
            else:
                ranges.append((code, code))
    return "".join(_escape(low) if low == high else f"{_escape(low)}-{_escape(high)}" for low, high in ranges)


def _escape(code: int) -> str:
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


# What str.strip() strips: a value of nothing else is blank ("missing message"; a contact "not set").
BLANK_CLASS = _character_class(str.isspace)
BLANK_PATTERN = f"^[{BLANK_CLASS}]*$"
# Text Postgres can store (``storable_text``): no NUL. (Unpaired surrogates cannot be generated
# from a pattern; they are refused all the same.)
STORABLE_PATTERN = r"^[^\x00]*$"
# Storable and not blank.
NOT_BLANK_STORABLE_PATTERN = f"^[^\\x00]*[^\\x00{BLANK_CLASS}][^\\x00]*$"


def ecma_pattern(pattern: str) -> str:
    """A Python pattern as the document states it. Python's ``\\d`` is any Unicode decimal digit,
    ECMA's is 0-9: ``\\p{Nd}`` is the same set. Python's ``\\w`` is a Unicode letter or digit or
    ``_``, ECMA's is ASCII: ``\\p{L}\\p{N}_`` is the same set (the pattern must use ``\\w`` only
    inside ``[...]``)."""
    return pattern.replace(r"\d", r"\p{Nd}").replace(r"\w", r"\p{L}\p{N}_")


def storable_text(value: str) -> str:
    """Refuse what Postgres cannot store in a text column: NUL, and unpaired UTF-16 surrogates
    (which JSON's \\u escapes can express but UTF-8 cannot)."""
    if "\x00" in value or any("\ud800" <= character <= "\udfff" for character in value):
        raise ValueError("contains a NUL character or an unpaired surrogate, which cannot be stored")
    return value
