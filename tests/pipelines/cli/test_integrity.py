"""`planning verify`, `planning build` and `planning recover` as the data team meets a damaged store:
only the command line and the files, as a person would."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from events.home import PlanningHome
from pipelines.cli.main import main
from pipelines.orchestration.runs import build
from projections.reading.snapshots import published
from tests.support.events import make_event, write_jsonl

RECORDED_AT = "2026-11-01T09:00:00Z"


def planning(*args: str) -> int:
    return main(list(args))


def responses(count: int, prefix: str) -> list[dict]:
    return [make_event("consultation.response_received",
                       {"respondent": {"respondent_ref": f"{prefix}-{i}", "age_band": "16-24", "gender": "female",
                                       "ethnic_group": "black", "disability": "no"}}) for i in range(count)]


def ingest(home: PlanningHome, tmp_path: Path, name: str, events: list[dict]) -> None:
    assert planning("ingest", str(write_jsonl(tmp_path / name, events)), "--recorded-at", RECORDED_AT) == 0


def segments(home: PlanningHome) -> list[Path]:
    return sorted((home.store / "segments").glob("*.jsonl"))


def cut_lines(path: Path, lines: int) -> None:
    path.write_bytes(b"".join(path.read_bytes().splitlines(keepends=True)[:-lines]))


def edit_records(path: Path, records: int) -> None:
    """Edit ``records`` records into other valid JSON: another borough, the same length."""
    text = path.read_text()
    edited = text.replace('"borough":"E09000012"', '"borough":"E09000013"', records)
    assert edited.count('"borough":"E09000013"') == records
    path.write_text(edited)


def test_verify_names_a_flipped_a_truncated_and_a_deleted_segment(home: PlanningHome, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture) -> None:
    sent = [responses(50, f"r{i}") for i in range(4)]
    for i, events in enumerate(sent):
        ingest(home, tmp_path, f"batch-{i}.jsonl", events)
    flipped, truncated, deleted, healthy = segments(home)
    assert planning("verify") == 0
    data = bytearray(flipped.read_bytes())
    data[data.index(b'"channel":"online_survey"') + len('"channel":"o')] ^= 0x01  # one bit of one byte
    flipped.write_bytes(bytes(data))
    cut_lines(truncated, 50 - 7)
    deleted.unlink()
    capsys.readouterr()
    assert planning("verify") == 1
    printed = capsys.readouterr()
    out = printed.out
    assert f"DAMAGED  segments/{flipped.name}: its bytes changed" in out
    assert f"DAMAGED  segments/{truncated.name}: truncated" in out
    assert "positions whose record cannot be read back: 58–100" in out
    assert f"MISSING  segments/{deleted.name}: the file is missing" in out
    assert "holds positions 101–150 (50 events)" in out
    assert healthy.name not in out
    for events in sent[:3]:
        assert events[0]["event_id"] in out
    assert "NOT INTACT: 3 damaged or missing segment(s) holding 150 events" in printed.err


@pytest.mark.parametrize("damage", ["50 lines cut off", "30 records edited into other valid JSON"])
def test_a_full_build_refuses_a_damaged_segment_and_the_panel_keeps_its_last_good_snapshot(
    damage: str, home: PlanningHome, tmp_path: Path, capsys: pytest.CaptureFixture,
) -> None:
    ingest(home, tmp_path, "first.jsonl", responses(40, "a"))
    ingest(home, tmp_path, "second.jsonl", responses(60, "b"))
    build(home, on="2026-09-10")  # the last good snapshot, the current one, at a pinned `on`
    pointer = published(home.projections)
    capsys.readouterr()
    assert planning("query", "consultation_coverage", "--format", "json") == 0
    coverage = capsys.readouterr().out
    assert '"borough":"E09000012","channel":"all","responses":100' in coverage.replace(" ", "")  # the Panel's figure before the damage
    damaged = segments(home)[1]
    cut_lines(damaged, 50) if damage == "50 lines cut off" else edit_records(damaged, 30)

    assert planning("build", "--full") == 3
    err = capsys.readouterr().err
    assert f"segment {damaged.name} (positions 41–100, 60 events) is damaged" in err
    assert "nothing of it published" in err
    assert published(home.projections)["cycles"] == pointer["cycles"]  # (the dead letters, read from the index, are rebuilt)
    assert planning("query", "consultation_coverage", "--format", "json") == 0
    assert capsys.readouterr().out == coverage


def test_a_segment_forgotten_with_the_lost_wal_is_quarantined_then_recovered(home: PlanningHome, tmp_path: Path,
                                                                            capsys: pytest.CaptureFixture) -> None:
    first, second, later = responses(50, "a"), responses(50, "b"), responses(5, "c")
    ingest(home, tmp_path, "first.jsonl", first)
    index = home.store / "store.sqlite"
    with sqlite3.connect(index) as live, sqlite3.connect(tmp_path / "index-after-first.sqlite") as copy:
        live.backup(copy)
    ingest(home, tmp_path, "second.jsonl", second)
    forgotten = segments(home)[1]
    for name in ("store.sqlite-wal", "store.sqlite-shm"):  # the crash lost the WAL: the second commit is gone
        (home.store / name).unlink(missing_ok=True)
    (tmp_path / "index-after-first.sqlite").replace(index)

    ingest(home, tmp_path, "later.jsonl", later)  # the next writer
    quarantined = home.store / "quarantine" / forgotten.name
    assert len(quarantined.read_bytes().splitlines()) == 50
    capsys.readouterr()
    assert planning("verify") == 1
    assert f"QUARANTINED  quarantine/{forgotten.name}: 50 events, 50 of them not in the store: run `planning recover`" \
        in capsys.readouterr().out

    assert planning("recover") == 0
    assert "appended 50 at positions 56–105, already in the store 0" in capsys.readouterr().out
    assert planning("recover") == 0
    assert "appended 0, already in the store 50" in capsys.readouterr().out
    assert planning("verify") == 0
    assert "all of them in the store" in capsys.readouterr().out

    stored = [json.loads(line)["event_id"] for path in segments(home) for line in path.read_text().splitlines()]
    assert sorted(stored) == sorted(e["event_id"] for e in first + second + later)  # none lost, none twice
