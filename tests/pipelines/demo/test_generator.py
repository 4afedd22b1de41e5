"""Tests of the synthetic demo generator (pipelines/demo/generator.py)."""

from __future__ import annotations

import json
import uuid
from collections import Counter, defaultdict
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from events.contract.validation import Accepted, Rejected, verdict
from pipelines.demo.generator import (
    BAD_LINE_RULES,
    BOROUGH_NAMES,
    BOROUGHS,
    DemoLine,
    DemoScale,
    demo_lines,
    generate_cycle,
    generate_demo_lines,
    write_demo_file,
)

TODAY = date(2026, 11, 23)
END_OF_TODAY = datetime(2026, 11, 23, 23, 59, 59, tzinfo=timezone.utc)
ENVELOPE_KEYS = {"event_id", "event_type", "schema_version", "occurred_at", "source", "cycle", "synthetic", "payload"}


@pytest.fixture(scope="module")
def lines() -> list[DemoLine]:
    return demo_lines(TODAY)


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    path = tmp_path_factory.mktemp("demo") / "demo.jsonl"
    return path, write_demo_file(path, TODAY)


@pytest.fixture(scope="module")
def events(lines: list[DemoLine]) -> list[dict]:
    return [json.loads(item.line) for item in lines if item.kind == "event"]


def by_cycle(events: list[dict], cycle: str, event_type: str) -> list[dict]:
    return [e for e in events if e["cycle"] == cycle and e["event_type"] == event_type]


def below_target(events: list[dict], cycle: str) -> list[str]:
    """Boroughs whose responses (retracted ones left out) fall short of their target."""
    (programme,) = by_cycle(events, cycle, "programme.approved")
    targets = {t["borough"]: t["min_responses"] for t in programme["payload"]["targets"]}
    default = programme["payload"]["default_min_responses"]
    retracted = {e["payload"]["target_event_id"] for e in by_cycle(events, cycle, "event.retracted")}
    responses = Counter(
        e["payload"]["borough"]
        for e in by_cycle(events, cycle, "consultation.response_received")
        if e["event_id"] not in retracted
    )
    return [b for b in BOROUGHS if responses[b] < targets.get(b, default)]


# --- the API ----------------------------------------------------------------------


def test_borough_codes_and_names() -> None:
    assert len(BOROUGHS) == 32
    assert BOROUGHS[0] == "E09000002" and BOROUGHS[-1] == "E09000033"
    assert "E09000001" not in BOROUGHS
    assert list(BOROUGH_NAMES) == list(BOROUGHS)
    assert BOROUGH_NAMES["E09000002"] == "Barking and Dagenham"
    assert BOROUGH_NAMES["E09000012"] == "Hackney"
    assert BOROUGH_NAMES["E09000033"] == "Westminster"


def test_bad_cycle_name_is_refused() -> None:
    with pytest.raises(ValueError):
        list(generate_cycle("2027-29", TODAY))


# --- determinism -------------------------------------------------------------------


def test_same_seed_gives_identical_lines(lines: list[DemoLine]) -> None:
    assert list(generate_demo_lines(TODAY)) == [item.line for item in lines]


def test_other_seed_gives_other_events() -> None:
    early = date(2026, 3, 10)
    assert list(generate_cycle("2027-28", early, seed=7)) != list(generate_cycle("2027-28", early))


def test_an_event_known_earlier_is_the_same_event_later() -> None:
    earlier = {e["event_id"]: e for e in generate_cycle("2027-28", date(2026, 9, 1))}
    later = {e["event_id"]: e for e in generate_cycle("2027-28", TODAY)}
    assert earlier and len(later) > len(earlier)
    assert all(later[event_id] == event for event_id, event in earlier.items())


# --- the envelope and the contract ---------------------------------------------------


