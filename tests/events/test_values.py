"""Tests of the small value types of events/: a Cycle and a build's (on, as_of) instants."""

from __future__ import annotations

from datetime import date, datetime, time, timezone

import pytest

from events.contract.cycle import Cycle
from events.contract.instants import Instants, parse_as_of

# --- Cycle ------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "plan_year"), [("2027-28", 2027), ("1999-00", 1999), ("2099-00", 2099)])
def test_a_cycle_reads_its_plan_year_and_prints_as_it_was_written(text: str, plan_year: int) -> None:
    cycle = Cycle.parse(text)
    assert cycle.plan_year == plan_year
    assert cycle.start_year == plan_year - 1
    assert str(cycle) == text


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("2027-29", "second year must follow the first"),
        ("2027/28", "is not a cycle"),
        ("2027-2028", "is not a cycle"),
        ("27-28", "is not a cycle"),
        ("2027-", "is not a cycle"),
        ("", "is not a cycle"),
        ("\uff12\uff10\uff12\uff17-\uff12\uff18", "is not a cycle"),  # full-width digits are digits, but not ASCII
        ("+027-28", "is not a cycle"),
    ],
)
def test_a_malformed_cycle_is_refused(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        Cycle.parse(text)


def test_the_previous_cycle_crosses_the_century() -> None:
    assert str(Cycle.parse("2027-28").previous) == "2026-27"
    assert str(Cycle.parse("2000-01").previous) == "1999-00"


def test_a_plan_title_writes_the_years_with_a_slash() -> None:
    assert Cycle.parse("2027-28").plan_years == "2027/28"
    assert Cycle.parse("1999-00").plan_years == "1999/00"


@pytest.mark.parametrize(
    ("day", "cycle"),
    [
        (date(2026, 2, 28), "2026-27"),
        (date(2026, 3, 1), "2027-28"),
        (date(2026, 11, 23), "2027-28"),
        (date(2027, 2, 28), "2027-28"),
        (date(2027, 3, 1), "2028-29"),
        (date(2099, 6, 1), "2100-01"),
        (datetime(2026, 3, 1, 0, 0, tzinfo=timezone.utc), "2027-28"),
    ],
)
def test_a_day_falls_in_the_cycle_whose_timetable_started_last(day: date, cycle: str) -> None:
    assert str(Cycle.from_date(day)) == cycle


# --- Instants ---------------------------------------------------------------------

NOW = datetime(2026, 11, 23, 12, 30, tzinfo=timezone.utc)


def test_a_bare_date_as_of_is_the_end_of_that_day_utc() -> None:
    assert parse_as_of("2026-11-01") == datetime.combine(date(2026, 11, 1), time.max, tzinfo=timezone.utc)


def test_an_as_of_without_offset_is_utc_and_an_offset_is_kept() -> None:
    assert parse_as_of("2026-11-01T09:00:00") == datetime(2026, 11, 1, 9, tzinfo=timezone.utc)
    assert parse_as_of("2026-11-01T09:00:00Z") == datetime(2026, 11, 1, 9, tzinfo=timezone.utc)
    assert parse_as_of("2026-11-01T10:00:00+01:00") == datetime(2026, 11, 1, 9, tzinfo=timezone.utc)


def test_instants_default_to_now_and_on_ends_at_the_next_midnight_utc() -> None:
    instants = Instants.parse(None, None, now=NOW)
    assert instants == Instants(date(2026, 11, 23), NOW)
    assert instants.on_end == datetime(2026, 11, 24, tzinfo=timezone.utc)
    given = Instants.parse("2026-11-01", "2026-11-02T08:00:00Z", now=NOW)
    assert given == Instants(date(2026, 11, 1), datetime(2026, 11, 2, 8, tzinfo=timezone.utc))


def test_an_on_that_is_not_a_date_is_refused() -> None:
    with pytest.raises(ValueError):
        Instants.parse("2026-11-01T09:00:00", None, now=NOW)
