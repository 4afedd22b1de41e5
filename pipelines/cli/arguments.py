"""The kinds of value a `planning` option takes, each with the range it may have.

A limit a user can set is a limit a user can switch off: ``float('nan')``
compares false with everything, so ``--timeout nan`` would have removed the
time limit, and ``--limit 1e20`` ran into a traceback. Every number and
instant the command takes goes through one of these argparse types: a value
that is not finite, not a number or out of range exits 2 (USAGE) with a
message naming the option and the range allowed (argparse names the option).
The ranges are listed in docs/cli.md ("Limits").
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone

from events.contract.vocabulary import BOROUGHS, LONDON

EARLIEST_DAY = date(2000, 1, 1)  # nothing the pipeline records or builds is older than this
LATEST_DAY = date(2099, 12, 31)  # a build's `on` or `as_of` is no later than this


def whole_number(low: int, high: int) -> Callable[[str], int]:
    """A whole number from ``low`` to ``high`` inclusive."""

    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number; give one from {low:,} to {high:,}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text} is out of range; give a whole number from {low:,} to {high:,}")
        return value

    parse.__name__ = "whole number"
    return parse


def seconds(high: float) -> Callable[[str], float]:
    """A finite number of seconds, more than 0 and at most ``high``."""
    return positive_number(high, "seconds")


def positive_number(high: float, unit: str) -> Callable[[str], float]:
    """A finite number of ``unit`` (e.g. "events per second"), more than 0 and at most ``high``."""
    most = f"{high:,.0f}" if high == int(high) else f"{high:g}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number of {unit}") from None
        if not math.isfinite(value) or not 0 < value <= high:
            raise argparse.ArgumentTypeError(f"{text} is out of range; give more than 0 and at most {most} {unit}")
        return value

    parse.__name__ = unit
    return parse


def day(text: str) -> str:
    """A date (YYYY-MM-DD) from EARLIEST_DAY to LATEST_DAY, kept as its text."""
    try:
        value = date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None
    if not EARLIEST_DAY <= value <= LATEST_DAY:
        raise argparse.ArgumentTypeError(f"{text} is out of range; give a date from {EARLIEST_DAY} to {LATEST_DAY}")
    return text


def as_of(text: str) -> str:
    """A knowledge cutoff (a date, or an ISO-8601 time) from EARLIEST_DAY to the end of LATEST_DAY, kept as its text."""
    earliest = datetime.combine(EARLIEST_DAY, datetime.min.time(), tzinfo=timezone.utc)
    latest = datetime.combine(LATEST_DAY + timedelta(days=1), datetime.min.time(), tzinfo=timezone.utc)
    _instant(text, earliest, latest)
    return text


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def recorded_at(text: str) -> datetime:
    """Knowledge time for a backfill: not before EARLIEST_DAY, not after now plus the contract's tolerance
    for the future (the contract would refuse an event dated later, and a build could never see it)."""
    from events.contract.models import FUTURE_TOLERANCE

    earliest = datetime.combine(EARLIEST_DAY, datetime.min.time(), tzinfo=timezone.utc)
    return _instant(text, earliest, utc_now() + FUTURE_TOLERANCE)


def since(text: str) -> datetime:
    """The start of a period: an ISO-8601 instant, or a date meaning its start (00:00 UTC), from EARLIEST_DAY to now."""
    earliest = datetime.combine(EARLIEST_DAY, datetime.min.time(), tzinfo=timezone.utc)
    if len(text) == 10:  # YYYY-MM-DD: read as a date's start, not (as a knowledge cutoff is) its end
        day(text)
        text = f"{text}T00:00:00Z"
    return _instant(text, earliest, utc_now())


def _instant(text: str, earliest: datetime, latest: datetime) -> datetime:
    from events.contract.instants import parse_as_of

    try:
        moment = parse_as_of(text)
    except (ValueError, OverflowError):
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO-8601 date or time") from None
    if not earliest <= moment <= latest:
        shown = latest.isoformat(timespec="seconds").replace("+00:00", "Z")
        raise argparse.ArgumentTypeError(
            f"{text} is out of range; give a time from {earliest.date()} to {shown}"
        )
    return moment.astimezone(timezone.utc)


def scope(text: str) -> str:
    """A scope the Panel's tables name: LONDON or one of the 32 boroughs' GSS codes."""
    value = text.strip()
    if value.upper() == LONDON:
        return LONDON
    if value.upper() not in BOROUGHS:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a scope; give LONDON or a borough's GSS code, {BOROUGHS[0]} to {BOROUGHS[-1]}")
    return value.upper()
