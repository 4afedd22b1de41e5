"""Tests of the demo's deliveries (pipelines/demo/deliveries.py): knowledge time spread across the months."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta, timezone

import pytest

from events.contract.validation import Accepted, Rejected, verdict
from events.home import PlanningHome
from events.storage.store import EventStore
from pipelines.demo.deliveries import Delivery, deliveries, delivery_of, known_by
from pipelines.demo.generator import BAD_LINE_RULES, DemoLine, DemoScale, demo_lines
from pipelines.demo.run import ingest_deliveries

TODAY = date(2026, 11, 23)
NOW = datetime(2026, 11, 23, 18, 0, tzinfo=timezone.utc)  # the demo's today, in the evening
ANALYSIS_OPENS = datetime(2026, 9, 1, tzinfo=timezone.utc)
START_OF_OCTOBER = datetime(2026, 10, 1, tzinfo=timezone.utc)


def occurred(line: DemoLine) -> datetime:
    return datetime.fromisoformat(line.event["occurred_at"].replace("Z", "+00:00"))


@pytest.fixture(scope="module")
def lines() -> list[DemoLine]:
    return demo_lines(TODAY, not_after=NOW)


@pytest.fixture(scope="module")
def arrived(lines: list[DemoLine]) -> list[Delivery]:
    return deliveries(lines, NOW)


def test_knowledge_times_spread_across_the_months_and_none_after_today(arrived: list[Delivery]) -> None:
    times = [d.recorded_at for d in arrived]
    assert times == sorted(times)
    assert max(times) <= NOW
    months = {(t.year, t.month) for t in times}
    assert len(months) >= 20  # February 2025 (the previous cycle opens) to November 2026
    assert min(times) < datetime(2025, 3, 1, tzinfo=timezone.utc)
    assert len(arrived) >= 80  # weekly and monthly files, not one big one


def test_no_line_is_known_before_it_happened(arrived: list[Delivery]) -> None:
    for delivery in arrived:
        for line in delivery.lines:
            assert occurred(line) < delivery.recorded_at, (delivery.name, line.label)


def test_each_line_passes_the_contract_at_its_knowledge_time(arrived: list[Delivery]) -> None:
    """Received at its delivery's time, a good line is accepted and a bad one breaks its one rule only."""
    for delivery in arrived:
        for line in delivery.lines:
            outcome = verdict(line.line.encode(), received_at=delivery.recorded_at)
            if line.kind == "bad":
                assert isinstance(outcome, Rejected) and len(outcome.reasons) == 1, (line.label, outcome)
            else:
                assert isinstance(outcome, Accepted), (delivery.name, line.label, getattr(outcome, "reasons", None))


def test_every_line_due_by_today_arrives_once_and_later_ones_wait(lines: list[DemoLine], arrived: list[Delivery]) -> None:
    delivered = Counter(line.line for d in arrived for line in d.lines if line.kind == "event")
    assert set(delivered.values()) == {1}
    due = {line.line for line in lines if line.kind == "event" and delivery_of(line.event)[0] <= NOW}
    assert set(delivered) == due
    waiting = [line for line in lines if line.kind == "event" and line.line not in due]
    assert waiting, "November's PAS interviews and meetings are delivered in December"
    assert {line.label for line in waiting} >= {"survey.response_recorded", "group.meeting_held"}
    resent = [line for d in arrived for line in d.lines if line.kind == "duplicate"]
    assert resent and all(line.line in delivered for line in resent)
    bad = sorted(line.label for d in arrived for line in d.lines if line.kind == "bad")
    # a bad line travels with the event it was copied from: the latest interview's comes in December
    assert bad == sorted(set(BAD_LINE_RULES) - {"negative_weight"})


def test_late_paper_returns_arrive_after_the_analysis_stage_and_october_began(arrived: list[Delivery]) -> None:
    (late,) = [d for d in arrived if d.feed == "late-paper-returns" and d.recorded_at.year == 2026]
    assert late.recorded_at > START_OF_OCTOBER
    responses = [line for line in late.lines if line.kind == "event"]
    assert len(responses) >= 500
    assert {line.event["payload"]["channel"] for line in responses} <= {
        "ward_panel", "public_meeting", "consultative_group", "youth_engagement", "written_submission",
        "cdrp_consultation", "civic_forum", "focus_group"}
    assert all(occurred(line) < ANALYSIS_OPENS for line in responses)


