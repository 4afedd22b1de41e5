"""Backups of the store (events.storage.backup) and restores (events.storage.restore), as the data
team meets them: a backup while the writer appends, a second backup into the same directory, a store
that is healthy, missing or broken."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pytest

import events.storage.backup as backup_module
import events.storage.restore as restore_module
from events.storage.backup import BackupRefused, IncompleteBackup, Manifest, backup, check_backup, merge_deltas, merge_since_base
from events.storage.restore import BROKEN, EMPTY, HEALTHY, MISSING, HealthyStore, restore, store_state
from events.storage.recovery import recover
from events.storage.store import EventStore, StoreLocked
from pipelines.ingest.files import ingest_files
from tests.events.test_integrity import lose_the_wal_after_first_batch, received
from tests.support.events import make_event, write_jsonl

AT = datetime(2026, 9, 1, tzinfo=timezone.utc)


def responses(n: int, start: int = 0) -> list[dict]:
    return [make_event("consultation.response_received", {"respondent": {"respondent_ref": f"r-{start + i}", "age_band": "16-24"}})
            for i in range(n)]


def append(store: EventStore, tmp_path: Path, events: list[dict], name: str) -> None:
    ingest_files(store, [str(write_jsonl(tmp_path / name, events))], recorded_at=AT, progress=None)


def ids_by_position(root: Path) -> list[tuple[int, str]]:
    with EventStore(root) as store:
        return [(r["position"], r["event_id"]) for r in store.records()]


def test_a_second_backup_into_the_same_directory_copies_only_the_new_segments(tmp_path: Path) -> None:
    root, target = tmp_path / "home" / "store", tmp_path / "backup"
    with EventStore(root, writer=True) as store:  # the writer holds its lock throughout: backups never need it
        append(store, tmp_path, responses(30), "a.jsonl")
        append(store, tmp_path, responses(20, 30), "b.jsonl")
        first = backup(root, target)
        assert (first.manifest.position, len(first.copied), first.kept) == (50, 2, 0)
        kept_inode = (target / "store" / "segments" / first.copied[0]).stat().st_ino
        append(store, tmp_path, responses(5, 50), "c.jsonl")
        second = backup(root, target)
    assert second.copied == ["000000000051-000000000055.jsonl"], "only the segment committed since"
    assert (second.manifest.position, second.kept, second.copied_bytes) == (55, 2, (root / "segments" / second.copied[0]).stat().st_size)
    assert (target / "store" / "segments" / first.copied[0]).stat().st_ino == kept_inode, "an old segment is not copied again"
    assert check_backup(target).position == 55


def test_an_incremental_backup_copies_again_an_earlier_segment_that_dir_lost(tmp_path: Path) -> None:
    root, target = tmp_path / "home" / "store", tmp_path / "backup"
    with EventStore(root, writer=True) as store:
        append(store, tmp_path, responses(30), "a.jsonl")
        append(store, tmp_path, responses(20, 30), "b.jsonl")
        first = backup(root, target)
        lost = target / "store" / "segments" / first.copied[0]
        lost.unlink()  # an operator's slip, or a disk's
        append(store, tmp_path, responses(5, 50), "c.jsonl")
        second = backup(root, target)
    assert sorted(second.copied) == sorted([first.copied[0], "000000000051-000000000055.jsonl"])
    assert lost.read_bytes() == (root / "segments" / lost.name).read_bytes()
    assert "brought forward" in second.copied_files[0], "still incremental: the index was not copied whole"
    assert check_backup(target).position == 55
    restored = tmp_path / "restored" / "store"
    restore(target, restored)
    assert ids_by_position(restored) == ids_by_position(root)


def test_a_backup_is_consistent_at_the_position_of_its_index_while_the_writer_commits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch committed after the index was copied, and a segment written but not yet committed, stay out."""
    root, target = tmp_path / "home" / "store", tmp_path / "backup"
    store = EventStore(root, writer=True)
    append(store, tmp_path, responses(10), "a.jsonl")
    copy_segments = backup_module._copy_segments

    def writer_goes_on(source: Path, into: Path, report) -> None:
        append(store, tmp_path, responses(7, 10), "b.jsonl")  # committed after the copied index's moment
        (root / "segments" / ".000000000018-000000000020.jsonl.tmp").write_text("{}\n")  # an append in flight
        copy_segments(source, into, report)

    monkeypatch.setattr(backup_module, "_copy_segments", writer_goes_on)
    report = backup(root, target)
    store.close()
    assert report.manifest.position == 10 and report.manifest.events == 10
    assert sorted(p.name for p in (target / "store" / "segments").iterdir()) == ["000000000001-000000000010.jsonl"]

    restored = tmp_path / "elsewhere" / "store"
    restore(target, restored)
    assert ids_by_position(restored) == ids_by_position(root)[:10], "every event up to the position, nothing after"