def test_each_good_line_is_an_envelope(lines: list[DemoLine]) -> None:
    for item in lines:
        if item.kind == "bad":
            continue
        event = json.loads(item.line)
        assert set(event) == ENVELOPE_KEYS
        assert event["event_type"] == item.label
        assert str(uuid.UUID(event["event_id"])) == event["event_id"]
        assert event["schema_version"] == 1
        assert event["occurred_at"].endswith("Z")
        first, second = event["cycle"].split("-")
        assert int(second) == (int(first) + 1) % 100
        assert isinstance(event["payload"], dict)


def test_good_lines_pass_the_contract_and_bad_lines_break_one_rule_each(lines: list[DemoLine]) -> None:
    for item in lines:
        outcome = verdict(item.line.encode(), received_at=END_OF_TODAY)
        if item.kind == "bad":
            assert isinstance(outcome, Rejected), item.label
            assert len(outcome.reasons) == 1, (item.label, outcome.reasons)
        else:
            assert isinstance(outcome, Accepted), (item.line[:200], getattr(outcome, "reasons", None))


def test_every_event_is_labelled_synthetic(events: list[dict], lines: list[DemoLine]) -> None:
    assert all(e["synthetic"] is True for e in events)  # the label the store and every output go by
    assert all(e["source"].startswith("synthetic:") for e in events)  # and a courtesy to whoever reads the source
    good = [json.loads(item.line) for item in lines if item.kind != "bad"]
    assert good and all(event["synthetic"] is True for event in good)


def test_no_event_after_today(events: list[dict]) -> None:
    assert max(e["occurred_at"] for e in events) <= "2026-11-23T23:59:59Z"
    assert all(datetime.fromisoformat(e["occurred_at"]) <= END_OF_TODAY for e in events)


def test_not_after_moves_the_cutoff() -> None:
    noon = datetime(2026, 7, 14, 12, 0, tzinfo=timezone.utc)
    cut = list(generate_cycle("2027-28", date(2026, 7, 14), not_after=noon))
    assert cut and max(e["occurred_at"] for e in cut) <= "2026-07-14T12:00:00Z"


def test_no_city_of_london_among_good_events(lines: list[DemoLine]) -> None:
    for item in lines:
        if item.kind != "bad":
            assert "E09000001" not in item.line


# --- the demo file --------------------------------------------------------------------


def test_bad_lines_are_present_and_counted(written: tuple[Path, dict[str, int]], lines: list[DemoLine]) -> None:
    path, counts = written
    written = path.read_text(encoding="utf-8").split("\n")
    assert written[-1] == ""  # every line ends with a newline
    written = written[:-1]
    assert written == [item.line for item in lines]
    assert counts["bad_lines"] == len(BAD_LINE_RULES) == 13
    assert sorted(item.label for item in lines if item.kind == "bad") == sorted(BAD_LINE_RULES)
    assert sum(counts.values()) == len(written)
    # Lines that are not even a JSON object are among the bad ones.
    not_objects = 0
    for line in written:
        try:
            body = json.loads(line)
        except json.JSONDecodeError:
            not_objects += 1
            continue
        not_objects += not isinstance(body, dict)
    assert not_objects == 3  # malformed JSON, an empty line, an array


def test_duplicates_are_exact_resends_of_earlier_lines(lines: list[DemoLine]) -> None:
    seen: set[str] = set()
    duplicates = 0
    for item in lines:
        if item.kind == "duplicate":
            assert item.line in seen
            duplicates += 1
        elif item.kind == "event":
            assert item.line not in seen
            seen.add(item.line)
    assert 0.005 * len(seen) <= duplicates <= 0.015 * len(seen)


def test_arrival_order_follows_occurred_at(events: list[dict]) -> None:
    stamps = [e["occurred_at"] for e in events]
    assert stamps == sorted(stamps)


def test_counts_per_event_type(written: tuple[Path, dict[str, int]]) -> None:
    _, counts = written
    assert counts["cycle.opened"] == 2
    assert counts["borough.profile_recorded"] == 64
    assert counts["stage.signed_off"] == 8 + 5  # previous cycle complete; current up to feedback_1
    assert counts["priorities.adopted"] == 2  # current cycle's adopted on 20 November
    assert counts["plan.published"] == 1
    assert counts["respondent.erasure_requested"] == 2
    assert counts["event.retracted"] == 4
    assert 7_000 <= counts["consultation.response_received"] <= 10_000
    assert 20_000 <= counts["survey.response_recorded"] <= 28_000
    assert 30_000 <= sum(counts.values()) <= 40_000


