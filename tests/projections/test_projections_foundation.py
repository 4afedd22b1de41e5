"""stage_status, consultation_coverage, cdrp_audits and dead_letters on a small hand-computed cycle.

The scenario is built through the real Dagster job and read back through the
published snapshot, exactly as `planning query` reads it.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from events.home import PlanningHome
from events.storage.store import EventStore
from events.contract.vocabulary import BOROUGHS
from pipelines.orchestration.runs import build
from pipelines.ingest.files import ingest_files
from projections.reading.snapshots import open_reader
from tests.support.events import make_event, write_jsonl

CYCLE = "2027-28"
FIRST_INGEST = datetime(2026, 9, 5, 12, 0, tzinfo=timezone.utc)
LATE_INGEST = datetime(2026, 9, 9, 12, 0, tzinfo=timezone.utc)


def response(borough: str, channel: str, ref: str, occurred_at: str = "2026-07-01T10:00:00Z", **envelope) -> dict:
    return make_event(
        "consultation.response_received",
        {"borough": borough, "channel": channel, "respondent": {"respondent_ref": ref}},
        occurred_at=occurred_at, **envelope,
    )


def audit(borough: str, ref: str, occurred_at: str, priorities: list[tuple[str, int]]) -> dict:
    return make_event(
        "cdrp.audit_submitted",
        {"borough": borough, "audit_ref": ref, "priorities": [{"theme": t, "rank": r} for t, r in priorities]},
        occurred_at=occurred_at,
    )


retracted_response = response("E09000002", "online_survey", "r-9")
SCENARIO = [
    make_event("cycle.opened", {"timetable": [{"stage": "fieldwork", "opens_on": "2026-06-15", "due_on": "2026-08-31"}]},
               occurred_at="2026-02-15T09:00:00Z"),
    make_event("stage.signed_off", {"stage": "brief", "body": "planning_panel", "decision_ref": "PP-1"}, occurred_at="2026-03-20T09:00:00Z"),
    make_event("programme.approved", {"default_min_responses": 2, "targets": [{"borough": "E09000012", "min_responses": 3}]},
               occurred_at="2026-05-01T09:00:00Z"),
    make_event("stage.signed_off", {"stage": "programme_approval", "body": "consultation_committee", "decision_ref": "CC-1"},
               occurred_at="2026-05-20T09:00:00Z"),
    response("E09000012", "online_survey", "r-1"),
    response("E09000012", "online_survey", "r-1", occurred_at="2026-07-02T10:00:00+01:00"),
    response("E09000012", "ward_panel", "r-2"),
    response("E09000002", "public_meeting", "r-3"),
    retracted_response,
    make_event("event.retracted", {"target_event_id": retracted_response["event_id"], "reason": "entered twice"},
               occurred_at="2026-07-03T10:00:00Z"),
    audit("E09000008", "croydon-a", "2026-08-01T10:00:00Z", [("burglary", 1)]),
    audit("E09000008", "croydon-b", "2026-08-15T10:00:00Z", [("drugs", 2), ("violence", 1)]),
    audit("E09000012", "hackney-1", "2026-08-10T10:00:00Z", [("knife_crime", 1), ("youth_crime", 2), ("drugs", 3)]),
]
LATE = [response("E09000003", "online_survey", "r-5", occurred_at="2026-08-20T10:00:00Z")]  # known only from 9 Sep, noon
AFTER_ON = [response("E09000002", "ward_panel", "r-4", occurred_at="2026-09-11T10:00:00Z")]  # after `on`
AFTER_ON_INGEST = datetime(2026, 9, 12, 8, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("foundation")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PLANNING_HOME", str(root))
        home = PlanningHome(root)
        with EventStore(home.store, writer=True) as store:
            ingest_files(store, [str(write_jsonl(root / "a.jsonl", [*SCENARIO, b"{oops"]))], recorded_at=FIRST_INGEST, progress=None)
            ingest_files(store, [str(write_jsonl(root / "b.jsonl", LATE))], recorded_at=LATE_INGEST, progress=None)
            ingest_files(store, [str(write_jsonl(root / "c.jsonl", AFTER_ON))], recorded_at=AFTER_ON_INGEST, progress=None)
        build(home, on="2026-09-10", as_of="2026-09-09T00:00:00Z")
        yield home


def rows(home: PlanningHome, sql: str, *params) -> list[tuple]:
    db = open_reader(home.projections, operations=True)
    return db.execute(sql, list(params)).fetchall()


def test_stage_status_windows_statuses_and_sign_offs(built: PlanningHome) -> None:
    got = rows(built, "SELECT stage, opens_on::VARCHAR, due_on::VARCHAR, status, signed_off_by FROM stage_status ORDER BY opens_on")
    assert got == [
        ("brief", "2026-03-01", "2026-03-31", "signed_off", "planning_panel"),
        ("programme_approval", "2026-04-01", "2026-05-31", "signed_off", "consultation_committee"),
        ("fieldwork", "2026-06-15", "2026-08-31", "overdue", None),  # window overridden by cycle.opened
        ("analysis", "2026-09-01", "2026-09-30", "open", None),
        ("feedback_1", "2026-10-01", "2026-10-31", "upcoming", None),
        ("priorities", "2026-11-01", "2026-11-30", "upcoming", None),
        ("feedback_2", "2027-02-01", "2027-03-31", "upcoming", None),
        ("publication", "2027-05-01", "2027-06-30", "upcoming", None),
    ]
    (signed_at,) = rows(built, "SELECT signed_off_at FROM stage_status WHERE stage = 'brief'")[0]
    assert signed_at == datetime(2026, 3, 20, 9, 0, tzinfo=timezone.utc)


def test_stage_status_gates_and_blockers(built: PlanningHome) -> None:
    gates = dict(((s, (r, b)) for s, r, b in rows(built, "SELECT stage, ready, blockers FROM stage_status")))
    assert gates["brief"] == (True, [])
    assert gates["programme_approval"] == (True, [])
    # E09000012 has 3 of 3 and E09000003's response arrived after as_of: 31 boroughs below target
    expected_below = [f"below_target:{b}" for b in BOROUGHS if b != "E09000012"]
    assert gates["fieldwork"] == (False, expected_below)
    assert gates["analysis"] == (False, ["fieldwork_not_signed_off"] + [f"audit_missing:{b}" for b in BOROUGHS if b not in ("E09000008", "E09000012")])
    assert gates["feedback_1"] == (False, ["analysis_not_signed_off"] + [f"feedback_missing:{b}" for b in BOROUGHS])
    assert gates["priorities"] == (False, ["feedback_1_not_signed_off", "priorities_not_adopted"])
    assert gates["publication"] == (False, ["feedback_2_not_signed_off", "plan_not_published"])


def test_consultation_coverage(built: PlanningHome) -> None:
    got = rows(built, "SELECT borough, channel, responses, respondents, target, pct_of_target FROM consultation_coverage"
                      " WHERE borough IN ('E09000002', 'E09000003', 'E09000012') ORDER BY borough, channel")
    assert got == [
        ("E09000002", "all", 1, 1, 2, 50.0),  # the retracted response and the one after `on` are out
        ("E09000002", "public_meeting", 1, 1, None, None),
        ("E09000003", "all", 0, 0, 2, 0.0),  # recorded after as_of
        ("E09000012", "all", 3, 2, 3, 100.0),  # r-1 twice: two responses, one respondent
        ("E09000012", "online_survey", 2, 1, None, None),
        ("E09000012", "ward_panel", 1, 1, None, None),
    ]
    assert rows(built, "SELECT count(*), count(DISTINCT borough) FROM consultation_coverage WHERE channel = 'all'") == [(32, 32)]
    assert rows(built, "SELECT DISTINCT cycle FROM consultation_coverage") == [(CYCLE,)]


def test_cdrp_audits_latest_supersedes(built: PlanningHome) -> None:
    got = {r[0]: r[1:] for r in rows(built, "SELECT borough, received, audit_ref, superseded_count, top_priorities FROM cdrp_audits")}
    assert len(got) == 32
    assert got["E09000008"] == (True, "croydon-b", 1, ["violence", "drugs"])
    assert got["E09000012"] == (True, "hackney-1", 0, ["knife_crime", "youth_crime", "drugs"])
    assert got["E09000002"] == (False, None, 0, None)


def test_dead_letters_for_the_data_team_only(built: PlanningHome) -> None:
    ((received_at, reason, raw),) = rows(built, "SELECT received_at, reason, raw FROM dead_letters")
    assert raw == "{oops" and reason.startswith("line: not valid JSON") and received_at == FIRST_INGEST
    panel = open_reader(built.projections)
    with pytest.raises(Exception, match="dead_letters"):
        panel.execute("SELECT * FROM dead_letters")


def test_a_backfill_cannot_know_of_an_event_that_had_not_happened_yet(tmp_path: Path) -> None:
    with EventStore(tmp_path, writer=True) as store:
        outcome = ingest_files(store, [str(write_jsonl(tmp_path / "x.jsonl", AFTER_ON))], recorded_at=FIRST_INGEST, progress=None)
    ((_, (reason,)),) = outcome.examples
    assert reason.startswith("occurred_at: 2026-09-11T10:00:00+00:00 is in the future (receiving clock 2026-09-05T12:00:00+00:00)")


def test_as_of_later_sees_the_late_arrival_and_on_later_sees_later_events(built: PlanningHome) -> None:
    build(built, cycle=CYCLE, on="2026-09-30", as_of="2026-09-30")
    got = dict(rows(built, "SELECT borough, responses FROM consultation_coverage WHERE channel = 'all' AND borough IN ('E09000002', 'E09000003')"))
    assert got == {"E09000002": 2, "E09000003": 1}
    build(built, cycle=CYCLE, on="2026-09-10", as_of="2026-09-09T00:00:00Z")  # the same question gives the same answer again
    assert dict(rows(built, "SELECT borough, responses FROM consultation_coverage WHERE channel = 'all' AND borough IN ('E09000002', 'E09000003')")) == {"E09000002": 1, "E09000003": 0}


def test_a_cycle_with_no_events_is_all_blocked(built: PlanningHome) -> None:
    build(built, cycle="2030-31", on="2029-03-15")
    got = rows(built, "SELECT stage, status, ready, blockers FROM stage_status WHERE cycle = '2030-31' ORDER BY opens_on LIMIT 2")
    assert got == [("brief", "open", False, ["cycle_not_opened"]),
                   ("programme_approval", "upcoming", False, ["brief_not_signed_off", "programme_not_approved"])]


def test_a_reader_for_one_cycle_attaches_that_cycle_only(built: PlanningHome) -> None:
    build(built, cycle="2030-31", on="2029-03-15")

    def cycles_seen(**scope) -> list[tuple]:
        return open_reader(built.projections, **scope).execute("SELECT DISTINCT cycle FROM stage_status ORDER BY 1").fetchall()

    assert cycles_seen() == [(CYCLE,), ("2030-31",)]
    assert cycles_seen(cycles=[CYCLE]) == [(CYCLE,)]
    assert cycles_seen(cycles=["2030-31", CYCLE]) == [(CYCLE,), ("2030-31",)]
    one = open_reader(built.projections, cycles=["2030-31"])
    assert [r[0] for r in one.execute("SELECT DISTINCT cycle FROM consultation_coverage").fetchall()] == ["2030-31"]
    with pytest.raises(Exception, match="dead_letters"):
        one.execute("SELECT * FROM dead_letters")
    with pytest.raises(Exception, match="(?i)disabled|permission"):
        one.execute("SELECT * FROM read_csv('/etc/passwd')")
    # a cycle never built: the tables are there, with no rows for it
    absent = open_reader(built.projections, cycles=["1999-00"])
    assert absent.execute("SELECT count(*) FROM stage_status WHERE cycle = '1999-00'").fetchone() == (0,)
    ops = open_reader(built.projections, cycles=[CYCLE], operations=True)
    assert ops.execute("SELECT count(*) FROM dead_letters").fetchone() == (1,)
