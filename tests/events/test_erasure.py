"""Erasure: the respondent's personal data is unrecoverable from every file under $PLANNING_HOME,
while their responses still count anonymously, at any `on` and `as_of`."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone
from pathlib import Path

from events.home import PlanningHome
from events.storage.store import EventStore
from pipelines.orchestration.runs import build
from pipelines.ingest.files import ingest_files
from projections.connection import connect
from projections.reading.snapshots import open_reader
from tests.support.events import make_event, write_jsonl

COMMENT = "QUOKKA-7731 lives at 12 Acacia Avenue"
REF = "r-erase-7731"
BOROUGH = "E09000012"


def response(ref: str, cycle: str = "2027-28", occurred_at: str = "2026-07-01T10:00:00Z", **payload) -> dict:
    body = {"borough": BOROUGH, "respondent": {"respondent_ref": ref, "ethnic_group": "mixed", "age_band": "16-24"}, **payload}
    return make_event("consultation.response_received", body, cycle=cycle, occurred_at=occurred_at)


def everything_readable(root: Path) -> list[tuple[Path, str]]:
    """Every file's raw bytes, and every row of every DuckDB and SQLite table, as text."""
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        found.append((path, path.read_bytes().decode("latin-1")))
        head = path.read_bytes()[:16]
        if head.startswith(b"SQLite format 3"):
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
                found.append((path, repr(db.execute(f'SELECT * FROM "{table}"').fetchall())))
            db.close()
        elif path.suffix == ".duckdb":
            db = connect(path, read_only=True)
            for (table,) in db.execute("SELECT table_name FROM duckdb_tables()").fetchall():
                found.append((path, repr(db.execute(f'SELECT * FROM "{table}"').fetchall())))
            db.close()
    return found


def test_erasure_leaves_no_trace_and_keeps_the_counts(home: PlanningHome, tmp_path: Path) -> None:
    mine = response(REF, comment=COMMENT)
    mine_last_cycle = response(REF, cycle="2026-27", occurred_at="2025-07-01T10:00:00Z", comment=COMMENT + " again")
    others = [response(f"r-other-{i}") for i in range(9)]  # with mine: 10 'mixed' respondents, a visible cell
    conflict = {**mine, "payload": {**mine["payload"], "channel": "ward_panel"}}  # a dead letter carrying it all
    before = datetime(2026, 9, 1, tzinfo=timezone.utc)
    with EventStore(home.store, writer=True) as store:
        ingest_files(store, [str(write_jsonl(tmp_path / "a.jsonl", [mine, mine_last_cycle, *others, conflict]))], recorded_at=before, progress=None)
    build(home, on="2026-09-10")

    def mixed_cell(as_of: str | None = None) -> tuple:
        build(home, cycle="2027-28", on="2026-09-10", as_of=as_of)
        db = open_reader(home.projections)
        return db.execute(
            "SELECT respondents, suppressed FROM inclusion WHERE cycle = '2027-28' AND scope = ? AND dimension = 'ethnic_group' AND \"group\" = 'mixed'",
            [BOROUGH],
        ).fetchone()

    def coverage() -> tuple:
        db = open_reader(home.projections)
        return db.execute("SELECT responses, respondents FROM consultation_coverage WHERE cycle = '2027-28' AND borough = ? AND channel = 'all'", [BOROUGH]).fetchone()

    assert mixed_cell() == (10, False)
    assert coverage() == (10, 10)
    assert any(COMMENT in text for _, text in everything_readable(home.root)), "the conflict's dead letter holds it before erasure"

    erasure = make_event("respondent.erasure_requested", {"respondent_ref": REF}, occurred_at="2026-09-05T10:00:00Z")
    with EventStore(home.store, writer=True) as store:
        ingest_files(store, [str(write_jsonl(tmp_path / "b.jsonl", [erasure]))], recorded_at=datetime(2026, 9, 5, 12, tzinfo=timezone.utc), progress=None)
    build(home, on="2026-09-10")

    assert coverage() == (10, 10), "the responses still count, as the same anonymous respondent"
    assert mixed_cell() == (None, True), "their demographics are gone: 9 left, suppressed"
    assert mixed_cell(as_of="2026-09-02") == (None, True), "an as_of before the erasure does not bring them back"

    leaks = [(path, needle) for path, text in everything_readable(home.root) for needle in ("QUOKKA-7731", "Acacia", REF) if needle in text]
    assert leaks == []
    assert (home.dagster / "dagster.yaml").exists() and any(home.dagster.rglob("*.db")), "Dagster's storage was searched too"


def test_a_resent_copy_after_erasure_is_a_harmless_duplicate(home: PlanningHome, tmp_path: Path) -> None:
    mine = response(REF, comment=COMMENT)
    erasure = make_event("respondent.erasure_requested", {"respondent_ref": REF})
    with EventStore(home.store, writer=True) as store:
        ingest_files(store, [str(write_jsonl(tmp_path / "a.jsonl", [mine, erasure]))], progress=None)
        outcome = ingest_files(store, [str(write_jsonl(tmp_path / "b.jsonl", [mine]))], progress=None)
    assert (outcome.accepted, outcome.duplicates, outcome.rejected) == (0, 1, 0)
    assert not [p for p, text in everything_readable(home.root) if "QUOKKA-7731" in text]