def test_a_first_backup_cut_short_is_never_taken_for_a_whole_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root, target = tmp_path / "home" / "store", tmp_path / "backup"
    with EventStore(root, writer=True) as store:
        append(store, tmp_path, responses(3), "a.jsonl")

    def crash(*_: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(backup_module, "_copy_segments", crash)
    with pytest.raises(OSError):
        backup(root, target)
    with pytest.raises(IncompleteBackup, match="holds no manifest.json"):
        check_backup(target)
    with pytest.raises(IncompleteBackup):
        restore(target, tmp_path / "elsewhere" / "store")
    assert not (tmp_path / "elsewhere" / "store").exists()

    monkeypatch.undo()
    again = backup(root, target)  # the next backup starts afresh: nothing of the one cut short is trusted
    assert (again.manifest.position, len(again.copied), again.kept) == (3, 1, 0)
    assert check_backup(target).position == 3


CRASH_POINTS = {  # each durable write of a backup into a directory holding one, and the rename that ends it
    "copying a new segment": "_copy_named",
    "writing the manifest": "_prepare_manifest",
    "renaming the manifest": "_publish_manifest",
}
CUT_SHORT = [*((way, point) for way in ("incremental", "whole after an erasure") for point in CRASH_POINTS),
             ("incremental", "syncing the delta"), ("whole after an erasure", "copying the index whole"),
             ("whole after an erasure", "copying the erasure ledger")]
CRASH_POINTS |= {"syncing the delta": "_fsync_new_file", "copying the index whole": "_copy_whole", "copying the erasure ledger": "_copy_database"}


@pytest.mark.parametrize(("way", "point"), CUT_SHORT)
def test_a_backup_cut_short_leaves_the_previous_backup_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, way: str,
                                                           point: str) -> None:
    """Wherever a backup into a directory that holds one stops, that directory is still the backup it was:
    its manifest, index and segments at the old position, restorable; the next backup goes on from it."""
    root, target = tmp_path / "home" / "store", tmp_path / "backup"
    with EventStore(root, writer=True) as store:
        append(store, tmp_path, responses(3), "a.jsonl")
        backup(root, target)
        append(store, tmp_path, responses(2, 3), "b.jsonl")
        backup(root, target)  # the base and one delta: the old position is 5
        more = [*responses(3, 5)]
        if way == "whole after an erasure":  # the index is then copied whole, under the name the old manifest does not use
            more.append(make_event("respondent.erasure_requested", {"respondent_ref": "r-0"}, occurred_at="2026-08-31T10:00:00Z"))
        append(store, tmp_path, more, "c.jsonl")
    old = ids_by_position(root)[:5]
    calls = []

    def crash(*args: object, **kwargs: object) -> object:
        calls.append(args)
        raise OSError("power cut")

    monkeypatch.setattr(backup_module, CRASH_POINTS[point], crash)
    with pytest.raises(OSError, match="power cut"):
        backup(root, target)
    monkeypatch.undo()
    assert calls, f"the backup reached {point}"
    assert check_backup(target).position == 5
    restored = tmp_path / "elsewhere" / "store"
    restore(target, restored)
    assert ids_by_position(restored) == old

    again = backup(root, target)
    assert check_backup(target).position == again.manifest.position == len(ids_by_position(root))
    shutil.rmtree(restored.parent)
    restore(target, restored)
    assert ids_by_position(restored) == ids_by_position(root)


