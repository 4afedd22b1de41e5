"""Every published Panel table equals an independent brute-force reading of the spec.

``tests/support/reference.py`` computes each table of docs/tables.md in plain
Python from plain event dicts. Here random small cycles (a few boroughs, a few
hundred events of every type, corrections and erasures included, arriving in
batches whose knowledge times are out of arrival order) go through the real
pipeline: JSON Lines -> contract -> event store -> Dagster build -> published
DuckDB snapshot, and every row and column read back from the snapshot must
equal the reference at two different (on, as_of) instants.

Only the tables the pipeline already publishes (``projections.tables.PANEL_TABLES``)
are compared; ``test_every_spec_table_is_published`` says which are missing.

A scenario is generated from a seed (hypothesis draws the seed and the sizes),
so a failure message names the seed that reproduces it: ``scenario(seed)``.
Builds are cached per scenario, so the per-table tests share them.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import tempfile
import uuid
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from events.contract.validation import verdict
from tests.support.stores import pipeline_on
from tests.support.reference import (
    BOROUGHS,
    COLUMNS,
    DIMENSIONS,
    INDICATORS,
    KEYS,
    STAGES,
    TABLES,
    THEMES,
    live_events,
    reference_tables,
    to_utc,
)

UTC = timezone.utc
CYCLE = "2027-28"
OTHER_CYCLE = "2026-27"
START = datetime(2026, 2, 1, tzinfo=UTC)
END = datetime(2027, 7, 15, tzinfo=UTC)
LAST_BATCH = datetime(2027, 8, 1, tzinfo=UTC)
CHANNELS = ("online_survey", "ward_panel", "public_meeting", "focus_group")
BODIES = ("planning_panel", "consultation_committee", "csmb", "authority")
OTHER_SURVEY_SHARE = 0.03  # interviews naming another survey (still PAS interviews by the contract)


def published_tables() -> tuple[str, ...]:
    from projections.tables import PANEL_TABLES

    return tuple(t for t in TABLES if t in PANEL_TABLES)


# --- scenarios ---------------------------------------------------------------------------------


class Gen:
    """Random but valid events of one cycle (plus a few of the previous one)."""

    def __init__(self, seed: int, size: int) -> None:
        self.rng = random.Random(seed)
        self.size = size
        self.events: list[dict[str, Any]] = []
        self.counter = 0

    def instant(self, lo: datetime = START, hi: datetime = END) -> datetime:
        rng = self.rng
        days = (hi - lo).days
        day = lo + timedelta(days=rng.randint(0, max(days - 1, 0)))
        # coarse times so that occurred_at ties happen; some near midnight UTC
        clock = rng.choice([time(9), time(9), time(12), time(23, 30), time(0, 30)])
        return datetime.combine(day.date(), clock, tzinfo=UTC)

    def stamp(self, moment: datetime) -> str:
        offset = self.rng.choice([0, 0, 0, 60, -300])
        local = moment.astimezone(timezone(timedelta(minutes=offset)))
        return local.isoformat().replace("+00:00", "Z")

    def add(self, event_type: str, payload: dict[str, Any], when: datetime | None = None, cycle: str = CYCLE) -> dict:
        self.counter += 1
        event_id = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        event = {
            # a sender may write a UUID in upper case; the store keeps it canonical
            "event_id": event_id.upper() if self.rng.random() < 0.05 else event_id,
            "event_type": event_type,
            "schema_version": 1,
            "occurred_at": self.stamp(when or self.instant()),
            "source": "reference-tests",
            "cycle": cycle,
            "payload": payload,
        }
        self.events.append(event)
        return event

    def ranking(self, k: int) -> list[dict[str, Any]]:
        themes = self.rng.sample(THEMES, k)
        ranks = list(range(1, k + 1))
        self.rng.shuffle(ranks)
        return [{"theme": t, "rank": r} for t, r in zip(themes, ranks)]

    def window(self) -> tuple[str, str]:
        a = START.date() + timedelta(days=self.rng.randint(0, 500))
        return a.isoformat(), (a + timedelta(days=self.rng.randint(0, 60))).isoformat()

    def build(self) -> list[dict[str, Any]]:
        rng, size = self.rng, self.size
        boroughs = rng.sample(BOROUGHS, rng.randint(1, 4))

        for _ in range(rng.choice([0, 1, 1, 2])):
            stages = rng.sample(STAGES, rng.randint(0, 3))
            self.add("cycle.opened", {"timetable": [dict(zip(("stage", "opens_on", "due_on"), (s, *self.window())))
                                                    for s in stages]})
        for _ in range(rng.choice([0, 1, 1, 2])):
            targets = [{"borough": b, "min_responses": rng.randint(0, 20)} for b in rng.sample(boroughs, rng.randint(0, len(boroughs)))]
            self.add("programme.approved", {"default_min_responses": rng.randint(0, 15), "targets": targets,
                                            "priority_groups": rng.sample(["16-24", "black", "female"], rng.randint(0, 2))})

        # consultation responses: a pool of respondents with skewed demographics, some answering often
        pool = []
        for i in range(rng.randint(1, max(2, size // 2))):
            person = {"respondent_ref": f"r-{i}"}
            for dimension, groups in DIMENSIONS.items():
                if rng.random() < 0.75:
                    person[dimension] = groups[0] if rng.random() < 0.5 else rng.choice(groups)
            pool.append(person)
        for _ in range(rng.randint(0, size)):
            person = rng.choice(pool)
            respondent = {"respondent_ref": person["respondent_ref"]}
            for dimension, groups in DIMENSIONS.items():
                if dimension in person and rng.random() < 0.85:
                    respondent[dimension] = person[dimension] if rng.random() < 0.95 else rng.choice(groups)
            self.add("consultation.response_received", {
                "borough": rng.choice(boroughs), "channel": rng.choice(CHANNELS), "respondent": respondent,
                "themes": self.ranking(rng.randint(1, 5)), "comment": rng.choice([None, "free text"]),
            })

        # PAS interviews
        waves = ["2026Q2", "2026Q3"][: rng.randint(1, 2)]
        for i in range(rng.randint(0, size // 2 + 10)):
            answers = {}
            for indicator in INDICATORS:
                if rng.random() < 0.6:
                    answers[indicator] = rng.random() < 0.6
            self.add("survey.response_recorded", {
                "survey": "PAS" if rng.random() >= OTHER_SURVEY_SHARE else "MPS-YS",
                "wave": rng.choice(waves), "borough": rng.choice(boroughs), "interview_ref": f"pas-{i}",
                "weight": round(rng.uniform(0.2, 3.0), 3), "indicators": answers,
                "priorities": rng.sample(THEMES, rng.randint(0, 3)),
            })

        # CDRP audits, some superseded (or "superseded" by an older one arriving late)
        for b in boroughs:
            for j in range(rng.choice([0, 1, 1, 2])):
                self.add("cdrp.audit_submitted", {
                    "borough": b, "audit_ref": f"{b}-{j}", "period_start": "2023-04-01", "period_end": "2026-03-31",
                    "priorities": self.ranking(rng.randint(1, 5)),
                })
        # population profiles, some superseded
        for b in boroughs:
            for _ in range(rng.choice([0, 1, 1, 2])):
                groups = {}
                for dimension, names in DIMENSIONS.items():
                    if rng.random() < 0.7:
                        groups[dimension] = {g: rng.choice([0, rng.randint(1, 60000)]) for g in names if rng.random() < 0.85}
                self.add("borough.profile_recorded", {"borough": b, "source": "Census 2021",
                                                      "population": rng.randint(1, 400000), "groups": groups})
        # meetings
        group_ids = [f"group-{k}" for k in range(rng.randint(1, 4))]
        for _ in range(rng.randint(0, 15)):
            self.add("group.meeting_held", {
                "group_id": rng.choice(group_ids), "group_kind": rng.choice(["consultative_group", "ward_panel"]),
                "borough": rng.choice(boroughs), "attendance": rng.choice([0, rng.randint(1, 60)]),
                "cost_gbp": round(rng.uniform(0, 500), 2), "themes": rng.sample(THEMES, rng.randint(0, 2)),
            })
        # feedback rounds
        for _ in range(rng.randint(0, 4)):
            listed = rng.sample(boroughs + [rng.choice(BOROUGHS)], rng.randint(1, 2))
            self.add("feedback.published", {
                "round": rng.choice([1, 2]), "boroughs": "all" if rng.random() < 0.3 else sorted(set(listed)),
                "themes": rng.sample(THEMES, rng.randint(0, 3)), "summary": "what we heard",
            })
        # adopted priorities, sometimes adopted twice
        for _ in range(rng.choice([0, 1, 2])):
            priorities, rank_in = [], {}
            for theme in rng.sample(THEMES, rng.randint(1, 5)):
                scope = rng.choice(["LONDON", "LONDON", *boroughs])
                rank_in[scope] = rank_in.get(scope, 0) + 1
                priorities.append({"rank": rank_in[scope], "theme": theme, "scope": scope})
            self.add("priorities.adopted", {"priorities": priorities})
        # sign-offs, some stages twice
        for stage in STAGES:
            for k in range(rng.choice([0, 0, 1, 1, 2])):
                self.add("stage.signed_off", {"stage": stage, "body": rng.choice(BODIES), "decision_ref": f"{stage}-{k}"})
        if rng.random() < 0.4:
            self.add("plan.published", {"title": "Policing Plan 2027/28"})

        # the previous cycle: evidence that must not leak into this one
        for _ in range(rng.randint(0, 5)):
            self.add("consultation.response_received", {
                "borough": rng.choice(boroughs), "channel": "online_survey",
                "respondent": {"respondent_ref": rng.choice(pool)["respondent_ref"], "age_band": "65+"},
                "themes": self.ranking(1)}, cycle=OTHER_CYCLE)
        if rng.random() < 0.5:
            self.add("cdrp.audit_submitted", {"borough": boroughs[0], "audit_ref": "old", "period_start": "2022-04-01",
                                              "period_end": "2025-03-31", "priorities": self.ranking(2)}, cycle=OTHER_CYCLE)

        # retractions (some retracted in turn, some sent in the other cycle), then erasures.
        # Chains stop at a retraction of a retraction, and target ids are written in the
        # forms the pipeline reads; deeper chains and braced/urn ids are pinned by the
        # two tests at the end of this file.
        targets = [(e, 0) for e in self.events]
        for _ in range(rng.randint(0, 8) if targets else 0):
            target, depth = rng.choice(targets)
            target_id = str(uuid.UUID(target["event_id"]))
            target_id = rng.choice([target_id, target_id, target_id.upper()])  # the two spellings the contract accepts
            retraction = self.add("event.retracted", {"target_event_id": target_id, "reason": "wrong"},
                                  cycle=CYCLE if rng.random() < 0.7 else OTHER_CYCLE)
            if depth == 0 and rng.random() < 0.4:
                targets.append((retraction, 1))
        for _ in range(rng.choice([0, 0, 1, 3])):
            ref = rng.choice(pool)["respondent_ref"] if rng.random() < 0.9 else "r-nobody"
            self.add("respondent.erasure_requested", {"respondent_ref": ref}, cycle=rng.choice([CYCLE, OTHER_CYCLE]))
        return self.events


def scenario(seed: int, size: int = 150) -> list[dict[str, Any]]:
    """The events as sent, with the recorded_at and position they will be stored at.

    Events are grouped in batches; a batch's knowledge time is never before any
    of its events happened, and batches arrive in a random order (a backfill of
    older knowledge may arrive after newer), so arrival order and recorded_at
    disagree.
    """
    gen = Gen(seed, size)
    events = gen.build()
    rng = gen.rng
    instants = sorted({gen.instant() + timedelta(hours=rng.randint(0, 12)) for _ in range(rng.randint(2, 5))}) + [LAST_BATCH]
    batches: dict[datetime, list[dict]] = {t: [] for t in instants}
    for event in events:
        occurred = to_utc(event["occurred_at"])
        batches[rng.choice([t for t in instants if t >= occurred])].append(event)
    order = [t for t in instants if batches[t]]
    rng.shuffle(order)
    stored, position = [], 0
    for recorded_at in order:
        for event in batches[recorded_at]:
            position += 1
            stored.append({**event, "recorded_at": recorded_at, "position": position})
    return stored


# --- the real pipeline --------------------------------------------------------------------------


def normalise(value: Any) -> Any:
    if isinstance(value, datetime):
        return to_utc(value)
    if isinstance(value, tuple):
        return list(value)
    if hasattr(value, "item") and not isinstance(value, (list, dict, str)):  # numpy scalars
        return value.item()
    return value


def run_pipeline(
    stored: list[dict[str, Any]], cuts: list[tuple[str, str]], store_environ: dict[str, str] | None = None,
) -> dict[tuple[str, str], dict[str, tuple[list[str], list[dict]]]]:
    """Ingest in arrival order, batch by batch; build and read back at each (on, as_of). ``store_environ``
    chooses the store backend (tests/support/stores.py); the embedded store by default."""
    from events.home import PlanningHome
    from events.storage.backends import open_store
    from pipelines.orchestration.runs import build
    from pipelines.ingest.files import ingest_files
    from projections.reading.snapshots import open_reader

    root = Path(tempfile.mkdtemp(prefix="reference-"))
    saved = {k: os.environ.get(k) for k in ("PLANNING_HOME", "DAGSTER_HOME")}
    os.environ["PLANNING_HOME"] = str(root / "home")
    os.environ["DAGSTER_HOME"] = str(root / "home" / "dagster")
    environ = store_environ or {}
    try:
        home = PlanningHome(root / "home")
        batches: list[tuple[datetime, list[dict]]] = []
        for event in stored:
            if not batches or batches[-1][0] != event["recorded_at"]:
                batches.append((event["recorded_at"], []))
            batches[-1][1].append({k: v for k, v in event.items() if k not in ("recorded_at", "position")})
        with open_store(home.store, writer=True, environ=environ) as store:
            for n, (recorded_at, events) in enumerate(batches):
                path = root / f"batch-{n}.jsonl"
                path.write_text("".join(json.dumps(e) + "\n" for e in events))
                summary = ingest_files(store, [str(path)], recorded_at=recorded_at, progress=None)
                assert summary.rejected == 0 and summary.accepted == len(events), summary.examples
        out = {}
        for on, as_of in cuts:
            with pipeline_on(environ):
                build(home, cycle=CYCLE, on=on, as_of=as_of)
            db = open_reader(home.projections)
            tables = {}
            for table in published_tables():
                cursor = db.execute(f"SELECT * FROM {table} WHERE cycle = ?", [CYCLE])
                columns = [d[0] for d in cursor.description]
                tables[table] = (columns, [{c: normalise(v) for c, v in zip(columns, row)} for row in cursor.fetchall()])
            db.close()
            out[(on, as_of)] = tables
        return out
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        shutil.rmtree(root, ignore_errors=True)


def as_of_instant(as_of: str) -> datetime:
    if len(as_of) == 10:  # a bare date: the end of that day, UTC
        return datetime.combine(date.fromisoformat(as_of), time.max, tzinfo=UTC)
    return to_utc(as_of)


def cuts_for(seed: int, stored: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """A random (on, as_of) inside the cycle, sometimes right on an edge; then everything."""
    rng = random.Random(seed ^ 0x5EED)
    on = START.date() + timedelta(days=rng.randint(60, 520))
    as_of = datetime.combine(on + timedelta(days=rng.randint(-40, 40)), time(rng.choice([0, 12, 23]), 59), tzinfo=UTC)
    if stored and rng.random() < 0.4:  # on = the UTC day of an event; as_of = exactly a batch's recorded_at
        on = to_utc(rng.choice(stored)["occurred_at"]).date()
        as_of = rng.choice(stored)["recorded_at"]
    text = as_of.isoformat().replace("+00:00", "Z") if rng.random() < 0.7 else as_of.date().isoformat()
    return [(on.isoformat(), text), ("2027-07-31", "2027-08-02T00:00:00Z")]


_BUILDS: dict[tuple[int, int], tuple[list[dict], dict]] = {}


def built(seed: int, size: int) -> tuple[list[dict], dict]:
    """Scenario and published tables, built once per (seed, size) and shared by the per-table tests."""
    key = (seed, size)
    if key not in _BUILDS:
        stored = scenario(seed, size)
        _BUILDS[key] = (stored, run_pipeline(stored, cuts_for(seed, stored)))
    return _BUILDS[key]


# --- comparison -----------------------------------------------------------------------------------


def same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b or (isinstance(a, bool) and isinstance(b, bool) and a == b)
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def rank_ties_explain(table: str, want: dict, got: dict, expected: list[dict]) -> bool:
    """A rank that differs only between themes whose combined scores are equal up to float noise."""
    if table != "theme_ranking":
        return False
    near = [r for r in expected if r["scope"] == want["scope"] and r["combined_score"] is not None
            and want["combined_score"] is not None and math.isclose(r["combined_score"], want["combined_score"], rel_tol=1e-9, abs_tol=1e-12)]
    ranks = sorted(r["rank"] for r in near)
    return len(near) > 1 and got["rank"] in ranks


def differences(table: str, expected: list[dict], columns: list[str], got: list[dict]) -> list[str]:
    problems = []
    if columns != list(COLUMNS[table]):
        problems.append(f"columns {columns} != spec {list(COLUMNS[table])}")
        return problems
    key = KEYS[table]
    want = {tuple(r[k] for k in key): r for r in expected}
    have: dict[tuple, dict] = {}
    for r in got:
        k = tuple(r[c] for c in key)
        if k in have:
            problems.append(f"duplicate row {k}")
        have[k] = r
    for k in sorted(set(want) - set(have), key=str):
        problems.append(f"missing row {k}: expected {want[k]}")
    for k in sorted(set(have) - set(want), key=str):
        problems.append(f"unexpected row {k}: {have[k]}")
    for k in sorted(set(want) & set(have), key=str):
        for c in COLUMNS[table]:
            if not same(want[k][c], have[k][c]):
                if c == "rank" and rank_ties_explain(table, want[k], have[k], expected):
                    continue
                problems.append(f"{k} {c}: expected {want[k][c]!r}, published {have[k][c]!r}")
    return problems


def check(table: str, seed: int, size: int) -> None:
    stored, published = built(seed, size)
    failures = []
    for (on, as_of), tables in published.items():
        expected = reference_tables(stored, CYCLE, date.fromisoformat(on), as_of_instant(as_of))[table]
        columns, rows = tables[table]
        problems = differences(table, expected, columns, rows)
        if problems:
            failures.append(f"on={on} as_of={as_of}: {len(problems)} difference(s)\n  " + "\n  ".join(problems[:12]))
    assert not failures, f"{table} differs from the reference for scenario(seed={seed}, size={size}):\n" + "\n".join(failures)


# --- the property tests ---------------------------------------------------------------------------

# Each example is two real Dagster builds (~4 s each here). Hypothesis draws scenario
# numbers from a pool of POOL, so the nine per-table tests share the pool's builds
# (hypothesis seeds each parametrization differently): the file costs about POOL
# example builds, near three minutes. REFERENCE_EXAMPLES=100 for a longer hunt.
POOL = int(os.environ.get("REFERENCE_EXAMPLES", "15"))
SIZES = (40, 150, 300)
PROPERTY = settings(
    max_examples=POOL,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],  # shrinking a seed only costs builds
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.mark.parametrize("table", published_tables())
@PROPERTY
@given(number=st.integers(0, POOL - 1))
def test_published_table_equals_the_reference(table: str, number: int) -> None:
    check(table, seed=1_000_003 * number + 17, size=SIZES[number % len(SIZES)])


@pytest.mark.parametrize("number", [1, 2])  # sizes 150 and 300: each is four more builds
def test_published_tables_are_the_same_on_either_store_backend(postgres_url: str, number: int) -> None:
    """The same scenario ingested into the PostgreSQL store publishes, at every cut, every table row for
    row and column for column as the embedded store's (and so as the reference): the builds read
    either backend through the same record files."""
    from events.storage.backends import STORE_ENV
    from events.storage.postgres.migrations import init_store

    seed, size = 1_000_003 * number + 17, SIZES[number]
    stored, embedded = built(seed, size)
    init_store(postgres_url)
    postgres = run_pipeline(stored, cuts_for(seed, stored), {STORE_ENV: postgres_url})
    assert list(postgres) == list(embedded)
    for cut, tables in embedded.items():
        assert list(postgres[cut]) == list(tables) == list(published_tables())
        for table, (columns, rows) in tables.items():  # row order aside, floats to the last bits of summation order
            assert differences(table, rows, *postgres[cut][table]) == [], f"{table} at (on, as_of) {cut} differs on PostgreSQL"
    assert any(rows for tables in postgres.values() for _, rows in tables.values()), "the builds published rows"
    on, as_of = list(postgres)[0]
    expected = reference_tables(stored, CYCLE, date.fromisoformat(on), as_of_instant(as_of))
    assert {t: differences(t, expected[t], *postgres[(on, as_of)][t]) for t in published_tables()} == \
        {t: [] for t in published_tables()}


def test_every_spec_table_is_published() -> None:
    from projections.tables import PANEL_TABLES

    missing = [t for t in TABLES if t not in PANEL_TABLES]
    assert not missing, f"spec tables the pipeline does not publish yet: {missing}"


# --- the reference itself, on hand-computed inputs ----------------------------------------------------

_seq = iter(range(1, 10**6))
T0 = datetime(2026, 7, 1, 10, tzinfo=UTC)
ON, AS_OF = date(2027, 7, 31), datetime(2027, 8, 1, tzinfo=UTC)


def ev(event_type: str, payload: dict, occurred_at: datetime = T0, cycle: str = CYCLE) -> dict:
    n = next(_seq)
    return {"event_id": str(uuid.UUID(int=n)), "event_type": event_type, "occurred_at": occurred_at.isoformat(),
            "cycle": cycle, "payload": payload, "recorded_at": occurred_at, "position": n}


def responder(ref: str, borough: str = "E09000002", themes: tuple[str, ...] = ("violence",), **demographics) -> dict:
    return ev("consultation.response_received", {
        "borough": borough, "channel": "online_survey", "respondent": {"respondent_ref": ref, **demographics},
        "themes": [{"theme": t, "rank": i} for i, t in enumerate(themes, 1)]})


def interview(weight: float, borough: str = "E09000002", wave: str = "2026Q2", priorities=(), **indicators) -> dict:
    return ev("survey.response_recorded", {"survey": "PAS", "wave": wave, "borough": borough, "interview_ref": "i",
                                           "weight": weight, "indicators": indicators, "priorities": list(priorities)})


def audit(borough: str, *themes: str, occurred_at: datetime = T0) -> dict:
    return ev("cdrp.audit_submitted", {"borough": borough, "audit_ref": borough, "period_start": "2023-04-01",
                                       "period_end": "2026-03-31",
                                       "priorities": [{"theme": t, "rank": i} for i, t in enumerate(themes, 1)]},
              occurred_at=occurred_at)


def cells(tables: dict, table: str, **where) -> list[dict]:
    return [r for r in tables[table] if all(r[k] == v for k, v in where.items())]


def test_reference_inclusion_primary_and_secondary_suppression() -> None:
    events = []
    n = 0

    def people(count: int, **demo) -> None:
        nonlocal n
        for _ in range(count):
            n += 1
            events.append(responder(f"r-{n}", **demo))

    people(3, disability="yes")
    people(12, disability="no")
    people(12, gender="female")
    people(12, gender="male")
    people(4, gender="other")
    people(15, ethnic_group="asian")
    people(15, ethnic_group="black")
    people(3, ethnic_group="mixed")
    people(11, ethnic_group="white")
    people(11, ethnic_group="other")
    events.append(ev("borough.profile_recorded", {"borough": "E09000002", "source": "Census", "population": 100,
                                                  "groups": {"ethnic_group": {"asian": 20, "black": 20, "white": 60}}}))
    t = reference_tables(events, CYCLE, ON, AS_OF)
    scope = {"scope": "E09000002"}

    # disability: "yes" (3) is primary, so the only other cell "no" (12) is suppressed too
    assert [(r["group"], r["respondents"], r["suppressed"]) for r in cells(t, "inclusion", dimension="disability", **scope)] == [
        ("yes", None, True), ("no", None, True)]
    # gender: "other" (4) is primary; female and male tie at 12: the first name, "female", is suppressed
    got = {r["group"]: (r["respondents"], r["share"], r["suppressed"]) for r in cells(t, "inclusion", dimension="gender", **scope)}
    assert got == {"female": (None, None, True), "male": (12, 12 / 28, False), "other": (None, None, True)}
    # ethnic_group: "mixed" (3) primary; white and other tie at 11: alphabetically "other" goes (vocabulary order would pick "white")
    got = {r["group"]: r for r in cells(t, "inclusion", dimension="ethnic_group", **scope)}
    assert {g: r["suppressed"] for g, r in got.items()} == {"asian": False, "black": False, "mixed": True, "white": False, "other": True}
    assert got["asian"]["share"] == 15 / 55 and got["asian"]["population_share"] == 0.2
    assert math.isclose(got["asian"]["representation_ratio"], (15 / 55) / 0.2)
    assert got["white"]["population_share"] == 0.6 and got["white"]["respondents"] == 11
    # a group missing from a profile that has the dimension has population 0: share 0, no ratio
    assert got["other"]["population_share"] == 0.0 and got["other"]["representation_ratio"] is None
    # the profile lacks age_band: null population share; nobody stated an age: every cell suppressed
    age = cells(t, "inclusion", dimension="age_band", **scope)
    assert all(r["population_share"] is None and r["suppressed"] and r["respondents"] is None for r in age)
    # a borough nobody answered in: all suppressed, LONDON equals the one borough here
    assert all(r["suppressed"] for r in cells(t, "inclusion", scope="E09000003"))
    london = {(r["dimension"], r["group"]): r["respondents"] for r in cells(t, "inclusion", scope="LONDON")}
    assert london[("gender", "male")] == 12 and london[("ethnic_group", "white")] == 11


def test_reference_inclusion_erasure_and_latest_stated_value() -> None:
    events = [responder(f"r-{i}", age_band="16-24") for i in range(12)]
    events += [ev("consultation.response_received", {"borough": "E09000002", "channel": "ward_panel",
                                                     "respondent": {"respondent_ref": "r-1", "age_band": "25-34"},
                                                     "themes": [{"theme": "drugs", "rank": 1}]}, occurred_at=T0 + timedelta(days=1)),
               ev("consultation.response_received", {"borough": "E09000002", "channel": "ward_panel",
                                                     "respondent": {"respondent_ref": "r-1"},  # not stated: keeps 25-34
                                                     "themes": [{"theme": "drugs", "rank": 1}]}, occurred_at=T0 + timedelta(days=2))]
    # an erasure recorded long after as_of still removes r-2's demographics (but r-2 still counts in coverage)
    erasure = ev("respondent.erasure_requested", {"respondent_ref": "r-2"}, occurred_at=datetime(2027, 9, 1, tzinfo=UTC))
    t = reference_tables([*events, erasure], CYCLE, ON, AS_OF)
    age = {r["group"]: r["respondents"] for r in cells(t, "inclusion", scope="E09000002", dimension="age_band")}
    assert age["16-24"] == 10  # r-0, r-3..r-11; r-1 now 25-34; r-2 erased
    all_row = cells(t, "consultation_coverage", borough="E09000002", channel="all")[0]
    assert (all_row["responses"], all_row["respondents"]) == (14, 12)


def test_reference_survey_effective_n_and_interval() -> None:
    three = [interview(1.0, good_job=True), interview(2.0, good_job=False), interview(3.0, good_job=True)]
    t = reference_tables(three, CYCLE, ON, AS_OF)
    (row,) = cells(t, "survey_indicators", scope="E09000002", indicator="good_job")
    assert row["unweighted_n"] == 3 and math.isclose(row["effective_n"], 36 / 14)
    assert row["suppressed"] and row["weighted_pct"] is None and row["ci_low"] is None and row["ci_high"] is None
    assert not cells(t, "survey_indicators", indicator="trust")  # nobody answered: no row

    thirty = [interview(w, good_job=y) for w, y in ((1.0, True), (2.0, False), (3.0, True)) for _ in range(10)]
    t = reference_tables(thirty, CYCLE, ON, AS_OF)
    (row,) = cells(t, "survey_indicators", scope="LONDON", indicator="good_job")
    n_eff = 60 ** 2 / 140  # (Σw)² / Σw² = 3600 / 140
    p = 40 / 60
    half = 1.96 * math.sqrt(p * (1 - p) / n_eff)
    assert row["unweighted_n"] == 30 and not row["suppressed"] and math.isclose(row["effective_n"], n_eff)
    assert math.isclose(row["weighted_pct"], 66.66666666666667)
    assert math.isclose(row["ci_low"], 100 * (p - half)) and math.isclose(row["ci_high"], 100 * (p + half))
    assert math.isclose(row["ci_low"], 48.4460, abs_tol=1e-3) and math.isclose(row["ci_high"], 84.8873, abs_tol=1e-3)
    # clipped to [0, 100]: everyone says yes
    t = reference_tables([interview(1.0 + i % 3, trust=True) for i in range(30)], CYCLE, ON, AS_OF)
    (row,) = cells(t, "survey_indicators", scope="LONDON", indicator="trust")
    assert (row["weighted_pct"], row["ci_low"], row["ci_high"]) == (100.0, 100.0, 100.0)


def test_reference_theme_ranking_mean_of_sources_with_data() -> None:
    events = [
        responder("a", themes=("violence",)),
        responder("b", themes=("violence", "drugs")),
        audit("E09000002", "drugs", "violence"),                      # drugs rank 1 -> 1.0, violence rank 2 -> 0.8
        audit("E09000003", "burglary", "robbery", "fraud", "drugs"),  # drugs rank 4 -> 0.4
    ]
    t = reference_tables(events, CYCLE, ON, AS_OF)
    rows = {r["theme"]: r for r in cells(t, "theme_ranking", scope="E09000002")}
    # no PAS interview in scope: survey_share is null and left out of the mean
    assert rows["violence"]["consultation_share"] == 1.0 and rows["violence"]["survey_share"] is None
    assert math.isclose(rows["violence"]["cdrp_score"], 0.8) and math.isclose(rows["violence"]["combined_score"], 0.9)
    assert math.isclose(rows["drugs"]["combined_score"], 0.75)
    assert rows["burglary"]["combined_score"] == 0.0
    assert [rows[t]["rank"] for t in ("violence", "drugs", "anti_social_behaviour", "burglary")] == [1, 2, 3, 4]
    assert sorted(r["rank"] for r in rows.values()) == list(range(1, 22))
    # E09000003: only the cdrp source has data
    other = {r["theme"]: r for r in cells(t, "theme_ranking", scope="E09000003")}
    assert other["drugs"]["consultation_share"] is None and math.isclose(other["drugs"]["combined_score"], 0.4)
    assert math.isclose(other["fraud"]["cdrp_score"], 0.6) and other["burglary"]["rank"] == 1
    # LONDON: cdrp mean over the two audited boroughs
    london = {r["theme"]: r for r in cells(t, "theme_ranking", scope="LONDON")}
    assert math.isclose(london["drugs"]["cdrp_score"], (1.0 + 0.4) / 2)
    assert math.isclose(london["burglary"]["cdrp_score"], (0.0 + 1.0) / 2)
    # no data at all: null everywhere, ranked by name
    empty = cells(t, "theme_ranking", scope="E09000004")
    assert all(r["combined_score"] is None for r in empty)
    assert [r["theme"] for r in sorted(empty, key=lambda r: r["rank"])] == sorted(THEMES)


def test_reference_cdrp_score_is_six_minus_rank_over_five() -> None:
    themes = ("violence", "drugs", "robbery", "burglary", "fraud")
    t = reference_tables([audit("E09000002", *themes)], CYCLE, ON, AS_OF)
    rows = {r["theme"]: r["cdrp_score"] for r in cells(t, "theme_ranking", scope="E09000002")}
    assert [rows[x] for x in themes] == [1.0, 0.8, 0.6, 0.4, 0.2] and rows["knife_crime"] == 0.0


def test_reference_latest_audit_and_retraction_of_a_retraction() -> None:
    late_old = audit("E09000002", "burglary", occurred_at=T0 - timedelta(days=30))  # arrives last, but older
    newer = audit("E09000002", "violence", occurred_at=T0)
    late_old["position"] = newer["position"] + 1
    wrong = responder("x")
    r1 = ev("event.retracted", {"target_event_id": wrong["event_id"], "reason": "dup"}, cycle=OTHER_CYCLE)
    r2 = ev("event.retracted", {"target_event_id": r1["event_id"], "reason": "undo"})
    t = reference_tables([newer, late_old, wrong, r1], CYCLE, ON, AS_OF)
    (row,) = cells(t, "cdrp_audits", borough="E09000002")
    assert (row["audit_ref"], row["superseded_count"], row["top_priorities"]) == ("E09000002", 1, ["violence"])
    assert cells(t, "consultation_coverage", borough="E09000002", channel="all")[0]["responses"] == 0
    t = reference_tables([newer, late_old, wrong, r1, r2], CYCLE, ON, AS_OF)
    assert cells(t, "consultation_coverage", borough="E09000002", channel="all")[0]["responses"] == 1
    assert len(live_events([wrong, r1, r2], ON, AS_OF)) == 2  # wrong and r2 (r1 is retracted)


def test_reference_feedback_traceability_and_groups() -> None:
    f1 = ev("feedback.published", {"round": 1, "boroughs": ["E09000002"], "themes": ["violence"]}, occurred_at=T0)
    f2 = ev("feedback.published", {"round": 1, "boroughs": "all", "themes": ["drugs"]}, occurred_at=T0 + timedelta(days=3))
    r = responder("a", borough="E09000002", themes=("drugs",))
    i = interview(1.5, borough="E09000003", priorities=("drugs",))
    a = audit("E09000003", "violence", "drugs")
    old = ev("priorities.adopted", {"priorities": [{"rank": 1, "theme": "fraud", "scope": "LONDON"}]}, occurred_at=T0)
    new = ev("priorities.adopted", {"priorities": [{"rank": 1, "theme": "drugs", "scope": "LONDON"},
                                                   {"rank": 1, "theme": "drugs", "scope": "E09000002"}]},
             occurred_at=T0 + timedelta(days=1))
    m1 = ev("group.meeting_held", {"group_id": "g", "group_kind": "ward_panel", "borough": "E09000002",
                                   "attendance": 0, "cost_gbp": 10.0}, occurred_at=T0 + timedelta(days=1))
    m2 = ev("group.meeting_held", {"group_id": "g", "group_kind": "consultative_group", "borough": "E09000004",
                                   "attendance": 0, "cost_gbp": 5.5}, occurred_at=T0)
    t = reference_tables([f1, f2, r, i, a, old, new, m1, m2], CYCLE, ON, AS_OF)
    (b2,) = cells(t, "feedback_log", round=1, borough="E09000002")
    assert (b2["published"], b2["first_published_at"], b2["themes"]) == (True, T0, ["drugs", "violence"])
    assert cells(t, "feedback_log", round=2, borough="E09000002")[0]["themes"] is None
    rows = {p["scope"]: p for p in t["priority_traceability"]}
    assert set(rows) == {"LONDON", "E09000002"}
    assert (rows["LONDON"]["supporting_responses"], rows["LONDON"]["supporting_survey_weight"], rows["LONDON"]["cdrp_boroughs"]) == (
        1, 1.5, ["E09000003"])
    assert (rows["LONDON"]["supporting_interviews"], rows["LONDON"]["evidence_events"]) == (1, 3)
    assert rows["LONDON"]["evidence_query"] == f"planning query priority_evidence --cycle {CYCLE} --scope LONDON --rank 1"
    assert (rows["E09000002"]["supporting_survey_weight"], rows["E09000002"]["cdrp_boroughs"]) == (0.0, [])
    assert (rows["E09000002"]["supporting_responses"], rows["E09000002"]["evidence_events"]) == (1, 1)
    assert sorted((x["scope"], x["kind"], x["event_id"]) for x in t["priority_evidence"]) == sorted([
        ("LONDON", "consultation_response", r["event_id"]), ("LONDON", "survey_interview", i["event_id"]),
        ("LONDON", "cdrp_audit", a["event_id"]), ("E09000002", "consultation_response", r["event_id"])])
    (g,) = t["group_activity"]
    assert (g["group_kind"], g["borough"], g["meetings"], g["attendance"], g["cost_gbp"], g["cost_per_attendee"]) == (
        "ward_panel", "E09000002", 2, 0, 15.5, None)


# --- disagreements found between the pipeline and the spec, pinned on minimal inputs ---------------


def _pipeline_vs_reference(events: list[dict], table: str = "consultation_coverage") -> list[str]:
    recorded_at = datetime(2026, 7, 2, tzinfo=UTC)
    stored = [{**e, "recorded_at": recorded_at, "position": n} for n, e in enumerate(events, 1)]
    on, as_of = "2026-07-10", "2026-07-10"
    columns, rows = run_pipeline(stored, [(on, as_of)])[(on, as_of)][table]
    expected = reference_tables(stored, CYCLE, date.fromisoformat(on), as_of_instant(as_of))[table]
    return differences(table, expected, columns, rows)


def _sent(n: int, event_type: str, payload: dict) -> dict:
    return {"event_id": str(uuid.UUID(int=n, version=4)), "event_type": event_type, "schema_version": 1,
            "occurred_at": "2026-07-01T10:00:00Z", "source": "tests", "cycle": CYCLE, "payload": payload}


def _response(n: int, borough: str) -> dict:
    return _sent(n, "consultation.response_received", {
        "borough": borough, "channel": "online_survey", "respondent": {"respondent_ref": f"r-{n}"},
        "themes": [{"theme": "drugs", "rank": 1}]})


def _retraction(n: int, target_event_id: str) -> dict:
    return _sent(n, "event.retracted", {"target_event_id": target_event_id, "reason": "wrong"})


def test_a_retraction_restored_by_cancelling_its_cancellation_removes_its_target() -> None:
    # R3 retracts R2, so R2 "no longer removes its target" R1; R1 stands and removes the response.
    response = _response(1, "E09000002")
    r1 = _retraction(2, response["event_id"])
    r2 = _retraction(3, r1["event_id"])
    r3 = _retraction(4, r2["event_id"])
    assert not _pipeline_vs_reference([response, r1, r2, r3])


def test_a_retraction_naming_its_target_in_braces_or_as_a_urn_is_refused() -> None:
    # The contract accepts a UUID only as 8-4-4-4-12 (either case), as its JSON Schema's "uuid" format does:
    # a retraction naming its target another way is a dead letter, and the target stays.
    braced, urn = _response(1, "E09000002"), _response(2, "E09000003")
    lines = [json.dumps(e).encode() for e in (
        braced, urn, _retraction(3, "{" + braced["event_id"] + "}"), _retraction(4, "urn:uuid:" + urn["event_id"]))]
    verdicts = [verdict(line, datetime(2026, 7, 2, tzinfo=UTC)) for line in lines]
    assert [type(v).__name__ for v in verdicts] == ["Accepted", "Accepted", "Rejected", "Rejected"]
    assert all(v.reasons[0].startswith("payload.target_event_id: ") for v in verdicts[2:])
