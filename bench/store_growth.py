"""Where an append's time grows with the store (issue 17, item 2). Not a figure: a probe, run by hand.

    python -m bench.store_growth fresh IN OUT        # IN with every UUID and respondent ref replaced, consistently
    python -m bench.store_growth append STORE FILE   # ingest FILE into STORE, timing the append's SQL by statement
    python -m bench.store_growth index current|runs N BATCHES   # the event-id index alone, on N ids

``fresh``: the 100k and 1M bench files share cycles and seeds, so the 100k file ingested onto the 1M store
is mostly duplicates and conflicts; its fresh copy has the same shape with keys the store has never seen.

``append``: ``ingest_stream`` as ``planning ingest`` runs it (validator pool included), with the store's
SQLite connection wrapped so each statement's time is summed by its text; ``PROBE_CKPT=1`` turns SQLite's
automatic checkpoint off and runs a PASSIVE checkpoint after each append, timed on its own, and prints the
WAL frames (4 KiB pages) each batch wrote.

``index``: what ``event_ids`` costs alone, as the store writes it (WAL, ``synchronous = FULL``, 256 MiB
cache), 5,000 ids a batch (50 re-sent), on an index seeded with N ids. ``current`` is the layout before runs
(UUID text keys, random B-tree inserts; the store keeps runs since 2026-12-01, events/storage/event_index.py);
``runs`` is the layout proposed in bench/README.md: each batch one sorted run appended at the right edge of one B-tree keyed (run, id), runs merged ``FAN`` at a time
(env, default 8), every run probed in SQL (no filter in front: a Python bloom filter cost more than the
probes it saved).
"""

from __future__ import annotations

import collections
import hashlib
import os
import random
import re
import shutil
import sqlite3
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
REF = re.compile(rb'"r-(\d+)"')


def fresh(source: Path, target: Path, seed: int = 7) -> None:
    rng, ids, refs = random.Random(seed), {}, {}

    def new_id(match: re.Match) -> bytes:
        if match.group(0) not in ids:
            ids[match.group(0)] = str(uuid.UUID(int=rng.getrandbits(128), version=4)).encode()
        return ids[match.group(0)]

    def new_ref(match: re.Match) -> bytes:
        if match.group(1) not in refs:
            refs[match.group(1)] = str(rng.randrange(10**9, 10**10)).encode()
        return b'"r-' + refs[match.group(1)] + b'"'

    with open(source, "rb") as lines, open(target, "wb") as out:
        for line in lines:
            out.write(REF.sub(new_ref, UUID.sub(new_id, line)))


# --- append: the store's SQL, timed by statement -------------------------------------------------

SECONDS: dict[str, float] = collections.defaultdict(float)
CALLS: collections.Counter = collections.Counter()


def _statement(sql: str) -> str:
    return re.sub(r"\(\?(,\?)*\)", "(?…)", " ".join(sql.split()))[:72]


class _Rows(list):
    def fetchone(self):
        return self[0] if self else None

    def fetchall(self):
        return list(self)


