"""Quiet hours: a daily window of local time in which a recipient gets no notifications, and
the instant a held notification is released (the window's end, in the recipient's zone).

A window is ``[start, end)`` of wall-clock time in an IANA zone; ``start > end`` spans midnight
(22:00-07:00). Whether an instant is inside is decided by the wall clock the recipient sees at
that instant, so daylight-saving changes need no special case in the rule, only in finding the
window's end as an instant: an end time the clocks skip (02:30 on a spring-forward night) is
reached when they jump past it; an end time they show twice (autumn) is reached the first time
after the held instant. Pure functions of their arguments: the tests give them any instant.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, available_timezones

TIME_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"


@functools.cache
def known_time_zones() -> frozenset[str]:
    """The IANA zone names this system has (the only ones a recipient may give). Not the
    system's own files beside them: ``localtime`` is the server's zone, ``posixrules`` a default."""
    return frozenset(available_timezones()) - {"localtime", "posixrules"}


@dataclass(frozen=True, slots=True)
class QuietHours:
    start: time
    end: time
    zone: ZoneInfo

    @classmethod
    def from_document(cls, document: dict[str, str]) -> QuietHours:
        """From the preferences document's ``quiet_hours`` (validated when it was stored)."""
        return cls(time.fromisoformat(document["start"]), time.fromisoformat(document["end"]), ZoneInfo(document["timezone"]))

    def contains(self, wall: time) -> bool:
        if self.start < self.end:
            return self.start <= wall < self.end
        return wall >= self.start or wall < self.end

    def release_time(self, instant: datetime) -> datetime:
        """The earliest instant at or after ``instant`` (aware) outside the window, in UTC."""
        local = instant.astimezone(self.zone)
        if not self.contains(local.time()):
            return instant.astimezone(UTC)
        end_date = local.date() + timedelta(days=1) if self.start > self.end and local.time() >= self.start else local.date()
        end = datetime.combine(end_date, self.end)
        # The instants whose wall clock reads ``end``: one, two (autumn) or none (spring forward).
        readings = [
            candidate
            for fold in (0, 1)
            if (candidate := end.replace(tzinfo=self.zone, fold=fold).astimezone(UTC)) >= instant
            and candidate.astimezone(self.zone).replace(tzinfo=None) == end
        ]
        if readings:
            return min(readings)
        return self._clocks_jump_past(end, instant)

    def _clocks_jump_past(self, end: datetime, instant: datetime) -> datetime:
        """The instant the clocks jump over ``end`` (a wall time they skip): between reading it
        with the offset after the change and with the offset before it, found to the millisecond."""
        low = max(end.replace(tzinfo=self.zone, fold=1).astimezone(UTC), instant.astimezone(UTC))
        high = end.replace(tzinfo=self.zone, fold=0).astimezone(UTC)
        while high - low > timedelta(milliseconds=1):
            middle = low + (high - low) / 2
            if middle.astimezone(self.zone).replace(tzinfo=None) >= end:
                high = middle
            else:
                low = middle
        return high