def test_a_backup_refuses_a_directory_holding_something_else(tmp_path: Path) -> None:
    root = tmp_path / "home" / "store"
    with EventStore(root, writer=True) as store:
        append(store, tmp_path, responses(2), "a.jsonl")
    (tmp_path / "papers").mkdir()
    (tmp_path / "papers" / "minutes.docx").write_text("not a backup")
    with pytest.raises(BackupRefused, match="not empty and holds no backup"):
        backup(root, tmp_path / "papers")
    with pytest.raises(BackupRefused, match="inside the event store"):
        backup(root, root / "backup")
    other = tmp_path / "other" / "store"
    with EventStore(other, writer=True) as store:
        append(store, tmp_path, responses(2, 100), "b.jsonl")
    backup(other, tmp_path / "theirs")
    with pytest.raises(BackupRefused, match="another event store"):
        backup(root, tmp_path / "theirs")


def test_restore_refuses_a_healthy_store_unless_forced_and_then_moves_it_aside(tmp_path: Path) -> None:
    root, target = tmp_path / "home" / "store", tmp_path / "backup"
    with EventStore(root, writer=True) as store:
        append(store, tmp_path, responses(4), "a.jsonl")
        backup(root, target)
        append(store, tmp_path, responses(4, 4), "b.jsonl")
    assert store_state(root).state == HEALTHY
    with pytest.raises(HealthyStore, match="--force"):
        restore(target, root)
    assert len(ids_by_position(root)) == 8, "the healthy store is untouched"

    report = restore(target, root, force=True, now=datetime(2026, 9, 2, 8, 30, tzinfo=timezone.utc))
    assert report.moved_to == tmp_path / "home" / "store.replaced-20260902T083000Z"
    assert len(ids_by_position(report.moved_to)) == 8, "moved aside whole, not deleted"
    assert len(ids_by_position(root)) == 4


@pytest.mark.parametrize("damage", ["delete a segment", "truncate a segment", "flip a byte", "delete the index", "delete the folder"])
def test_restore_replaces_a_missing_or_broken_store_without_force(tmp_path: Path, damage: str) -> None:
    root, target = tmp_path / "home" / "store", tmp_path / "backup"
    with EventStore(root, writer=True) as store:
        append(store, tmp_path, responses(4), "a.jsonl")
        append(store, tmp_path, responses(4, 4), "b.jsonl")
    backup(root, target)
    original = ids_by_position(root)
    segment = root / "segments" / "000000000005-000000000008.jsonl"
    if damage == "delete a segment":
        segment.unlink()
    elif damage == "truncate a segment":
        segment.write_bytes(segment.read_bytes()[:-40])
    elif damage == "flip a byte":
        data = bytearray(segment.read_bytes())
        data[30] ^= 0x01
        segment.write_bytes(bytes(data))
    elif damage == "delete the index":
        (root / "store.sqlite").unlink()
    else:
        shutil.rmtree(root)
    expected = MISSING if damage == "delete the folder" else BROKEN
    assert store_state(root).state == expected
    report = restore(target, root)
    assert report.replaced.state == expected
    assert ids_by_position(root) == original
    assert store_state(root).state == HEALTHY


