"""The erasure ledger (events.storage.erasure_ledger): every erasure the store commits is also kept
apart from the store, with nothing personal in it, and a restore erases again whoever it names."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

from events.storage.backup import backup
from events.storage.erasure_ledger import ErasureLedger, ledger_path
from events.storage.restore import restore
from events.storage.store import EventStore
from pipelines.ingest.files import ingest_files
from tests.events.test_erasure import everything_readable
from tests.support.events import make_event, write_jsonl
from tests.support.paths import REPO_ROOT

AT = datetime(2026, 9, 1, tzinfo=timezone.utc)
LATER = datetime(2026, 9, 5, tzinfo=timezone.utc)
COMMENT = "NUMBAT-4471 of 3 Wattle Lane"


def response(ref: str, comment: str = "nothing personal") -> dict:
    return make_event("consultation.response_received", {"respondent": {"respondent_ref": ref, "age_band": "16-24"}, "comment": comment})


def erasure(ref: str) -> dict:
    return make_event("respondent.erasure_requested", {"respondent_ref": ref}, occurred_at="2026-09-04T10:00:00Z")


def append(root: Path, tmp_path: Path, events: list, name: str, at: datetime = AT) -> None:
    with EventStore(root, writer=True) as store:
        ingest_files(store, [str(write_jsonl(tmp_path / name, events))], recorded_at=at, progress=None)


def comments(root: Path) -> list[str | None]:
    with EventStore(root) as store:
        return [e["payload"].get("comment") for e in store.events() if e["event_type"] == "consultation.response_received"]


def test_an_erasure_is_ledgered_beside_the_store_with_nothing_personal(tmp_path: Path) -> None:
    root = tmp_path / "home" / "store"
    append(root, tmp_path, [response("r-numbat", COMMENT)], "a.jsonl")
    assert not ledger_path(root).exists(), "no erasure, no ledger"
    append(root, tmp_path, [erasure("r-numbat")], "b.jsonl", LATER)
    assert ledger_path(root) == tmp_path / "home" / "erasures" / "ledger.sqlite"
    with EventStore(root) as store, ErasureLedger(ledger_path(root)) as ledger:
        entries = ledger.erasures(store.vault.store_id)
        assert {e.ref_digest for e in entries} == set(store.vault.digests_of("r-numbat"))
        assert {e.erased_at for e in entries} == {"2026-09-05T00:00:00.000000Z"}
    raw = ledger_path(root).read_bytes()
    assert b"r-numbat" not in raw and b"NUMBAT" not in raw


def test_a_store_erased_before_the_ledger_existed_is_ledgered_when_a_writer_opens_it(tmp_path: Path) -> None:
    root = tmp_path / "home" / "store"
    append(root, tmp_path, [response("r-old"), erasure("r-old")], "a.jsonl", LATER)
    ledger_path(root).unlink()  # lost, or a store older than the ledger
    EventStore(root, writer=True).close()
    with EventStore(root) as store, ErasureLedger(ledger_path(root)) as ledger:
        assert {e.ref_digest for e in ledger.erasures(store.vault.store_id)} == set(store.vault.digests_of("r-old"))


def test_restoring_a_backup_taken_before_an_erasure_erases_again(tmp_path: Path) -> None:
    root, target = tmp_path / "home" / "store", tmp_path / "backup"
    bad = {**response("r-numbat", COMMENT), "event_type": "consultation.response_received", "cycle": "27-28"}  # a dead letter
    append(root, tmp_path, [response("r-numbat", COMMENT), response("r-wombat"), bad], "a.jsonl")
    backup(root, target)
    assert any(COMMENT in text for _, text in everything_readable(target)), "the backup holds the dead letter with the comment, and the key"
    append(root, tmp_path, [erasure("r-numbat"), erasure("r-late")], "b.jsonl", LATER)  # r-late: never in the backup

    report = restore(target, root, force=True)
    assert (report.erasures, report.keys_shredded, report.dead_letters_redacted) == (2, 1, 1)  # one digest each: an ASCII reference has one spelling
    assert comments(root) == [None, "nothing personal"]
    assert [letter["raw"] for letter in EventStore(root).dead_letters()] == [None]
    assert not [path for path, text in everything_readable(tmp_path / "home") if "NUMBAT" in text or "r-numbat" in text]

    append(root, tmp_path, [response("r-late", COMMENT)], "c.jsonl", LATER)  # a late event of someone erased after the backup
    assert comments(root)[-1] is None, "stored without personal data"


def test_restore_reads_an_off_site_ledger_when_the_home_lost_its_own(tmp_path: Path) -> None:
    root, target = tmp_path / "home" / "store", tmp_path / "backup"
    append(root, tmp_path, [response("r-numbat", COMMENT)], "a.jsonl")
    backup(root, target)
    append(root, tmp_path, [erasure("r-numbat")], "b.jsonl", LATER)
    off_site = tmp_path / "off-site-ledger.sqlite"
    with ErasureLedger(ledger_path(root)) as ledger:
        ledger.copy_to(off_site)
    ledger_path(root).unlink()
    with sqlite3.connect(off_site) as db:
        assert db.execute("SELECT count(*) FROM erasures").fetchone()[0] > 0

    restore(target, root, force=True, ledgers=(off_site,))
    assert comments(root) == [None]
    with EventStore(root) as store, ErasureLedger(ledger_path(root)) as ledger:
        assert ledger.erasures(store.vault.store_id), "the home's ledger is whole again"


CRASH_BETWEEN_THE_COMMITS = """
import os, sys
from datetime import datetime, timezone
from pathlib import Path
from events.storage.erasure_ledger import ErasureLedger
from events.storage.store import EventStore
from pipelines.ingest.files import ingest_files

