"""Named snapshots in the published pointer: which builds take a name, and dropping one is reader-safe."""

from __future__ import annotations

import fcntl
from datetime import datetime, timezone
from pathlib import Path

import pytest

from projections.building.build import build_dir
from projections.connection import connect
from projections.reading.named import BadSnapshotName, check_name, snapshot_of_build
from projections.reading.snapshots import (
    READERS_LOCK, UnknownSnapshot, drop_snapshot, listed_snapshots, open_reader, publish_cycles, published, sweep,
)

NOW = datetime(2026, 11, 30, 10, 15, 30, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("on", "as_of", "name", "expected"),
    [
        (None, None, None, None),  # (today, now): the current snapshot
        ("2026-11-30", None, None, None),  # today named explicitly
        ("2026-09-15", None, None, "on-2026-09-15-asof-2026-11-30T101530Z"),  # as_of defaults to now
        (None, "2026-10-01", None, "on-2026-11-30-asof-2026-10-01T235959Z"),  # a date as_of is the end of that day
        ("2026-09-15", "2026-09-15T08:00:00+01:00", None, "on-2026-09-15-asof-2026-09-15T070000Z"),
        (None, None, "board-pack", "board-pack"),  # a name always names a snapshot
    ],
)
def test_which_builds_publish_a_named_snapshot(on: str | None, as_of: str | None, name: str | None, expected: str | None) -> None:
    assert snapshot_of_build(on, as_of, name, NOW) == expected


@pytest.mark.parametrize("name", ["current", "Current", "", "-x", "a/b", "..", "a b", "x" * 65, "é"])
def test_a_name_that_cannot_name_a_snapshot_is_refused(name: str) -> None:
    with pytest.raises(BadSnapshotName):
        check_name(name)


def fake_build(projections: Path, cycle: str, run: str, on: str) -> Path:
    """A build folder with a panel file holding its build_info, as a run leaves it before publishing."""
    build = build_dir(projections, cycle, run)
    with connect(build / "panel.duckdb") as db:
        db.execute("CREATE TABLE build_info AS SELECT ?::VARCHAR AS cycle, ?::DATE AS on_date", [cycle, on])
    (build / READERS_LOCK).touch()
    return build


def test_named_and_current_snapshots_live_side_by_side(tmp_path: Path) -> None:
    current = fake_build(tmp_path, "2027-28", "run-1", "2026-11-30")
    publish_cycles(tmp_path, {"2027-28": (current, {"on_date": "2026-11-30"})})
    what_if = fake_build(tmp_path, "2027-28", "run-2", "2026-09-15")
    publish_cycles(tmp_path, {"2027-28": (what_if, {"on_date": "2026-09-15"})}, snapshot="sept")

    assert published(tmp_path)["cycles"]["2027-28"]["file"] == str(current / "panel.duckdb")
    assert [(r["snapshot"], r["on"]) for r in listed_snapshots(tmp_path)] == [("current", "2026-11-30"), ("sept", "2026-09-15")]
    with open_reader(tmp_path) as db:
        assert db.execute("SELECT on_date::VARCHAR FROM build_info").fetchone() == ("2026-11-30",)
    with open_reader(tmp_path, snapshot="sept") as db:
        assert db.execute("SELECT on_date::VARCHAR FROM build_info").fetchone() == ("2026-09-15",)
    assert sweep(tmp_path) == [] and what_if.exists()  # a named snapshot's folder is not swept

    again = fake_build(tmp_path, "2027-28", "run-3", "2026-09-16")
    publish_cycles(tmp_path, {"2027-28": (again, {"on_date": "2026-09-16"})}, snapshot="sept")
    assert not what_if.exists() and current.exists()  # the name's previous build is superseded, the current one kept


def test_dropping_a_snapshot_a_reader_is_opening_leaves_its_folder_for_the_next_sweep(tmp_path: Path) -> None:
    publish_cycles(tmp_path, {"2027-28": (fake_build(tmp_path, "2027-28", "run-1", "2026-11-30"), {})})
    what_if = fake_build(tmp_path, "2027-28", "run-2", "2026-09-15")
    publish_cycles(tmp_path, {"2027-28": (what_if, {})}, snapshot="sept")
    with open(what_if / READERS_LOCK, "a") as reading:
        fcntl.flock(reading, fcntl.LOCK_SH)  # as open_reader holds it while attaching
        assert drop_snapshot(tmp_path, "sept") == ["2027-28"]
        assert what_if.exists()
    with pytest.raises(UnknownSnapshot, match="none yet"):
        open_reader(tmp_path, snapshot="sept")
    assert sweep(tmp_path) == [what_if] and not what_if.exists()


def test_an_unknown_name_lists_the_known_ones(tmp_path: Path) -> None:
    publish_cycles(tmp_path, {"2027-28": (fake_build(tmp_path, "2027-28", "run-1", "2026-09-15"), {})}, snapshot="sept")
    with pytest.raises(UnknownSnapshot, match="'setp'; named snapshots: sept"):
        open_reader(tmp_path, snapshot="setp")
    with pytest.raises(UnknownSnapshot):
        drop_snapshot(tmp_path, "setp")
    assert set(published(tmp_path)["named"]) == {"sept"}  # a refused drop changes nothing