def test_a_restore_into_a_missing_store_holds_the_writer_lock_until_the_store_is_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker or an ingest started while a missing store is restored is refused, not left writing into
    a folder the restore then puts aside: the restore makes the folder and holds its lock."""
    root, target = tmp_path / "home" / "store", tmp_path / "backup"
    with EventStore(root, writer=True) as store:
        append(store, tmp_path, responses(3), "a.jsonl")
    backup(root, target)
    shutil.rmtree(root)
    refusals: list[str] = []
    copy_backup = restore_module._copy_backup

    def copy_while_a_writer_tries(*args: object) -> None:
        with pytest.raises(StoreLocked) as refused:
            EventStore(root, writer=True, holder="planning worker")
        refusals.append(refused.value.holder)
        copy_backup(*args)

    monkeypatch.setattr(restore_module, "_copy_backup", copy_while_a_writer_tries)
    report = restore(target, root)
    assert refusals and refusals[0].startswith("planning restore (pid "), "the writer was told who holds the store"
    assert report.moved_to is None, "nothing was there to move aside"
    assert sorted(p.name for p in root.parent.iterdir()) == ["store"], "no empty folder moved aside, no copy left"
    assert len(ids_by_position(root)) == 3
    EventStore(root, writer=True).close()  # the lock is free again


def test_a_restore_leaves_alone_what_a_writer_that_took_no_lock_wrote_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, target = tmp_path / "home" / "store", tmp_path / "backup"
    with EventStore(root, writer=True) as store:
        append(store, tmp_path, responses(3), "a.jsonl")
    backup(root, target)
    shutil.rmtree(root)
    copy_backup = restore_module._copy_backup

    def copy_while_something_writes(*args: object) -> None:
        copy_backup(*args)
        (root / "segments").mkdir()  # as a writer that ignores the lock would, or an operator's copy

    monkeypatch.setattr(restore_module, "_copy_backup", copy_while_something_writes)
    with pytest.raises(restore_module.RestoreRefused, match="run `planning restore` again"):
        restore(target, root)
    assert (root / "segments").is_dir(), "what was written there is left as it is"
    assert len(ids_by_position(tmp_path / "home" / ".store.restoring")) == 3, "the restored copy is kept beside it"


def test_an_empty_store_is_replaced_without_force(tmp_path: Path) -> None:
    root, target = tmp_path / "home" / "store", tmp_path / "backup"
    with EventStore(root, writer=True) as store:
        append(store, tmp_path, responses(2), "a.jsonl")
    backup(root, target)
    fresh = tmp_path / "fresh" / "store"
    EventStore(fresh, writer=True).close()
    assert store_state(fresh).state == EMPTY
    restore(target, fresh)
    assert len(ids_by_position(fresh)) == 2


def test_the_manifest_says_what_the_backup_holds(tmp_path: Path) -> None:
    root, target = tmp_path / "home" / "store", tmp_path / "backup"
    with EventStore(root, writer=True) as store:
        append(store, tmp_path, [*responses(3), b"{not json"], "a.jsonl")
    report = backup(root, target, now=datetime(2026, 9, 3, 10, tzinfo=timezone.utc))
    manifest = json.loads((target / "manifest.json").read_text())
    since = manifest.pop("since")
    assert manifest == {"format": 2, "store_id": report.manifest.store_id, "position": 3, "events": 3, "dead_letters": 1,
                        "taken_at": "2026-09-03T10:00:00Z",
                        "segments": {"000000000001-000000000003.jsonl": os.path.getsize(root / "segments" / "000000000001-000000000003.jsonl")},
                        "quarantine": {}, "databases": [], "index": "store.sqlite", "deltas": []}
    assert (since["keys_rowid"], since["kept"], since["dead_letters"]) == (3, 0, [1, 1, 1, 0])
    assert Manifest.read(target) == report.manifest


def tables_of(index: Path) -> dict[str, list[tuple]]:
    db = sqlite3.connect(index)
    names = [n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    found = {n: sorted(db.execute(f"SELECT * FROM {n}").fetchall(), key=repr) for n in names}
    db.close()
    return found


def index_as_restore_makes_it(backup_dir: Path, into: Path) -> Path:
    """The backup's index copy with its deltas and the rows kept since its base merged, as restore merges them."""
    manifest = check_backup(backup_dir)
    merged = shutil.copytree(backup_dir / "store", into) / "store.sqlite"
    shutil.copyfile(backup_dir / "store" / manifest.index, merged)
    merge_deltas(merged, [backup_dir / "store" / name for name in manifest.deltas])
    merge_since_base(merged)
    return merged