# --- the story the data tells --------------------------------------------------------------


@pytest.mark.parametrize("cycle", ["2026-27", "2027-28"])
def test_every_borough_has_a_profile(events: list[dict], cycle: str) -> None:
    profiles = by_cycle(events, cycle, "borough.profile_recorded")
    assert sorted(e["payload"]["borough"] for e in profiles) == list(BOROUGHS)
    for e in profiles:
        p = e["payload"]
        assert p["source"] == "Census 2021"
        assert set(p["groups"]) == {"age_band", "gender", "ethnic_group", "disability"}
        assert 100_000 < p["population"] < 400_000


@pytest.mark.parametrize("cycle", ["2026-27", "2027-28"])
def test_one_borough_resubmits_its_audit(events: list[dict], cycle: str) -> None:
    audits = by_cycle(events, cycle, "cdrp.audit_submitted")
    per_borough = Counter(e["payload"]["borough"] for e in audits)
    twice = [b for b, n in per_borough.items() if n == 2]
    assert len(twice) == 1 and max(per_borough.values()) == 2
    first, second = sorted((e for e in audits if e["payload"]["borough"] == twice[0]), key=lambda e: e["occurred_at"])
    assert first["occurred_at"] < second["occurred_at"]
    assert first["payload"]["audit_ref"] != second["payload"]["audit_ref"]


def test_audits_missing_only_where_late(events: list[dict]) -> None:
    assert len({e["payload"]["borough"] for e in by_cycle(events, "2027-28", "cdrp.audit_submitted")}) == 30
    assert len({e["payload"]["borough"] for e in by_cycle(events, "2026-27", "cdrp.audit_submitted")}) == 32


@pytest.mark.parametrize("cycle", ["2026-27", "2027-28"])
def test_exactly_two_boroughs_below_target(events: list[dict], cycle: str) -> None:
    (programme,) = by_cycle(events, cycle, "programme.approved")
    targets = {t["borough"]: t["min_responses"] for t in programme["payload"]["targets"]}
    assert len(targets) == 8 and programme["payload"]["default_min_responses"] == 50
    below = below_target(events, cycle)
    assert len(below) == 2 and all(b in targets for b in below)


def test_retractions_target_responses_keyed_twice(events: list[dict]) -> None:
    by_id = {e["event_id"]: e for e in events}
    retractions = [e for e in events if e["event_type"] == "event.retracted"]
    assert retractions
    for r in retractions:
        assert r["payload"]["reason"] == "entered twice by mistake"
        target = by_id[r["payload"]["target_event_id"]]
        assert target["event_type"] == "consultation.response_received"
        assert target["occurred_at"] < r["occurred_at"]
        twins = [
            e for e in events
            if e["event_type"] == "consultation.response_received" and e["payload"] == target["payload"]
        ]
        assert len(twins) == 2


def test_erasure_names_a_respondent_seen_in_both_cycles(events: list[dict]) -> None:
    (erasure,) = by_cycle(events, "2027-28", "respondent.erasure_requested")
    ref = erasure["payload"]["respondent_ref"]
    cycles_seen = {
        e["cycle"]
        for e in events
        if e["event_type"] == "consultation.response_received" and e["payload"]["respondent"]["respondent_ref"] == ref
    }
    assert cycles_seen == {"2026-27", "2027-28"}


def test_some_respondents_answer_twice_on_different_channels(events: list[dict]) -> None:
    retracted = {e["payload"]["target_event_id"] for e in by_cycle(events, "2027-28", "event.retracted")}
    channels: dict[str, list[str]] = defaultdict(list)
    for e in by_cycle(events, "2027-28", "consultation.response_received"):
        if e["event_id"] not in retracted:
            channels[e["payload"]["respondent"]["respondent_ref"]].append(e["payload"]["channel"])
    repeaters = [c for c in channels.values() if len(c) > 1]
    assert len(repeaters) > 100
    assert all(len(set(c)) == len(c) for c in repeaters)


