"""How long an SMS is, as carriers count it: its encoding, its size and its fragments.

A text whose every character is in the GSM 03.38 alphabet goes as GSM-7: one septet per
character of the basic table, two (an escape and the character) for the extension table's
``^ { } \\ [ ~ ] | €`` and form feed. Any other character makes the whole message UCS-2: one unit
per UTF-16 code unit (an emoji outside the Basic Multilingual Plane takes two).

One SMS carries 160 septets or 70 UCS-2 units. A longer text is sent concatenated: each fragment
gives room to a header and carries 153 septets or 67 units, and carriers never split an escape
pair or a surrogate pair across two fragments, so a fragment that would end in the middle of one
ends before it.

The size counted against SNS's limit of 1,600 bytes per publish is one byte per septet and two
per UCS-2 unit (so at most 1,600 GSM-7 characters or 800 UCS-2 units: never more characters than
the emulators, which count characters, accept).

The alphabet is the maintained ``gsm0338`` codec's, read from it once at import by decoding
every code of its basic and extension tables. Counting does not call the codec's encoder: it
takes about 6.5 µs for a 22-character text and 670 µs for a 1,600-character one (a character at
a time), where the set operations below take about 1 µs and 25 µs, and a batch of 50,000 rows is
validated row by row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import gsm0338  # noqa: F401 - registers the "gsm03.38" codec

_CODEC = "gsm03.38"
_ESCAPE = 0x1B

GSM7 = "GSM-7"
UCS2 = "UCS-2"
SmsEncoding = Literal["GSM-7", "UCS-2"]

# Septets (GSM-7) or code units (UCS-2) one SMS carries, alone and as a fragment of a longer one.
SINGLE = {GSM7: 160, UCS2: 70}
FRAGMENT = {GSM7: 153, UCS2: 67}
# What SNS counts against its limit for one unit of each encoding.
BYTES_PER_UNIT = {GSM7: 1, UCS2: 2}


def _decodable(data: bytes) -> str | None:
    try:
        return data.decode(_CODEC)
    except UnicodeDecodeError:
        return None


def _alphabet() -> tuple[frozenset[str], frozenset[str]]:
    basic = {_decodable(bytes([code])) for code in range(128) if code != _ESCAPE}
    extension = {_decodable(bytes([_ESCAPE, code])) for code in range(128) if code != _ESCAPE}
    basic.discard(None)
    extension.discard(None)
    return frozenset(basic), frozenset(extension - basic)  # type: ignore[arg-type]


GSM7_BASIC, GSM7_EXTENSION = _alphabet()
GSM7_ALPHABET = GSM7_BASIC | GSM7_EXTENSION


@dataclass(frozen=True, slots=True)
class SmsLength:
    encoding: SmsEncoding
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    fragments: int

    @property
    def bytes(self) -> int:
        """The size SNS counts against its 1,600-byte limit."""
        return self.units * BYTES_PER_UNIT[self.encoding]


def sms_length(text: str) -> SmsLength:
    """The encoding, size and fragment count of ``text`` as one SMS (see the module docstring)."""
    characters = set(text)
    if characters <= GSM7_ALPHABET:
        doubled = characters & GSM7_EXTENSION
        units = len(text) + sum(text.count(character) for character in doubled)
        wide = doubled
        encoding: SmsEncoding = GSM7
    else:
        astral = {character for character in characters if character > "\uffff"}
        units = len(text) + sum(text.count(character) for character in astral)
        wide = astral
        encoding = UCS2
    return SmsLength(encoding, units, _fragments(text, units, encoding, wide))


def _fragments(text: str, units: int, encoding: SmsEncoding, wide: set[str] | frozenset[str]) -> int:
    if units <= SINGLE[encoding]:
        return 1
    size = FRAGMENT[encoding]
    if not wide:
        return -(-units // size)
    # A two-unit character never straddles two fragments: fill each up to what fits.
    fragments, used = 1, 0
    for character in text:
        width = 2 if character in wide else 1
        if used + width > size:
            fragments, used = fragments + 1, 0
        used += width
    return fragments
