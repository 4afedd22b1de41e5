"""The one written form of each value the contract reads from text, and the bounds of its numbers.

An event is read by this pipeline, by DuckDB in every build, and by any sender's
validator in another language (the JSON Schema files). They agree only if a value
has one spelling that all of them read the same way, so the contract accepts
exactly the forms its JSON Schemas state, and nothing a parser would "also" read:

* a date-time is RFC 3339 (``2027-01-15T10:00:00Z``, ``…+01:00``): no Unix
  seconds, no bare date, no space or lower-case ``t``/``z``, no ``24:00`` or leap
  second, at most six fractional digits (microseconds: nothing is rounded away);
* a date is ``YYYY-MM-DD``;
* both lie in the years ``FIRST_YEAR`` to ``LAST_YEAR``, as written: a timestamp
  of year 1 or 9999 is a typo, and a build must be able to do date arithmetic on it;
* an id is a UUID in its 8-4-4-4-12 hyphenated form (either case; no braces,
  no ``urn:uuid:``, no bare 32 digits);
* a cycle is ``YYYY-YY`` in ASCII digits, plan years ``FIRST_PLAN_YEAR`` to
  ``LAST_PLAN_YEAR`` (its timetable then stays within the years above).

Each check is one precompiled regular expression on the text before it is
parsed, so an ingest pays a regex per field, not more. Patterns use ``[0-9]``,
never ``\\d``, which matches other scripts' digits in Python and in ECMAScript's
unicode mode.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any
from uuid import UUID

FIRST_YEAR = 2000
LAST_YEAR = 2099
FIRST_PLAN_YEAR = FIRST_YEAR + 1  # cycle 2001-02's timetable starts in March 2000
LAST_PLAN_YEAR = LAST_YEAR  # cycle 2099-00's ends in June 2099

# Numbers every table can hold: a count fits DuckDB's 32-bit INTEGER (and is far above any real count).
MAX_COUNT = 1_000_000_000
MAX_WEIGHT = 10_000  # a survey weight; real ones are near 1
MAX_COST_GBP = 1_000_000_000  # one meeting's cost, in pounds
MAX_ECHO = 80  # characters of a sent value a rejection reason repeats

_YEAR = "20[0-9]{2}"
_DAY = f"{_YEAR}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
_TIME = "([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,6})?"
_OFFSET = "(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])"
_HEX = "[0-9a-fA-F]"

DATE_TIME_PATTERN = f"^{_DAY}T{_TIME}{_OFFSET}$"
DATE_PATTERN = f"^{_DAY}$"
UUID_PATTERN = f"^{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}$"
CYCLE_PATTERN = "^20(0[1-9]|[1-9][0-9])-[0-9]{2}$"

# Python's ``$`` also matches before a final newline; fullmatch does not.
_DATE_TIME = re.compile(DATE_TIME_PATTERN[1:-1])
_DATE = re.compile(DATE_PATTERN[1:-1])
_LOCAL_TIME = re.compile(f"{_DAY}T{_TIME}")  # a date-time without its offset
_UUID = re.compile(UUID_PATTERN[1:-1])
_CYCLE = re.compile(CYCLE_PATTERN[1:-1])

DATE_TIME_EXAMPLE = "2027-01-15T10:00:00Z"


def shown(value: Any) -> str:
    """A sent value as a reason repeats it: its repr, cut to ``MAX_ECHO`` characters."""
    text = "null" if value is None else str(value).lower() if isinstance(value, bool) else repr(value)
    return text if len(text) <= MAX_ECHO else text[: MAX_ECHO - 1] + "…"


def _years() -> str:
    return f"years {FIRST_YEAR} to {LAST_YEAR}"


def date_time(value: Any) -> Any:
    """The instant written as RFC 3339 text; ValueError naming the form otherwise.

    A datetime passes as it is: a model built in Python (for the emitter) is judged again
    as text when it is sent."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and _LOCAL_TIME.fullmatch(value):
        raise ValueError(f"{shown(value)} has no timezone offset (end it with Z for UTC, or e.g. +01:00)")
    if not isinstance(value, str) or not _DATE_TIME.fullmatch(value):
        raise ValueError(f"{shown(value)} is not an RFC 3339 date-time in the {_years()} (e.g. {DATE_TIME_EXAMPLE})")
    try:
        return datetime.fromisoformat(value)
    except ValueError as error:  # e.g. 30 February
        raise ValueError(f"{shown(value)} is not a valid date-time ({error})") from None


def calendar_date(value: Any) -> Any:
    """The day written YYYY-MM-DD; ValueError otherwise (a date passes as it is)."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        raise ValueError(f"{shown(value)} is not a date written YYYY-MM-DD in the {_years()} (e.g. 2027-01-15)")
    try:
        return date.fromisoformat(value)
    except ValueError as error:
        raise ValueError(f"{shown(value)} is not a valid date ({error})") from None


def uuid(value: Any) -> Any:
    """The id written 8-4-4-4-12; ValueError otherwise (a UUID passes as it is)."""
    if isinstance(value, UUID):
        return value
    if not isinstance(value, str) or not _UUID.fullmatch(value):
        raise ValueError(f"{shown(value)} is not a UUID written 8-4-4-4-12 (e.g. 0b5d7c1e-3f0a-4a51-8c1d-7e2f9a60b001)")
    return UUID(value)


def is_cycle(text: str) -> bool:
    """Whether ``text`` is a cycle the contract covers, written as it must be (``2027-28``)."""
    return _CYCLE.fullmatch(text) is not None and int(text[5:]) == (int(text[:4]) + 1) % 100


def cycle_in_range(plan_year: int, text: str) -> None:
    """ValueError unless a cycle (already read as such) is one the contract covers."""
    if not FIRST_PLAN_YEAR <= plan_year <= LAST_PLAN_YEAR:
        raise ValueError(
            f"{shown(text)} is outside the cycles the contract covers"
            f" ({FIRST_PLAN_YEAR}-{(FIRST_PLAN_YEAR + 1) % 100:02d} to {LAST_PLAN_YEAR}-{(LAST_PLAN_YEAR + 1) % 100:02d})"
        )


def json_schema(kind: str) -> dict[str, Any]:
    """What the JSON Schema files say of a value of this form."""
    return {
        "date-time": {"type": "string", "format": "date-time", "pattern": DATE_TIME_PATTERN},
        "date": {"type": "string", "format": "date", "pattern": DATE_PATTERN},
        "uuid": {"type": "string", "format": "uuid", "pattern": UUID_PATTERN},
        "cycle": {"type": "string", "pattern": CYCLE_PATTERN},
    }[kind]