def test_an_audit_arrives_after_the_analysis_stage_opened(arrived: list[Delivery]) -> None:
    late = [
        line for d in arrived if d.recorded_at >= ANALYSIS_OPENS for line in d.lines
        if line.label == "cdrp.audit_submitted" and occurred(line) < ANALYSIS_OPENS and line.event["cycle"] == "2027-28"
    ]
    assert late


def test_a_retraction_comes_after_the_response_it_retracts_and_after_october_began(arrived: list[Delivery]) -> None:
    known_at = {line.event["event_id"]: d.recorded_at for d in arrived for line in d.lines if line.kind == "event"}
    retractions = [
        line for d in arrived for line in d.lines if line.label == "event.retracted" and line.event["cycle"] == "2027-28"
    ]
    assert retractions
    for line in retractions:
        assert known_at[line.event["payload"]["target_event_id"]] < known_at[line.event["event_id"]]
        assert known_at[line.event["event_id"]] > START_OF_OCTOBER > occurred(line)


def test_an_erasure_is_carried_out_after_every_response_of_its_cycle_arrived(arrived: list[Delivery]) -> None:
    for cycle in ("2026-27", "2027-28"):
        known = [(d.recorded_at, line.label) for d in arrived for line in d.lines
                 if line.kind == "event" and line.event["cycle"] == cycle]
        (erased_at,) = [t for t, label in known if label == "respondent.erasure_requested"]
        assert max(t for t, label in known if label == "consultation.response_received") < erased_at


def test_knowledge_is_never_ahead_of_the_real_clock() -> None:
    assert known_by(date(2026, 11, 20), NOW) == datetime(2026, 11, 20, 23, 59, 59, 999999, tzinfo=timezone.utc)
    assert known_by(date(2027, 6, 1), NOW) == NOW  # a --today in the future still knows only what has arrived
    assert known_by(TODAY, NOW) == NOW


def test_a_day_earlier_knows_less() -> None:
    before = deliveries(demo_lines(date(2026, 10, 12), not_after=NOW), known_by(date(2026, 10, 12), NOW))
    assert max(d.recorded_at for d in before) < datetime(2026, 10, 13, tzinfo=timezone.utc)
    assert any(d.feed == "late-paper-returns" and d.recorded_at.date() == date(2026, 10, 12) for d in before)
    one_day_before = deliveries(demo_lines(date(2026, 10, 11), not_after=NOW), known_by(date(2026, 10, 11), NOW))
    assert not any(d.feed == "late-paper-returns" and d.recorded_at.year == 2026 for d in one_day_before)
    assert max(d.recorded_at for d in one_day_before) < datetime(2026, 10, 11, tzinfo=timezone.utc) + timedelta(days=1)


def test_each_event_is_stored_at_its_delivery_time_and_a_second_run_stores_nothing_more(home: PlanningHome) -> None:
    arrived = deliveries(demo_lines(TODAY, scale=DemoScale(scale=0.05), not_after=NOW), NOW)
    with EventStore(home.store, writer=True, holder="test") as store:
        first = ingest_deliveries(store, arrived)
        letters = store.dead_letters()
        again = ingest_deliveries(store, arrived)
        assert store.dead_letters() == letters
        stored = {e["event_id"]: e["recorded_at"] for e in store.events()}
    assert first.accepted == len(stored) and again.accepted == 0
    assert again.duplicates == first.accepted + first.duplicates
    expected = {line.event["event_id"]: d.recorded_at for d in arrived for line in d.lines if line.kind == "event"}
    assert {event_id: datetime.fromisoformat(at.replace("Z", "+00:00")) for event_id, at in stored.items()} == expected
    origins = {letter["origin"].split(":")[0] for letter in letters}
    assert letters and origins <= {f"synthetic-deliveries/{d.name}" for d in arrived}
