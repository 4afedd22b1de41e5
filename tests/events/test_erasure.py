"""Erasure: the respondent's personal data is unrecoverable from every file under $PLANNING_HOME,
while their responses still count anonymously, at any `on` and `as_of`."""

from __future__ import annotations

import json
import sqlite3
import unicodedata
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from events.home import PlanningHome
from events.storage.backends import STORE_ENV, open_store
from events.storage.store import EventStore
from pipelines.orchestration.runs import build
from pipelines.ingest.files import ingest_files
from projections.connection import connect
from projections.reading.snapshots import open_reader
from tests.support.events import make_event, write_jsonl
from tests.support.stores import pipeline_on, stored_bytes_of

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


def test_erasure_leaves_no_trace_and_keeps_the_counts(home: PlanningHome, tmp_path: Path, store_environ: dict[str, str]) -> None:
    """On either store backend (``store_environ``): on PostgreSQL the cluster's files, tables and
    write-ahead log, are searched too, after the checkpoints docs/decisions.md says remove the WAL
    segments that held the erased rows."""
    token = uuid.uuid4().hex  # the PostgreSQL cluster is shared by the session: needles only this test writes
    comment, ref = f"QUOKKA-{token} lives at 12 Acacia-{token} Avenue", f"{REF}-{token}"
    needles = (f"QUOKKA-{token}", f"Acacia-{token}", ref)
    mine = response(ref, comment=comment)
    mine_last_cycle = response(ref, cycle="2026-27", occurred_at="2025-07-01T10:00:00Z", comment=comment + " again")
    others = [response(f"r-other-{i}") for i in range(9)]  # with mine: 10 'mixed' respondents, a visible cell
    conflict = {**mine, "payload": {**mine["payload"], "channel": "ward_panel"}}  # a dead letter carrying it all
    before = datetime(2026, 9, 1, tzinfo=timezone.utc)
    url = store_environ.get(STORE_ENV)

    def stored() -> Any:
        return open_store(home.store, writer=True, environ=store_environ)

    with pipeline_on(store_environ):
        with stored() as store:
            ingest_files(store, [str(write_jsonl(tmp_path / "a.jsonl", [mine, mine_last_cycle, *others, conflict]))], recorded_at=before, progress=None)
            (subject,) = {r["subject"] for r in store.records() if r["event_type"] == "consultation.response_received"
                          and r["event_id"] in (mine["event_id"], mine_last_cycle["event_id"])}
            (key,) = store.live_keys([subject]).values()
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
        assert any(comment in text for _, text in everything_readable(home.root)), "the conflict's dead letter holds it before erasure"
        if url is not None:
            assert comment.encode() in stored_bytes_of(url, home.store), "the cluster's files hold it before erasure"

        erasure = make_event("respondent.erasure_requested", {"respondent_ref": ref}, occurred_at="2026-09-05T10:00:00Z")
        with stored() as store:
            ingest_files(store, [str(write_jsonl(tmp_path / "b.jsonl", [erasure]))], recorded_at=datetime(2026, 9, 5, 12, tzinfo=timezone.utc), progress=None)
        build(home, on="2026-09-10")

        assert coverage() == (10, 10), "the responses still count, as the same anonymous respondent"
        assert mixed_cell() == (None, True), "their demographics are gone: 9 left, suppressed"
        assert mixed_cell(as_of="2026-09-02") == (None, True), "an as_of before the erasure does not bring them back"

    leaks = [(path, needle) for path, text in everything_readable(home.root) for needle in needles if needle in text]
    assert leaks == []
    assert not [path for path in home.root.rglob("*") if path.is_file() and key in path.read_bytes()]
    if url is not None:
        cluster = stored_bytes_of(url, home.store, after_erasure=True)
        assert [n for n in (*needles, key) if (n.encode() if isinstance(n, str) else n) in cluster] == []
    assert (home.dagster / "dagster.yaml").exists() and any(home.dagster.rglob("*.db")), "Dagster's storage was searched too"


def test_a_resent_copy_after_erasure_is_a_harmless_duplicate(home: PlanningHome, tmp_path: Path) -> None:
    mine = response(REF, comment=COMMENT)
    erasure = make_event("respondent.erasure_requested", {"respondent_ref": REF})
    with EventStore(home.store, writer=True) as store:
        ingest_files(store, [str(write_jsonl(tmp_path / "a.jsonl", [mine, erasure]))], progress=None)
        outcome = ingest_files(store, [str(write_jsonl(tmp_path / "b.jsonl", [mine]))], progress=None)
    assert (outcome.accepted, outcome.duplicates, outcome.rejected) == (0, 1, 0)
    assert not [p for p, text in everything_readable(home.root) if "QUOKKA-7731" in text]


# --- a reference however it is spelled ---------------------------------------------------------------

ZOE = "r-Zoë-\U0001F600-4410"  # NFC, with an astral character
ADDRESS = "at 12 Acacia Road"  # in every comment below: must survive nowhere under $PLANNING_HOME