class _TimedConnection:
    """Sums each statement's time, a SELECT's fetch included (its rows are fetched at once)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def execute(self, sql: str, *args):
        started = time.perf_counter()
        result = self._db.execute(sql, *args)
        if sql.lstrip().upper().startswith("SELECT"):
            result = _Rows(result.fetchall())
        SECONDS[_statement(sql)] += time.perf_counter() - started
        CALLS[_statement(sql)] += 1
        return result

    def executemany(self, sql: str, rows):
        rows = list(rows)
        started = time.perf_counter()
        result = self._db.executemany(sql, rows)
        SECONDS[_statement(sql)] += time.perf_counter() - started
        CALLS[_statement(sql)] += len(rows)
        return result

    def __getattr__(self, name: str):
        return getattr(self._db, name)


def _timed(owner, name: str, label: str) -> None:
    original = getattr(owner, name)

    def timed(*args, **kwargs):
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            SECONDS[label] += time.perf_counter() - started
            CALLS[label] += 1

    setattr(owner, name, timed)


def append(root: Path, file: Path) -> None:
    import events.storage.store as store_module
    from events.storage.personal_data import Vault
    from events.storage.store import EventStore
    from pipelines.ingest.files import ingest_stream

    store = EventStore(root, writer=True)
    raw = store._db
    store._db = store.vault._db = _TimedConnection(raw)
    _timed(EventStore, "append", "~ append, whole")
    _timed(store_module, "to_record", "~ to_record (sealing, key lookups included)")
    _timed(EventStore, "_write_segment", "~ _write_segment (its SQL and fsyncs included)")
    _timed(Vault, "_key_for", "~ Vault._key_for")
    frames: list[int] = []
    if os.environ.get("PROBE_CKPT"):
        raw.execute("PRAGMA wal_autocheckpoint = 0")
        appending = EventStore.append

        def append_then_checkpoint(self, *args, **kwargs):
            outcome = appending(self, *args, **kwargs)
            started = time.perf_counter()
            frames.append(raw.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1])
            SECONDS["~ checkpoint, after each append"] += time.perf_counter() - started
            return outcome

        EventStore.append = append_then_checkpoint
    started = time.perf_counter()
    with open(file, "rb") as stream:
        summary = ingest_stream(store, stream, str(file), recorded_at=datetime(2027, 1, 1, tzinfo=timezone.utc), progress=None)
    wall = time.perf_counter() - started
    store.close()
    print(f"{summary.accepted:,} accepted, {summary.duplicates:,} duplicates, {summary.rejected:,} rejected in {wall:.2f} s"
          f" ({summary.accepted / wall:,.0f} events/s), load {os.getloadavg()[0]:.1f}")
    for label, seconds in sorted(SECONDS.items(), key=lambda item: -item[1]):
        if seconds >= 0.05:
            print(f"{seconds:7.2f} s {CALLS[label]:9,} {seconds / summary.accepted * 1e6:6.1f} µs/event  {label}")
    if frames:
        print(f"WAL frames (4 KiB pages) per batch: median {sorted(frames)[len(frames) // 2]:,}, max {max(frames):,}")


# --- index: the event-id index alone ------------------------------------------------------------

def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = FULL")
    db.execute("PRAGMA cache_size = -262144")
    return db


def _in(n: int) -> str:
    return ",".join("?" * n)


class Current:
    def __init__(self, path: Path) -> None:
        self.db = _connect(path)
        self.db.execute("CREATE TABLE IF NOT EXISTS event_ids (event_id TEXT PRIMARY KEY, body_sha256 TEXT NOT NULL,"
                        " position INTEGER NOT NULL, sender TEXT) WITHOUT ROWID")
        self.position = self.db.execute("SELECT coalesce(max(position), 0) FROM event_ids").fetchone()[0]

    def append(self, ids: list[uuid.UUID], spent: dict[str, float]) -> int:
        started, texts, known = time.perf_counter(), [str(u) for u in ids], {}
        for i in range(0, len(texts), 500):
            chunk = texts[i : i + 500]
            known.update(self.db.execute(f"SELECT event_id, body_sha256 FROM event_ids WHERE event_id IN ({_in(len(chunk))})", chunk))
        looked = time.perf_counter()
        self.db.execute("BEGIN IMMEDIATE")
        rows = []
        for u, text in zip(ids, texts):
            if text not in known:
                self.position += 1
                known[text] = hashlib.sha256(u.bytes).hexdigest()
                rows.append((text, known[text], self.position, "bench"))
        self.db.executemany("INSERT INTO event_ids VALUES (?, ?, ?, ?)", rows)
        inserted = time.perf_counter()
        self.db.execute("COMMIT")
        spent["lookup"] += looked - started
        spent["insert"] += inserted - looked
        spent["commit"] += time.perf_counter() - inserted
        return len(rows)


class Runs:
    def __init__(self, path: Path) -> None:
        self.fan = int(os.environ.get("FAN", "8"))
        self.db = _connect(path)
        self.db.executescript("""
            CREATE TABLE IF NOT EXISTS id_runs (run INTEGER NOT NULL, event_id BLOB NOT NULL, body_sha256 BLOB NOT NULL,
                position INTEGER NOT NULL, sender TEXT, PRIMARY KEY (run, event_id)) WITHOUT ROWID;
            CREATE TABLE IF NOT EXISTS runs (run INTEGER PRIMARY KEY, tier INTEGER NOT NULL);""")
        self.runs = dict(self.db.execute("SELECT run, tier FROM runs"))
        self.position = self.db.execute("SELECT coalesce(max(position), 0) FROM id_runs").fetchone()[0]

    def append(self, ids: list[uuid.UUID], spent: dict[str, float]) -> int:
        started, keys, known = time.perf_counter(), [u.bytes for u in ids], {}
        for run in sorted(self.runs, reverse=True):
            wanted = [k for k in dict.fromkeys(keys) if k not in known]
            for i in range(0, len(wanted), 500):
                chunk = wanted[i : i + 500]
                known.update(self.db.execute(
                    f"SELECT event_id, body_sha256 FROM id_runs WHERE run = ? AND event_id IN ({_in(len(chunk))})", [run, *chunk]))
        looked = time.perf_counter()
        self.db.execute("BEGIN IMMEDIATE")
        rows = {}
        for u, key in zip(ids, keys):
            if key not in known and key not in rows:
                self.position += 1
                rows[key] = (hashlib.sha256(u.bytes).digest(), self.position, "bench")
        run = max(self.runs, default=0) + 1
        self.db.executemany("INSERT INTO id_runs VALUES (?, ?, ?, ?, ?)", [(run, k, *v) for k, v in sorted(rows.items())])
        self.db.execute("INSERT INTO runs VALUES (?, 0)", (run,))
        self.runs[run] = 0
        inserted = time.perf_counter()
        self.db.execute("COMMIT")
        committed = time.perf_counter()
        self._merge()
        spent["lookup"] += looked - started
        spent["insert"] += inserted - looked
        spent["commit"] += committed - inserted
        spent["merge"] += time.perf_counter() - committed
        return len(rows)

    def _merge(self) -> None:
        """Tiered: ``fan`` runs of one tier become one run of the next, with a new (higher) run number,
        so even a merged run is written at the right edge of the B-tree."""
        while True:
            tiers: dict[int, list[int]] = {}
            for run, tier in self.runs.items():
                tiers.setdefault(tier, []).append(run)
            full = sorted((tier, runs) for tier, runs in tiers.items() if len(runs) >= self.fan)
            if not full:
                return
            tier, runs = full[0]
            runs, new = sorted(runs)[: self.fan], max(self.runs) + 1
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute(f"INSERT INTO id_runs SELECT ?, event_id, body_sha256, position, sender FROM id_runs"
                            f" WHERE run IN ({_in(len(runs))}) ORDER BY event_id", [new, *runs])
            self.db.execute(f"DELETE FROM id_runs WHERE run IN ({_in(len(runs))})", runs)
            self.db.execute(f"DELETE FROM runs WHERE run IN ({_in(len(runs))})", runs)
            self.db.execute("INSERT INTO runs VALUES (?, ?)", (new, tier + 1))
            self.db.execute("COMMIT")
            for run in runs:
                del self.runs[run]
            self.runs[new] = tier + 1


def index(layout: str, n: int, batches: int, work: Path = Path("/tmp/store_growth")) -> None:
    kind = {"current": Current, "runs": Runs}[layout]
    rng = random.Random(1)
    seeded, measured = work / f"{layout}-{n}.seed", work / f"{layout}-{n}"
    if not seeded.exists():
        seeded.mkdir(parents=True)
        index_ = kind(seeded / "index.sqlite")
        index_.db.execute("PRAGMA synchronous = OFF")
        for _ in range(n // 5000):
            index_.append([uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(5000)], collections.defaultdict(float))
        index_.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        index_.db.close()
    shutil.rmtree(measured, ignore_errors=True)
    shutil.copytree(seeded, measured)
    index_, spent, stored = kind(measured / "index.sqlite"), collections.defaultdict(float), 0
    rng.seed(time.time_ns())
    started = time.perf_counter()
    for _ in range(batches):
        ids = [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(4950)]
        stored += index_.append(ids + ids[:50], spent)
    wall = time.perf_counter() - started
    print(f"{layout:7} N = {n:>10,}: {wall / stored * 1e6:5.1f} µs/id (" + ", ".join(
        f"{what} {seconds / stored * 1e6:.1f}" for what, seconds in spent.items()) + f"), load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "fresh":
        fresh(Path(args[0]), Path(args[1]))
    elif command == "append":
        append(Path(args[0]), Path(args[1]))
    else:
        index(args[0], int(float(args[1])), int(args[2]))