def test_later_backups_add_deltas_that_bring_the_index_to_what_a_whole_copy_would_hold(tmp_path: Path) -> None:
    """New events, new keys, new dead letters, in two backups after the first: each writes one delta beside the
    untouched base copy; merged as restore merges them, they equal a whole copy of the index at the same moment."""
    root = tmp_path / "home" / "store"
    later = datetime(2026, 9, 5, tzinfo=timezone.utc)
    with EventStore(root, writer=True) as store:
        mine = make_event("consultation.response_received", {"respondent": {"respondent_ref": "r-mine", "age_band": "16-24"}})
        conflict = {**mine, "payload": {**mine["payload"], "channel": "ward_panel"}}
        append(store, tmp_path, [mine, *responses(5), conflict], "a.jsonl")
        first = backup(root, tmp_path / "incremental")
        assert first.copied_files[0] == "store.sqlite (whole)"
        base = (tmp_path / "incremental" / "store" / "store.sqlite").read_bytes()
        ingest_files(store, [str(write_jsonl(tmp_path / "b.jsonl", [*responses(4, 100), b"{bad"]))], recorded_at=later, progress=None)
        second = backup(root, tmp_path / "incremental")
        ingest_files(store, [str(write_jsonl(tmp_path / "c.jsonl", [*responses(2, 200), b"{worse"]))], recorded_at=later, progress=None)
        third = backup(root, tmp_path / "incremental")
        whole = backup(root, tmp_path / "whole")
    assert second.copied_files[0] == third.copied_files[0] == "store.sqlite (brought forward)"
    assert (third.manifest.deltas, third.manifest.position, whole.manifest.position) == (["since-0001.sqlite", "since-0002.sqlite"], 12, 12)
    assert (tmp_path / "incremental" / "store" / "store.sqlite").read_bytes() == base, "the base copy is never written again"
    delta = tables_of(tmp_path / "incremental" / "store" / "since-0001.sqlite")
    assert (delta["since_base_segments"], len(delta["dead_letters"])) == ([(7,)], 1), "the new segment is named, its rows not written"
    brought = tables_of(index_as_restore_makes_it(tmp_path / "incremental", tmp_path / "merged"))
    assert brought == tables_of(tmp_path / "whole" / "store" / "store.sqlite")


def test_a_backup_after_an_erasure_copies_the_index_whole_and_drops_the_old_copy(tmp_path: Path) -> None:
    """An erasure shreds a key and redacts a dead letter the base copy holds: the index is copied whole under
    the other name, and once the new manifest names it the old copy and its deltas are removed."""
    root, target = tmp_path / "home" / "store", tmp_path / "backup"
    with EventStore(root, writer=True) as store:
        mine = make_event("consultation.response_received", {"respondent": {"respondent_ref": "r-mine", "age_band": "16-24"}})
        conflict = {**mine, "payload": {**mine["payload"], "channel": "ward_panel"}}
        append(store, tmp_path, [mine, *responses(5), conflict], "a.jsonl")
        backup(root, target)
        append(store, tmp_path, responses(2, 100), "b.jsonl")
        assert backup(root, target).manifest.deltas == ["since-0001.sqlite"]
        erasure = make_event("respondent.erasure_requested", {"respondent_ref": "r-mine"}, occurred_at="2026-08-31T10:00:00Z")
        append(store, tmp_path, [erasure], "c.jsonl")
        after = backup(root, target)
        whole = backup(root, tmp_path / "whole")
    assert (after.copied_files[0], after.manifest.index, after.manifest.deltas) == ("store.sqlite (whole)", "store.other.sqlite", [])
    assert sorted(p.name for p in (target / "store").glob("*.sqlite")) == ["store.other.sqlite"]
    brought = tables_of(index_as_restore_makes_it(target, tmp_path / "merged"))
    assert brought == tables_of(tmp_path / "whole" / "store" / "store.sqlite")
    assert sum(1 for row in brought["respondent_keys"] if row[2] is None) == 1, "the erasure reached the copy"
    assert [row[4] for row in brought["dead_letters"]].count(None) == 1, "the conflict's dead letter is redacted in the copy"