record = ErasureLedger.record
def record_then_die(self, *args, **kwargs):
    record(self, *args, **kwargs)  # the ledger has committed; the store's transaction has not
    os._exit(137)
ErasureLedger.record = record_then_die
with EventStore(Path(sys.argv[1]), writer=True) as store:
    ingest_files(store, [sys.argv[2]], recorded_at=datetime(2026, 9, 5, tzinfo=timezone.utc), progress=None)
"""


def test_an_erasure_ledgered_but_not_stored_when_the_writer_died_is_applied_at_the_next_open(tmp_path: Path) -> None:
    root = tmp_path / "home" / "store"
    letter = b'{"note": "a bad line", "respondent_ref": "r-crash"}'  # a dead letter carrying the reference
    append(root, tmp_path, [response("r-crash", COMMENT), response("r-other"), letter], "a.jsonl")
    request = write_jsonl(tmp_path / "b.jsonl", [erasure("r-crash")])
    died = subprocess.run([sys.executable, "-c", CRASH_BETWEEN_THE_COMMITS, str(root), str(request)],
                          cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, capture_output=True, text=True)
    assert died.returncode == 137, died.stderr
    with EventStore(root) as store, ErasureLedger(ledger_path(root)) as ledger:
        assert {e.ref_digest for e in ledger.erasures(store.vault.store_id)} == set(store.vault.digests_of("r-crash"))
        assert [e["event_type"] for e in store.events()].count("respondent.erasure_requested") == 0, "the store never committed it"
    assert comments(root) == [COMMENT, "nothing personal"], "until a writer opens the store"

    EventStore(root, writer=True).close()  # the worker or an ingest starting again
    assert comments(root) == [None, "nothing personal"], "erased as the ledger says, the response still counted"
    assert [letter["raw"] for letter in EventStore(root).dead_letters()] == [None]
    assert not [path for path, text in everything_readable(tmp_path / "home") if "NUMBAT" in text or "r-crash" in text]

    append(root, tmp_path, [erasure("r-crash")], "c.jsonl", LATER)  # the sender delivers the request again
    with EventStore(root) as store, ErasureLedger(ledger_path(root)) as ledger:
        assert [e["event_type"] for e in store.events()].count("respondent.erasure_requested") == 1
        assert {e.erased_at for e in ledger.erasures(store.vault.store_id)} == {"2026-09-05T00:00:00.000000Z"}
    assert comments(root) == [None, "nothing personal"]


def test_an_erasure_missing_from_a_ledger_put_back_from_an_older_copy_is_ledgered_again(tmp_path: Path) -> None:
    root = tmp_path / "home" / "store"
    append(root, tmp_path, [response("r-first"), erasure("r-first")], "a.jsonl", LATER)
    EventStore(root, writer=True).close()
    older = tmp_path / "older-ledger.sqlite"
    with ErasureLedger(ledger_path(root)) as ledger:
        ledger.copy_to(older)
    append(root, tmp_path, [response("r-second"), erasure("r-second")], "b.jsonl", LATER)
    shutil.copyfile(older, ledger_path(root))  # the operator puts back the copy taken before the second erasure

    EventStore(root, writer=True).close()
    with EventStore(root) as store, ErasureLedger(ledger_path(root)) as ledger:
        ledgered = {e.ref_digest for e in ledger.erasures(store.vault.store_id)}
        assert ledgered == set(store.vault.digests_of("r-first")) | set(store.vault.digests_of("r-second"))
