"""The two instants a build is evaluated at: ``on`` and ``as_of``.

* ``on`` is a day: events whose ``occurred_at`` is after the end of that day
  (UTC) are left out: "the cycle as it stood on 1 November".
* ``as_of`` is an instant of knowledge: events whose ``recorded_at`` is later
  are left out. A bare date means the end of that day (UTC), "what did the
  Panel know on 1 November"; a time without an offset is UTC.

Both default to now (UTC). docs/tables.md ("Two instants") tells the Panel the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone


@dataclass(frozen=True)
class Instants:
    """The (on, as_of) a build is evaluated at."""

    on: date
    as_of: datetime

    @property
    def on_end(self) -> datetime:
        """The first instant after ``on`` (midnight UTC): events occurring at or after it are left out."""
        return datetime.combine(self.on + timedelta(days=1), time(0), tzinfo=timezone.utc)

    @classmethod
    def parse(cls, on: str | None, as_of: str | None, now: datetime | None = None) -> Instants:
        """From their ISO-8601 text; either may be None for ``now`` (default: the wall clock, UTC)."""
        now = now or datetime.now(timezone.utc)
        on_date = date.fromisoformat(on) if on else now.date()
        return cls(on_date, parse_as_of(as_of) if as_of else now)


def parse_as_of(text: str) -> datetime:
    """An ISO-8601 instant; a bare date is the end of that day, UTC; no offset means UTC."""
    if len(text) == 10:
        return datetime.combine(date.fromisoformat(text), time.max, tzinfo=timezone.utc)
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