def test_young_people_are_under_represented(events: list[dict]) -> None:
    responses = by_cycle(events, "2027-28", "consultation.response_received")
    stated = [e["payload"]["respondent"]["age_band"] for e in responses if "age_band" in e["payload"]["respondent"]]
    assert 0.75 * len(responses) < len(stated) < 0.95 * len(responses)  # ~15% not stated
    profiles = by_cycle(events, "2027-28", "borough.profile_recorded")
    young_pop = sum(p["payload"]["groups"]["age_band"]["16-24"] for p in profiles)
    all_pop = sum(sum(p["payload"]["groups"]["age_band"].values()) for p in profiles)
    assert stated.count("16-24") / len(stated) < 0.85 * young_pop / all_pop


def test_channels_are_all_used_and_online_leads(events: list[dict]) -> None:
    channels = Counter(e["payload"]["channel"] for e in by_cycle(events, "2027-28", "consultation.response_received"))
    assert len(channels) == 9
    assert channels.most_common(1)[0][0] == "online_survey"


def test_survey_waves_started_by_today(events: list[dict]) -> None:
    waves = Counter(e["payload"]["wave"] for e in by_cycle(events, "2027-28", "survey.response_recorded"))
    assert set(waves) == {"2026Q1", "2026Q2", "2026Q3", "2026Q4"}
    assert waves["2026Q4"] < waves["2026Q3"]  # Q4 is under way
    weights = [e["payload"]["weight"] for e in by_cycle(events, "2026-27", "survey.response_recorded")]
    assert min(weights) > 0 and 0.95 < sum(weights) / len(weights) < 1.05


def test_timetable_as_known_on_the_day(events: list[dict]) -> None:
    previous = {e["payload"]["stage"] for e in by_cycle(events, "2026-27", "stage.signed_off")}
    assert len(previous) == 8
    current = [e["payload"]["stage"] for e in by_cycle(events, "2027-28", "stage.signed_off")]
    assert current == ["brief", "programme_approval", "fieldwork", "analysis", "feedback_1"]
    (adopted,) = by_cycle(events, "2027-28", "priorities.adopted")
    scopes = Counter(p["scope"] for p in adopted["payload"]["priorities"])
    assert scopes["LONDON"] == 5 and len(scopes) > 1
    assert not by_cycle(events, "2027-28", "plan.published")


def test_round_one_feedback_misses_two_boroughs_until_the_end_of_october() -> None:
    def reached(today: date) -> set[str]:
        out: set[str] = set()
        for e in generate_cycle("2027-28", today):
            if e["event_type"] == "feedback.published" and e["payload"]["round"] == 1:
                boroughs = e["payload"]["boroughs"]
                out |= set(BOROUGHS) if boroughs == "all" else set(boroughs)
        return out

    assert len(reached(date(2026, 10, 30))) == 30
    assert reached(date(2026, 10, 31)) == set(BOROUGHS)


def test_priorities_are_not_adopted_before_20_november() -> None:
    types = {e["event_type"] for e in generate_cycle("2027-28", date(2026, 11, 19))}
    assert "priorities.adopted" not in types
    assert "priorities.adopted" in {e["event_type"] for e in generate_cycle("2027-28", date(2026, 11, 20))}


def test_scale_shrinks_volumes_but_keeps_the_shape() -> None:
    small = list(generate_cycle("2026-27", TODAY, scale=DemoScale(scale=0.1)))
    types = Counter(e["event_type"] for e in small)
    assert 32 * 4 * 9 <= types["survey.response_recorded"] <= 32 * 4 * 11  # ~10 a borough a quarter
    assert types["borough.profile_recorded"] == 32
    assert len(below_target(small, "2026-27")) == 2
