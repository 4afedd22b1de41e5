"""The event index in runs (events.storage.event_index): duplicates and conflicts found in every run, closed or
open, by the writer and by readers; a store made before runs sorted into them; a restore's runs completed."""

from __future__ import annotations

import shutil
import sqlite3
import uuid
from pathlib import Path

import pytest

import events.storage.event_index as event_index
from events.storage.backup import backup
from events.storage.id_filter import IdFilter, IdHashes
from events.storage.restore import restore
from events.storage.store import EventStore
from tests.events.test_integrity import RECORDED_AT, received, responses

RUN = 4  # ids per run in these tests


@pytest.fixture(autouse=True)
def small_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(event_index, "RUN_SIZE", RUN)


def runs_of(root: Path) -> list[tuple[int, bool, int]]:
    """(run, has a filter, ids in it) of each run listed."""
    with sqlite3.connect(root / "store.sqlite") as db:
        return db.execute("SELECT r.run, r.filter IS NOT NULL, (SELECT count(*) FROM event_ids AS i WHERE i.run = r.run)"
                          " FROM event_id_runs AS r ORDER BY r.run").fetchall()


def test_a_filter_never_rules_out_an_id_it_holds_and_rarely_lets_another_through() -> None:
    held = [str(uuid.uuid4()) for _ in range(20_000)]
    others = [str(uuid.uuid4()) for _ in range(100_000)]
    run_filter = IdFilter.sized_for(len(held))
    run_filter.add(IdHashes(held))
    stored = IdFilter.from_bytes(run_filter.to_bytes())
    assert stored.may_hold(IdHashes(held)).all()
    assert stored.may_hold(IdHashes(others)).mean() < 0.01


def test_an_id_hashes_the_same_alone_or_in_a_batch_of_any_text() -> None:
    """A batch holding text that is no UUID is hashed id by id: each id must still hash as it did when stored."""
    ids = [str(uuid.uuid4()), "not-a-uuid", str(uuid.uuid4()).upper(), "x" * 36, str(uuid.uuid4())]
    one_by_one = [IdHashes([i]) for i in ids]
    together = IdHashes(ids)
    assert list(together.word_keys) == [h.word_keys[0] for h in one_by_one]
    assert list(together.masks) == [h.masks[0] for h in one_by_one]


def test_duplicates_and_conflicts_are_found_in_closed_runs_and_the_open_one(tmp_path: Path) -> None:
    first, second = responses(6, "a"), responses(3, "b")
    with EventStore(tmp_path, writer=True) as store:
        store.append([received(e) for e in first], recorded_at=RECORDED_AT)
        store.append([received(e) for e in second], recorded_at=RECORDED_AT)
        assert runs_of(tmp_path) == [(0, True, 6), (1, False, 3)], "the full run closed with its filter, the next one open"
        changed = {**first[2], "payload": {**first[2]["payload"], "comment": "changed"}}
        again = store.append([received(e) for e in [*first, *second, changed]], recorded_at=RECORDED_AT)
    assert sorted(again.duplicates) == sorted(e["event_id"] for e in [*first, *second])
    assert again.accepted == [] and len(again.rejected) == 1 and "already stored with a different body" in again.rejected[0][1][0]
    with EventStore(tmp_path) as reader:  # a reader has no filter of the open run: it reads it whole
        positions = reader.positions_of([e["event_id"] for e in [*second, *first]] + [str(uuid.uuid4())])
        assert positions == {e["event_id"]: p for p, e in enumerate([*first, *second], start=1)}
        assert reader.known_event_ids([first[0]["event_id"], second[0]["event_id"], "nonsense"]) == {first[0]["event_id"], second[0]["event_id"]}


def test_a_rolled_back_append_leaves_the_runs_as_they_were(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = responses(5, "a"), responses(2, "b")
    with EventStore(tmp_path, writer=True) as store:
        store.append([received(e) for e in first], recorded_at=RECORDED_AT)
        with monkeypatch.context() as patched:  # the run is closed inside the transaction, then the batch fails
            patched.setattr(EventStore, "_write_segment", lambda *_: (_ for _ in ()).throw(OSError("disk full")))
            with pytest.raises(OSError):
                store.append([received(e) for e in second], recorded_at=RECORDED_AT)
        assert runs_of(tmp_path) == [(0, False, 5)]
        outcome = store.append([received(e) for e in second], recorded_at=RECORDED_AT)
    assert len(outcome.accepted) == 2, "ids of the failed batch were never stored, so they are new"
    assert runs_of(tmp_path) == [(0, True, 5), (1, False, 2)]


def test_a_store_made_before_runs_is_sorted_into_them_by_its_first_writer(tmp_path: Path) -> None:
    events = responses(7, "a")
    with EventStore(tmp_path, writer=True) as store:
        store.append([received(e) for e in events], recorded_at=RECORDED_AT)
    with sqlite3.connect(tmp_path / "store.sqlite") as db:  # the index as an earlier version kept it
        db.executescript("""
            CREATE TABLE old (event_id TEXT PRIMARY KEY, body_sha256 TEXT NOT NULL, position INTEGER NOT NULL, sender TEXT) WITHOUT ROWID;
            INSERT INTO old SELECT event_id, body_sha256, position, sender FROM event_ids;
            DROP TABLE event_ids; DROP TABLE event_id_runs; ALTER TABLE old RENAME TO event_ids;""")
    with EventStore(tmp_path) as reader:
        assert reader.positions_of([events[3]["event_id"]]) == {events[3]["event_id"]: 4}, "a reader reads the old layout"
    with EventStore(tmp_path, writer=True) as store:
        assert runs_of(tmp_path) == [(0, True, 7), (1, False, 0)]
        again = store.append([received(e) for e in events], recorded_at=RECORDED_AT)
    assert sorted(again.duplicates) == sorted(e["event_id"] for e in events)


def test_a_restored_store_finds_every_event_its_backup_holds_in_every_run(tmp_path: Path) -> None:
    """An incremental backup's ids since its base join the base's open run at restore, closed by the next append."""
    root, copy = tmp_path / "home" / "store", tmp_path / "backup"
    batches = [responses(3, f"b{n}") for n in range(5)]
    with EventStore(root, writer=True) as store:
        for n, batch in enumerate(batches):
            store.append([received(e) for e in batch], recorded_at=RECORDED_AT)
            if n in (1, 4):
                taken = backup(root, copy)
    assert taken.copied_files[0] == "store.sqlite (brought forward)", "the second backup kept the ids since its base apart"
    shutil.rmtree(root)
    restore(copy, root)
    with EventStore(root, writer=True) as store:
        again = store.append([received(e) for batch in batches for e in batch], recorded_at=RECORDED_AT)
        more = store.append([received(e) for e in responses(2, "new")], recorded_at=RECORDED_AT)
    assert sorted(again.duplicates) == sorted(e["event_id"] for batch in batches for e in batch) and again.accepted == []
    assert len(more.accepted) == 2
    assert runs_of(root) == [(0, True, 15), (1, False, 2)], "the base's open run took the 9 ids kept since the base"
