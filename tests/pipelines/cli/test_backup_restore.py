"""`planning backup` and `planning restore` as the data team meets them: a backup taken while an
ingest writes, the store's folder deleted, restored and rebuilt; an erasure made after the backup
that the restore must not undo; a healthy store that restore will not overwrite by mistake."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from events.home import PlanningHome
from events.storage.store import EventStore
from pipelines.cli.main import main
from pipelines.orchestration.runs import build
from projections.reading.snapshots import open_reader
from projections.tables import PANEL_TABLES
from tests.events.test_erasure import everything_readable
from tests.support.events import make_event, write_jsonl
from tests.support.paths import REPO_ROOT

ON = "2026-09-10"
BOROUGHS = ("E09000012", "E09000020", "E09000008")
COMMENT = "QUOLL-5512 lives at 7 Banksia Close"


def planning(*args: str) -> int:
    return main(list(args))


def responses(n: int, start: int = 0) -> list[dict]:
    return [make_event("consultation.response_received",
                       {"borough": BOROUGHS[i % 3], "respondent": {"respondent_ref": f"r-{start + i}", "age_band": "16-24",
                                                                  "ethnic_group": "white"}, "comment": f"comment {start + i}"})
            for i in range(n)]


def figures(home: PlanningHome) -> dict[str, list[tuple]]:
    """Every Panel table of the published snapshot, row by row."""
    db = open_reader(home.projections)
    return {name: db.execute(f"SELECT * FROM {name} ORDER BY {table.order_by}").fetchall() for name, table in PANEL_TABLES.items()}


def store_position(home: PlanningHome) -> int:
    with EventStore(home.store) as store:
        return store.high_water_mark()


def test_backup_while_an_ingest_writes_then_delete_the_store_restore_and_rebuild(
    home: PlanningHome, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """A `planning ingest` from a pipe holds the writer lock and has committed its first batch of 5,000
    while it waits for more lines: the backup is taken then (a Kafka worker is the same kind of writer)."""
    lines = write_jsonl(tmp_path / "all.jsonl", [make_event("cycle.opened", occurred_at="2026-02-15T09:00:00Z"),
                                                 *responses(9_999)]).read_bytes().splitlines(keepends=True)
    ingest = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "ingest", "-", "--recorded-at", "2026-09-01T00:00:00Z"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    try:
        ingest.stdin.writelines(lines[:6_000])
        ingest.stdin.flush()
        while store_position(home) < 5_000:  # the first batch is committed; the next 1,000 lines wait in the ingest
            assert ingest.poll() is None, ingest.communicate()
            os.sched_yield()
        target = tmp_path / "backup"
        assert planning("senders", "add", "cdrp-harrow", "--event-types", "cdrp.audit_submitted", "--boroughs", "all") == 0
        assert planning("backup", str(target)) == 0
        first = capsys.readouterr().out
        assert ingest.poll() is None, "the ingest was still writing, its lock held, while the backup ran"
        assert "consistent at position 5,000 (5,000 events" in first
        assert "copied 1 new segment(s)" in first and "000000000001-000000005000.jsonl" in first
        ingest.stdin.writelines(lines[6_000:])
        ingest.stdin.close()
        assert ingest.wait() == 0, ingest.stderr.read()
    finally:
        if ingest.poll() is None:
            ingest.kill()
            ingest.wait()

    build(home, on=ON)
    original = figures(home)
    db = open_reader(home.projections)
    assert db.execute("SELECT sum(responses) FROM consultation_coverage WHERE channel = 'all'").fetchone() == (9_999,)
    assert planning("backup", str(target)) == 0
    second = capsys.readouterr().out
    assert "consistent at position 10,000 (10,000 events" in second
    assert "copied 1 new segment(s)" in second and "000000005001-000000010000.jsonl" in second
    assert "1 already in the backup" in second

    with EventStore(home.store) as store:
        events_before = [(r["position"], r["event_id"]) for r in store.records()]
    shutil.rmtree(home.store)
    (home.root / "worker").mkdir()
    (home.root / "worker" / "group").write_text("planning-worker-0badcafe\n")  # the worker's group, offsets past the backup
    assert planning("restore", str(target), "--on", ON) == 0
    out = capsys.readouterr().out
    assert "consumer group planning-worker-0badcafe is retired" in out
    assert not (home.root / "worker" / "group").exists(), "the next worker start takes a new group, from the earliest offsets"
    assert f"restored {target} into {home.store}: position 10,000" in out and "the store there was missing" in out
    assert "rebuilt and published 1 cycle(s): 2027-28" in out
    with EventStore(home.store) as store:
        assert [(r["position"], r["event_id"]) for r in store.records()] == events_before
    assert figures(home) == original, "the Panel's figures are those of the original store"
    capsys.readouterr()
    assert planning("senders", "list", "--format", "json") == 0
    assert "cdrp-harrow" in capsys.readouterr().out, "the sender registry is restored with the store"


def test_a_restore_does_not_bring_back_a_respondent_erased_after_the_backup(
    home: PlanningHome, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    mine = make_event("consultation.response_received",
                      {"borough": BOROUGHS[0], "respondent": {"respondent_ref": "r-quoll", "age_band": "16-24", "ethnic_group": "white"},
                       "comment": COMMENT})
    conflict = {**mine, "payload": {**mine["payload"], "channel": "ward_panel"}}  # a dead letter carrying it all
    assert planning("ingest", str(write_jsonl(tmp_path / "a.jsonl", [mine, *responses(9), conflict])),
                    "--recorded-at", "2026-09-01T00:00:00Z") == 1
    assert planning("backup", str(tmp_path / "backup")) == 0
    erasure = make_event("respondent.erasure_requested", {"respondent_ref": "r-quoll"}, occurred_at="2026-09-05T10:00:00Z")
    assert planning("ingest", str(write_jsonl(tmp_path / "b.jsonl", [erasure])), "--recorded-at", "2026-09-05T12:00:00Z") == 0
    build(home, on=ON)
    counts = figures(home)["consultation_coverage"]
    capsys.readouterr()

    assert planning("restore", str(tmp_path / "backup"), "--on", ON) == 4, "the store is healthy"
    assert "is healthy: restoring would replace it" in capsys.readouterr().err
    assert planning("restore", str(tmp_path / "backup"), "--force", "--on", ON) == 0
    out = capsys.readouterr().out
    assert "erasures re-applied: 1 (keys shredded 1, dead letters redacted 1)" in out
    moved = next(home.root.glob("store.replaced-*"))
    assert f"the store that was there is kept at {moved}" in out

    assert figures(home)["consultation_coverage"] == counts, "coverage counts stay as they were"
    leaks = [(path, needle) for path, text in everything_readable(home.root) for needle in ("QUOLL-5512", "Banksia", "r-quoll")
             if needle in text]
    assert leaks == [], "found nowhere under $PLANNING_HOME: the restored store, the store moved aside, the builds"
    assert any("Banksia" in text for _, text in everything_readable(tmp_path / "backup")), \
        "the older backup itself still holds it (docs/decisions.md: what to do with older backups)"


def test_restore_refuses_what_is_not_a_whole_backup(home: PlanningHome, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "empty").mkdir()
    assert planning("restore", str(tmp_path / "empty")) == 2
    assert "holds no manifest.json" in capsys.readouterr().err
    assert planning("backup", str(tmp_path / "backup")) == 3
    assert "nothing to back up" in capsys.readouterr().err


def test_the_web_sites_accounts_and_audit_log_are_backed_up_and_restored(home: PlanningHome, tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture) -> None:
    """The audit log is a record the Authority keeps; accounts are convenient to get back. Restored where
    the home lost them; where the home has them, the audit log gets the backup's rows it lacks and the
    accounts are kept (newer than the backup), the backup's copy put beside them."""
    from pipelines.cli.backup import SITE_FILES
    from pipelines.web.accounts import ACCOUNTS_FILE, AccountBook, accounts_path
    from pipelines.web.audit import AUDIT_FILE, AuditLog

    assert [name for name, _ in SITE_FILES] == [f"web/{ACCOUNTS_FILE}", f"web/{AUDIT_FILE}"]
    at = datetime(2026, 9, 1, 9, 0, tzinfo=timezone.utc)
    write_jsonl(tmp_path / "a.jsonl", responses(3))
    assert planning("ingest", str(tmp_path / "a.jsonl"), "--recorded-at", "2026-09-01T00:00:00Z") == 0
    AccountBook.of(home, clock=lambda: at).add("asha", "data_team")
    audit = AuditLog.of(home, clock=lambda: at)
    for _ in range(2):  # the same view twice in one second: two rows
        audit.record("asha", "viewed", "/coverage")
    assert planning("backup", str(tmp_path / "backup")) == 0
    assert "web/accounts.sqlite, web/audit.sqlite" in capsys.readouterr().out
    assert (tmp_path / "backup" / "web").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "backup" / "web" / AUDIT_FILE).stat().st_mode & 0o777 == 0o600

    shutil.rmtree(home.root / "web")
    shutil.rmtree(home.store)
    assert planning("restore", str(tmp_path / "backup"), "--on", ON) == 0
    assert "web/audit.sqlite restored" in capsys.readouterr().out
    assert AccountBook.of(home).get("asha") is not None
    assert [(e.account, e.path) for e in AuditLog.of(home).latest()] == [("asha", "/coverage")] * 2
    assert accounts_path(home).stat().st_mode & 0o777 == 0o600

    shutil.rmtree(home.root / "web")  # lost again; the site starts afresh and records before the restore
    AuditLog.of(home, clock=lambda: at).record("asha", "viewed", "/coverage")
    AccountBook.of(home, clock=lambda: at).add("ben", "panel")
    shutil.rmtree(home.store)
    assert planning("restore", str(tmp_path / "backup"), "--on", ON) == 0
    out = capsys.readouterr().out
    assert "web/audit.sqlite kept, 1 row(s) of the backup's added to it" in out
    assert "web/accounts.sqlite kept as it is" in out
    assert len(AuditLog.of(home).latest()) == 2, "the backup's two views, one of them the home had already"
    assert AccountBook.of(home).get("asha") is None and AccountBook.of(home).get("ben") is not None
    beside = list((home.root / "web").glob(f"{ACCOUNTS_FILE}.from-backup-*"))
    assert len(beside) == 1 and AccountBook(beside[0]).get("asha") is not None


def test_planning_backup_starts_without_loading_the_contract_duckdb_or_the_web_framework(home: PlanningHome,
                                                                                          tmp_path: Path) -> None:
    """Backup is timed against `cp -r`: loading every command's modules cost most of a second before it began."""
    write_jsonl(tmp_path / "a.jsonl", responses(3))
    assert planning("ingest", str(tmp_path / "a.jsonl"), "--recorded-at", "2026-09-01T00:00:00Z") == 0
    probe = ("import sys\nfrom pipelines.cli.main import main\ncode = main(sys.argv[1:])\n"
             "print(code, *sorted(m for m in ('events.contract.models', 'duckdb', 'starlette', 'pydantic') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe, "backup", str(tmp_path / "backup")], capture_output=True, text=True,
                          env={**os.environ, "PLANNING_HOME": str(home.root), "PYTHONPATH": str(REPO_ROOT)}, cwd=REPO_ROOT)
    assert done.stdout.splitlines()[-1] == "0", done.stderr
    assert "consistent at position 3" in done.stdout
