"""A planning cycle, named "YYYY-YY" on the wire (e.g. "2027-28").

Cycle ``P-(P+1)`` produces the plan for year P (its *plan year*). Its
timetable starts in March of Y = P - 1 (its *start year*), with the brief, and
ends with publication in May–June of P (docs/tables.md, "The timetable"). A
day belongs to the cycle whose timetable started last: from 1 March of Y to the
last day of February of P. (A cycle's last stages overlap the next one's first.)

Events carry the cycle as its text; this value type is for code that reasons
about cycles (the timetable, the packs' "last cycle", the demo, the CLI).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from events.contract.forms import shown

TIMETABLE_STARTS_IN_MONTH = 3  # the brief opens on 1 March of the start year


@dataclass(frozen=True, order=True)
class Cycle:
    """One planning cycle, identified by its plan year P ("2027-28" has P = 2027)."""

    plan_year: int

    @classmethod
    def parse(cls, text: str) -> Cycle:
        """The cycle named ``text``; ValueError unless it is YYYY-YY in ASCII digits with YY = YYYY + 1."""
        first, _, second = text.partition("-")
        if not (len(first) == 4 and len(second) == 2 and _ascii_digits(first) and _ascii_digits(second)):
            raise ValueError(f"{shown(text)} is not a cycle (YYYY-YY, e.g. 2027-28)")
        if int(second) != (int(first) + 1) % 100:
            raise ValueError(f"{shown(text)}: the second year must follow the first (e.g. 2027-28)")
        return cls(int(first))

    @classmethod
    def from_date(cls, day: date) -> Cycle:
        """The cycle whose timetable started last by ``day`` (a datetime counts by its own date).

        ``Cycle.from_date(date(2026, 11, 23))`` is 2027-28; 2026-02-28 is still in 2026-27.
        """
        if isinstance(day, datetime):
            day = day.date()
        start_year = day.year if day.month >= TIMETABLE_STARTS_IN_MONTH else day.year - 1
        return cls(start_year + 1)

    @property
    def start_year(self) -> int:
        """Y = P - 1: the year the timetable starts (the brief in March, priorities in November)."""
        return self.plan_year - 1

    @property
    def previous(self) -> Cycle:
        """The cycle before this one: 2027-28 -> 2026-27."""
        return Cycle(self.plan_year - 1)

    @property
    def plan_years(self) -> str:
        """The years as a plan's title writes them: 2027-28 -> "2027/28"."""
        return f"{self.plan_year}/{(self.plan_year + 1) % 100:02d}"

    def __str__(self) -> str:
        return f"{self.plan_year}-{(self.plan_year + 1) % 100:02d}"


def _ascii_digits(text: str) -> bool:
    return text.isascii() and text.isdigit()