def test_a_backup_in_the_earlier_layout_is_restored_and_built_on(tmp_path: Path) -> None:
    """Before deltas, a backup kept one index copy, brought forward in place (the rows kept since its base in
    it), under a format 1 manifest without ``index``, ``deltas`` or ``since``. It restores as it did, and the
    next backup into it copies the index whole (it lacks what a delta needs to know) under the other name."""
    root, target = tmp_path / "home" / "store", tmp_path / "backup"
    with EventStore(root, writer=True) as store:
        append(store, tmp_path, [*responses(4), b"{bad"], "a.jsonl")
        backup(root, target)
        append(store, tmp_path, [*responses(3, 4), b"{worse"], "b.jsonl")
        backup(root, target)
        # as the earlier version left it: the delta's rows written into the one index copy, the manifest of format 1
        merge_deltas(target / "store" / "store.sqlite", [target / "store" / "since-0001.sqlite"])
        (target / "store" / "since-0001.sqlite").unlink()
        manifest = json.loads((target / "manifest.json").read_text())
        for key in ("index", "deltas", "since"):
            del manifest[key]
        (target / "manifest.json").write_text(json.dumps({**manifest, "format": 1}))
        assert "since_base_segments" in tables_of(target / "store" / "store.sqlite")
        old = Manifest.read(target)
        assert (old.index, old.deltas, old.since, old.position) == ("store.sqlite", [], None, 7)
        restore(target, tmp_path / "elsewhere" / "store")
        assert ids_by_position(tmp_path / "elsewhere" / "store") == ids_by_position(root)
        append(store, tmp_path, responses(2, 10), "c.jsonl")
        after = backup(root, target)
    assert (after.copied_files[0], after.manifest.index, after.manifest.position) == ("store.sqlite (whole)", "store.other.sqlite", 9)
    shutil.rmtree(tmp_path / "elsewhere")
    restore(target, tmp_path / "elsewhere" / "store")
    assert ids_by_position(tmp_path / "elsewhere" / "store") == ids_by_position(root)


def test_the_backup_copies_the_sender_registry_under_the_name_the_registry_uses(tmp_path: Path) -> None:
    from events.senders.registry import REGISTRY_FILE

    assert backup_module.REGISTRY_FILE == REGISTRY_FILE


def test_restore_refuses_a_backup_whose_segment_was_damaged_since(tmp_path: Path) -> None:
    root, target = tmp_path / "home" / "store", tmp_path / "backup"
    with EventStore(root, writer=True) as store:
        append(store, tmp_path, responses(4), "a.jsonl")
    backup(root, target)
    shutil.rmtree(root)
    copy = target / "store" / "segments" / "000000000001-000000000004.jsonl"
    data = bytearray(copy.read_bytes())
    data[30] ^= 0x01  # same size: only the digest tells
    copy.write_bytes(bytes(data))
    with pytest.raises(IncompleteBackup, match="000000000001-000000000004.jsonl: its bytes changed"):
        restore(target, root)
    assert not root.exists(), "nothing was put in place"