def spelled(ref_text: str, comment: str, **respondent: str) -> bytes:
    """A response whose reference is written exactly as ``ref_text`` (raw JSON string content) and
    whose comment is plain UTF-8: it is the comment's bytes that erasure must not leave behind."""
    event = response("PLACEHOLDER")
    event["payload"] = {"comment": comment} | event["payload"] | {"comment": comment}  # first: a cut keeps it
    event["payload"]["respondent"].update(respondent)
    text = json.dumps(event, ensure_ascii=False)
    return text.replace('"PLACEHOLDER"', f'"{ref_text}"').encode()


def escaped(text: str) -> str:
    r"""Every character but the ASCII letters and digits as a JSON \u escape (surrogate pairs for astral ones)."""
    units = text.encode("utf-16-be")
    return "".join(
        chr(code) if chr(code).isascii() and chr(code).isalnum() else f"\\u{code:04x}"
        for code in (int.from_bytes(units[i : i + 2], "big") for i in range(0, len(units), 2))
    )


def cli(*args: str) -> int:
    from pipelines.cli.main import main

    return main(list(args))


def files_holding(root: Path, needle: bytes) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes())


def test_erasure_finds_every_spelling_of_the_reference_in_every_copy(home: PlanningHome, tmp_path: Path) -> None:
    bad_age = {"age_band": f"WOMBAT-1 {ADDRESS}"}  # its value echoed in the reasons
    dead = [
        spelled(ZOE, f"WOMBAT-1 {ADDRESS}", **bad_age),  # UTF-8
        spelled(escaped(ZOE), f"WOMBAT-2 {ADDRESS}", age_band="old"),  # \u002d, \u00eb, \ud83d\ude00
        spelled(ZOE.replace("-", "\\u002d"), f"WOMBAT-3 {ADDRESS}", age_band="old"),  # ASCII escaped only
        spelled(unicodedata.normalize("NFD", ZOE), f"WOMBAT-4 {ADDRESS}", age_band="old"),  # e + combining diaeresis
        spelled(ZOE, f"WOMBAT-5 {ADDRESS}").partition(ZOE.encode())[0] + ZOE.encode(),  # cut before its closing quote
        b'{"stray": "quote"here", "respondent_ref": "' + ZOE.encode() + b'", "comment": "WOMBAT-6 ' + ADDRESS.encode() + b'"\xff',
    ]
    someone_else = spelled(ZOE + "0", "BILBY-9 keeps their dead letter", age_band="old")  # a longer reference
    assert all(b"Acacia" in raw for raw in dead)
    cli("ingest", str(write_jsonl(tmp_path / "a.jsonl", [*dead, someone_else])), "--recorded-at", "2026-09-01T09:00:00Z")
    build(home, on="2026-09-01")
    assert files_holding(home.root, ADDRESS.encode()), "before the erasure, the store and ops.duckdb hold the comments"

    erasure = make_event("respondent.erasure_requested", {"respondent_ref": ZOE}, occurred_at="2026-09-05T10:00:00Z")
    assert cli("ingest", str(write_jsonl(tmp_path / "b.jsonl", [erasure])), "--recorded-at", "2026-09-05T12:00:00Z") == 0
    late = spelled(escaped(ZOE), f"WOMBAT-7 {ADDRESS}", age_band=f"WOMBAT-7 {ADDRESS}")  # a new origin, after the erasure
    assert cli("ingest", str(write_jsonl(tmp_path / "c.jsonl", [late])), "--recorded-at", "2026-09-06T12:00:00Z") == 1

    with EventStore(home.store) as store:
        letters = store.dead_letters()
    assert [letter["raw"] is None for letter in letters] == [True] * 6 + [False, True]
    assert letters[0]["reasons"] == ["payload.respondent.age_band: '…' is not an age_band"], "the path and rule stay"
    assert not [r for letter in letters for r in letter["reasons"] if "Acacia" in r or "WOMBAT" in r]
    assert letters[6]["raw"] == someone_else

    ops = open_reader(home.projections, operations=True)
    copied = ops.execute("SELECT reason, raw FROM dead_letters ORDER BY received_at, raw NULLS FIRST").fetchall()
    assert [raw for _, raw in copied if raw is not None] == [someone_else.decode()], "the copy was rebuilt"
    assert not [row for row in copied if "Acacia" in str(row)]
    assert files_holding(home.root, ADDRESS.encode()) == [], "no file under $PLANNING_HOME, WAL and old builds included"
    assert len([p for p in (home.projections / "builds" / "_operations").iterdir() if p.is_dir()]) == 1

    with EventStore(home.store, writer=True) as store:  # the same files again store nothing more
        for name in ("a.jsonl", "c.jsonl"):
            again = ingest_files(store, [str(tmp_path / name)], progress=None)
            assert again.rejected and not again.accepted
        assert store.counts()["dead_letters"] == 8
