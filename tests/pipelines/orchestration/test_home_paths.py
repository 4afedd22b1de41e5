"""A $PLANNING_HOME may hold an apostrophe, a space or a non-ASCII letter: paths in SQL are quoted, never pasted."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from events.storage.store import EventStore
from pipelines.ingest.files import ingest_files
from pipelines.orchestration.runs import build
from projections.reading.snapshots import open_reader
from tests.support.events import make_event, write_jsonl
from tests.support.home import use_home


def test_a_home_whose_path_holds_an_apostrophe_builds_and_reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = use_home(monkeypatch, tmp_path / "O'Brien's plänning home")
    events = [make_event("group.meeting_held", {"group_id": "cpcg-quote", "attendance": 7}), b"not json"]
    with EventStore(home.store, writer=True) as store:
        ingest_files(store, [str(write_jsonl(tmp_path / "e.jsonl", events))],
                     recorded_at=datetime(2026, 9, 5, 12, tzinfo=timezone.utc), progress=None)

    (built,) = build(home, on="2026-09-10", as_of="2026-09-10T12:00:00Z")
    assert built.cycle == "2027-28" and built.rows["group_activity"] == 1
    with open_reader(home.projections, operations=True) as db:
        assert db.execute("SELECT group_id, attendance FROM group_activity").fetchall() == [("cpcg-quote", 7)]
        assert db.execute("SELECT count(*) FROM dead_letters").fetchone() == (1,)
    build(home, on="2026-09-10", as_of="2026-09-10T12:00:00Z", full=True)  # the full rebuild reads the segments' paths