def test_an_incremental_backup_after_an_erasure_leaves_no_trace_of_the_erased_in_the_backup(tmp_path: Path) -> None:
    """One respondent is in the backup's base copy, another in the rows an incremental backup kept since;
    both are erased, each with a dead letter carrying their comment. The next incremental backup leaves
    neither key nor comment anywhere in DIR, decoding its SQLite files as the erasure test does."""
    from tests.events.test_erasure import everything_readable

    root, target = tmp_path / "home" / "store", tmp_path / "backup"
    comments = {"r-quoll": "QUOLL-5512 lives at 7 Banksia Close", "r-numbat": "NUMBAT-0407 lives at 3 Wandoo Way"}

    def response_and_conflict(ref: str) -> list[dict]:
        mine = make_event("consultation.response_received", {"respondent": {"respondent_ref": ref, "age_band": "16-24"},
                                                              "comment": comments[ref]})
        return [mine, {**mine, "payload": {**mine["payload"], "channel": "ward_panel"}}]  # the second: a dead letter with it all

    with EventStore(root, writer=True) as store:
        append(store, tmp_path, [*response_and_conflict("r-quoll"), *responses(3)], "a.jsonl")
        assert backup(root, target).copied_files[0] == "store.sqlite (whole)"  # r-quoll's key in the base copy
        append(store, tmp_path, [*response_and_conflict("r-numbat"), *responses(3, 10)], "b.jsonl")
        assert backup(root, target).copied_files[0] == "store.sqlite (brought forward)"  # r-numbat's in a delta
        keys = {bytes(key) for (key,) in store._db.execute("SELECT key FROM respondent_keys WHERE key IS NOT NULL")}
        found = [text for _, text in everything_readable(target)]
        assert any("Banksia" in text for text in found) and any("Wandoo" in text for text in found), "both were in the backup"
        erasures = [make_event("respondent.erasure_requested", {"respondent_ref": ref}, occurred_at="2026-09-04T10:00:00Z")
                    for ref in comments]
        ingest_files(store, [str(write_jsonl(tmp_path / "c.jsonl", [*erasures, *responses(2, 20)]))],
                     recorded_at=datetime(2026, 9, 5, tzinfo=timezone.utc), progress=None)
        erased = keys - {bytes(key) for (key,) in store._db.execute("SELECT key FROM respondent_keys WHERE key IS NOT NULL")}
    assert len(erased) == 2
    third = backup(root, target)
    assert third.copied_files[0] == "store.sqlite (whole)" and third.manifest.position == 12  # the old copy and delta removed

    leaks = [(path, needle) for path, text in everything_readable(target)
             for needle in ("QUOLL-5512", "Banksia", "r-quoll", "NUMBAT-0407", "Wandoo", "r-numbat") if needle in text]
    assert leaks == [], "no comment or reference in any file of the backup, nor in any row of its SQLite files"
    raw = [(path, key.hex()) for path in target.rglob("*") if path.is_file() for key in erased if key in path.read_bytes()]
    assert raw == [], "no erased key's bytes in any file of the backup, free pages included"

    restored = tmp_path / "elsewhere" / "store"
    restore(target, restored)
    with EventStore(restored) as copy:
        assert copy._db.execute("SELECT count(*) FROM respondent_keys WHERE key IS NULL").fetchone()[0] == 2
        assert [r["event_id"] for r in copy.records()] == [r["event_id"] for r in EventStore(root).records()]


def test_quarantined_segments_are_backed_up_and_restored_for_planning_recover(tmp_path: Path) -> None:
    """The store's only copy of a batch the lost WAL forgot is in quarantine/: losing the store must not lose it."""
    root, target = tmp_path / "home" / "store", tmp_path / "backup"
    first, second = lose_the_wal_after_first_batch(root)
    with EventStore(root, writer=True) as store:  # the next writer quarantines the forgotten segment, and appends
        store.append([received(e) for e in responses(5, 500)], recorded_at=datetime(2026, 11, 3, tzinfo=timezone.utc))
    (quarantined,) = (root / "quarantine").iterdir()

    taken = backup(root, target)
    assert taken.manifest.quarantine == {quarantined.name: quarantined.stat().st_size}
    assert (target / "store" / "quarantine" / quarantined.name).read_bytes() == quarantined.read_bytes()
    assert "quarantine/ (1 quarantined file(s), 1 new)" in taken.copied_files
    (target / "store" / "quarantine" / quarantined.name).unlink()
    with pytest.raises(IncompleteBackup, match=f"quarantine/{quarantined.name}"):
        check_backup(target)
    assert "quarantine/ (1 quarantined file(s), 1 new)" in backup(root, target).copied_files
    assert "quarantine/ (1 quarantined file(s), 0 new)" in backup(root, target).copied_files, "not copied again"

    shutil.rmtree(root)  # the machine's disk is lost
    restored = restore(target, root)
    assert restored.quarantined == 1
    assert (root / "quarantine" / quarantined.name).read_bytes() == (target / "store" / "quarantine" / quarantined.name).read_bytes()
    with EventStore(root, writer=True) as store:
        assert recover(store).appended == 50
        ids = [e["event_id"] for e in store.events()]
    assert len(ids) == len(set(ids)) == 105 and {e["event_id"] for e in first + second} <= set(ids), "none lost, none twice"


def test_a_writer_refused_while_restore_replaces_the_store_is_told_it_is_planning_restore(tmp_path: Path,
                                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    root, target = tmp_path / "home" / "store", tmp_path / "backup"
    with EventStore(root, writer=True) as store:
        append(store, tmp_path, responses(4), "a.jsonl")
        backup(root, target)
    (root / "store.sqlite").unlink()  # broken: restore replaces it without --force
    refusals: list[StoreLocked] = []
    copy_backup = restore_module._copy_backup

    def a_writer_tries_meanwhile(*args: object) -> None:
        with pytest.raises(StoreLocked) as refused:
            EventStore(root, writer=True, holder="planning ingest")
        refusals.append(refused.value)
        copy_backup(*args)

    monkeypatch.setattr(restore_module, "_copy_backup", a_writer_tries_meanwhile)
    restore(target, root)
    assert len(refusals) == 1
    assert refusals[0].holder == f"planning restore (pid {os.getpid()})"
    assert "planning restore" in str(refusals[0])


def test_a_migration_since_the_base_copy_makes_the_next_backup_copy_the_index_whole(tmp_path: Path) -> None:
    """The base copy is not read by an incremental backup: the manifest's digest of its schema tells a migration."""
    root, target = tmp_path / "home" / "store", tmp_path / "backup"
    with EventStore(root, writer=True) as store:
        append(store, tmp_path, responses(3), "a.jsonl")
        backup(root, target)
        append(store, tmp_path, responses(2, 3), "b.jsonl")
        assert backup(root, target).copied_files[0] == "store.sqlite (brought forward)"
        store._db.execute("ALTER TABLE meta ADD COLUMN noted_at TEXT")  # as a later version's migration would
        append(store, tmp_path, responses(2, 5), "c.jsonl")
    after = backup(root, target)
    assert (after.copied_files[0], after.manifest.index, after.manifest.deltas) == ("store.sqlite (whole)", "store.other.sqlite", [])
    restore(target, tmp_path / "elsewhere" / "store")
    assert ids_by_position(tmp_path / "elsewhere" / "store") == ids_by_position(root)


def test_a_backup_from_before_segment_senders_restores_and_its_next_writer_counts_it(tmp_path: Path) -> None:
    """A base copy and delta written before ``segment_senders`` existed (so neither holds it) merge as before;
    the restored store's counts by sender are right at once, and its first writer counts every segment."""
    root, target, elsewhere = tmp_path / "home" / "store", tmp_path / "backup", tmp_path / "elsewhere" / "store"
    with EventStore(root, writer=True) as store:
        append(store, tmp_path, [*responses(3), b"{bad"], "a.jsonl")
        backup(root, target)
        append(store, tmp_path, responses(2, 3), "b.jsonl")
        assert backup(root, target).manifest.deltas == ["since-0001.sqlite"]
        expected = store.counts_by_sender()
    for copy in ("store.sqlite", "since-0001.sqlite"):  # as the version before wrote them
        db = sqlite3.connect(target / "store" / copy)
        db.execute("DROP TABLE segment_senders")
        db.close()
    restore(target, elsewhere)
    with EventStore(elsewhere) as reader:
        assert reader.counts_by_sender() == expected
    with EventStore(elsewhere, writer=True) as store:
        assert store.counts_by_sender() == expected
        assert store._db.execute("SELECT sum(events) FROM segment_senders").fetchone() == (5,)
