"""The PostgreSQL store's figures: append against a plain COPY, and a full rebuild against the embedded store's.

Both figures run on a throwaway local cluster this module starts (Debian's PostgreSQL 15,
``initdb`` in a temporary directory as the ``postgres`` user, a free loopback port), with
PostgreSQL's durable defaults (``fsync`` and ``synchronous_commit`` on) and ``wal_recycle = off``
as docs/decisions.md asks of a production cluster. The test suite starts its cluster its own way
(tests/support/postgres.py, with ``fsync = off``): the bench does not import the tests.

- ``pg_append``: the bench file's lines, validated beforehand (untimed), appended to an empty
  PostgreSQL store in batches of ``BATCH_SIZE`` as ``planning ingest`` appends them; against
  ``COPY`` of the very rows the store then holds into a table with the same columns and no
  index, key or constraint, in the same cluster, in one transaction.
- ``pg_rebuild``: ``planning build --full``, the operator's command, as a subprocess on a home whose
  ``PLANNING_STORE`` names a PostgreSQL store filled by ``planning ingest``, against the same command
  on the bench home's embedded store holding the same file; alternating, twice each, the faster kept.

The stream figure on this store (``pg_stream``) is in bench/postgres_stream.py.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench import proc
from bench.measure import Run, row

POSTGRES_BIN = Path(os.environ.get("PLANNING_TEST_POSTGRES_BIN", "/usr/lib/postgresql/15/bin"))
SERVER_USER = "postgres"  # initdb refuses to run as root
COPY_CHUNK = 1 << 20


class ClusterFailed(RuntimeError):
    """The local cluster could not be started; the message carries the server's log."""


def _as_server_user(*command: str | Path) -> list[str]:
    arguments = [str(part) for part in command]
    return ["runuser", "-u", SERVER_USER, "--", *arguments] if os.geteuid() == 0 else arguments


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def local_cluster() -> Iterator[str]:
    """A running throwaway cluster; yields the URL of its ``postgres`` database, removes it afterwards."""
    root = Path(tempfile.mkdtemp(prefix="planning-bench-postgres-"))
    data_dir, log = root / "data", root / "server.log"
    if os.geteuid() == 0:
        shutil.chown(root, SERVER_USER)
    port = _free_port()
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c wal_recycle=off -c max_wal_size=4GB"
    try:
        for command in (
            _as_server_user(POSTGRES_BIN / "initdb", "-D", data_dir, "-U", SERVER_USER, "-A", "trust", "-E", "UTF8", "--locale", "C"),
            _as_server_user(POSTGRES_BIN / "pg_ctl", "-D", data_dir, "-l", log, "-o", options, "-w", "-t", "60", "start"),
        ):
            finished = subprocess.run(command, capture_output=True, text=True, timeout=120)
            if finished.returncode != 0:
                tail = log.read_text(errors="replace")[-3000:] if log.is_file() else ""
                raise ClusterFailed(f"{' '.join(command)} exited {finished.returncode}\n{finished.stderr}{tail}")
        yield f"postgresql://{SERVER_USER}@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(_as_server_user(POSTGRES_BIN / "pg_ctl", "-D", data_dir, "-m", "fast", "-w", "stop"),
                       capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


def _new_database(url: str, name: str) -> str:
    import psycopg

    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    return url.rsplit("/", 1)[0] + f"/{name}"


def validated(events_file: Path) -> list[Any]:
    """Every line of the file as the store receives it (``Received``), validated as ``planning ingest`` does."""
    from pipelines.ingest.files import received, validators

    with open(events_file, "rb") as stream:
        processes = validators(stream)
        return [item for _, item in received(stream, events_file.name, None, processes)]


def backend_cpu(pid: int) -> float:
    """CPU seconds (user + system) a server backend of the local cluster has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def append_all(url: str, batch: list[Any], server_cpu: list[float] | None = None) -> tuple[float, float, int]:
    """(wall s, CPU s, events stored) of appending ``batch`` to a new store in ``planning ingest``'s batches;
    the server backend's CPU seconds appended to ``server_cpu`` when given."""
    from events.storage.postgres.migrations import init_store
    from events.storage.postgres.store import PostgresStore
    from pipelines.ingest.files import BATCH_SIZE

    init_store(url)
    stored = 0
    with PostgresStore(url, writer=True) as store:
        backend = store._db.info.backend_pid
        server, cpu, started = backend_cpu(backend), time.process_time(), time.perf_counter()
        for first in range(0, len(batch), BATCH_SIZE):
            stored += len(store.append(batch[first:first + BATCH_SIZE]).accepted)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        if server_cpu is not None:
            server_cpu.append(backend_cpu(backend) - server)
        return seconds, cpu, stored


def plain_copy(url: str, server_cpu: dict[str, float] | None = None) -> tuple[float, float, int]:
    """(wall s into an unindexed table, wall s into a copy of the store's table with its keys and indexes, rows):
    COPY of the rows the store holds, each in one transaction; the server backend's CPU seconds of each into
    ``server_cpu`` when given."""
    import psycopg

    from events.storage.postgres.migrations import SCHEMA

    seconds = {}
    with psycopg.connect(url, autocommit=True) as db:
        columns, rows_text = stored_rows(db)
        db.execute(f"CREATE TABLE plain_rows AS SELECT {columns} FROM {SCHEMA}.events WITH NO DATA")
        db.execute(f"CREATE TABLE indexed_rows (LIKE {SCHEMA}.events INCLUDING ALL)")
        for table in ("plain_rows", "indexed_rows"):
            seconds[table], server = copied_in(db, table, columns, rows_text)
            if server_cpu is not None:
                server_cpu[table] = server
        rows = db.execute("SELECT count(*) FROM plain_rows").fetchone()[0]
        db.execute("DROP TABLE plain_rows, indexed_rows")
    return seconds["plain_rows"], seconds["indexed_rows"], rows


def stored_rows(db: Any) -> tuple[str, bytearray]:
    """The store's ``events`` columns as its migrations left them (names and types, so a baseline follows the
    schema), and every row of it in position order as COPY's text."""
    from events.storage.postgres.migrations import SCHEMA

    columns = ", ".join(name for (name,) in db.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = 'events'"
        " ORDER BY ordinal_position", (SCHEMA,)))
    buffer = bytearray()
    with db.cursor().copy(f"COPY (SELECT {columns} FROM {SCHEMA}.events ORDER BY position) TO STDOUT") as out:
        for chunk in out:
            buffer += chunk
    return columns, buffer


def copied_in(db: Any, table: str, columns: str, rows_text: bytearray) -> tuple[float, float]:
    """(wall s, the server backend's CPU s) of COPY of ``rows_text`` into ``table``, in one transaction."""
    server, started = backend_cpu(db.info.backend_pid), time.perf_counter()
    with db.transaction(), db.cursor().copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        view = memoryview(rows_text)
        for first in range(0, len(view), COPY_CHUNK):
            copy.write(view[first:first + COPY_CHUNK])
    return time.perf_counter() - started, backend_cpu(db.info.backend_pid) - server


_CLUSTER: dict[str, str] = {}  # this run's cluster: its URL, and the database holding the bench file once appended


@contextmanager
def _bench_store(run: Run) -> Iterator[tuple[str, dict[str, str]]]:
    """This run's cluster, started by the first figure that needs it and stopped when the bench exits."""
    if "url" not in _CLUSTER:
        run.log("  starting a local PostgreSQL cluster ...")
        opened = local_cluster()
        _CLUSTER["url"] = opened.__enter__()
        atexit.register(opened.__exit__, None, None, None)
    yield _CLUSTER["url"], _CLUSTER


def pg_append(run: Run) -> dict[str, Any]:

    with _bench_store(run) as (url, cluster):
        run.log("  validating the file's lines (untimed) ...")
        batch = validated(run.ds.events_file)
        database = _new_database(url, "bench_store")
        append_server: list[float] = []
        seconds, cpu, stored = append_all(database, batch, append_server)
        cluster["store"] = database
        copy_server: dict[str, float] = {}
        copy_seconds, indexed_seconds, rows = plain_copy(database, copy_server)
    ours, theirs = stored / seconds, rows / copy_seconds
    cpu_ratio = copy_server["plain_rows"] / (cpu + append_server[0])
    ratio = ours / theirs
    return row(
        "PostgreSQL store: append",
        f"`PostgresStore.append`, {len(batch):,} lines in batches of 5,000 ({stored:,} events stored): {seconds:,.1f} s,"
        f" CPU {cpu:,.1f} s, {ours:,.0f} events/s",
        f"`COPY` of the same {rows:,} rows into an unindexed table: {copy_seconds:,.2f} s, {theirs:,.0f} rows/s",
        ratio, f"{ratio:.2f}× COPY", "≥ 0.5×", ratio >= 0.5,
        "same cluster, durable defaults (fsync on); the lines validated before the clock starts; the bench process"
        f" and the server share the machine's cores. Beside it, COPY of the same rows into a table with the store's"
        f" keys and indexes: {indexed_seconds:,.2f} s, {rows / indexed_seconds:,.0f} rows/s. CPU (load-independent):"
        f" the append {cpu:,.2f} s in the bench process + {append_server[0]:,.2f} s in its server backend, the plain"
        f" COPY {copy_server['plain_rows']:,.2f} s (indexed {copy_server['indexed_rows']:,.2f} s): {cpu_ratio:.2f}× by CPU",
        {"lines": len(batch), "events": stored, "seconds": seconds, "cpu_seconds": cpu, "copy_seconds": copy_seconds,
         "indexed_copy_seconds": indexed_seconds, "server_cpu_seconds": append_server[0],
         "copy_server_cpu_seconds": copy_server["plain_rows"], "indexed_copy_server_cpu_seconds": copy_server["indexed_rows"]},
    )


def filled_home(run: Run, url: str, name: str) -> tuple[Path, dict[str, str]]:
    """A new home whose ``PLANNING_STORE`` is a new database of the cluster, holding the bench file as
    ``planning store init`` and ``planning ingest`` put it there (untimed): (home, its environment)."""
    database = _new_database(url, name)
    home = run.dir / f"{name}-home"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    env = run.env(home, PLANNING_STORE=database)
    proc.run(proc.planning("store", "init"), env)
    done = proc.run(proc.planning("ingest", str(run.ds.events_file)), env)
    (home / "INGESTED").write_text(done.stdout)
    return home, env


def pg_rebuild(run: Run) -> dict[str, Any]:
    run.ensure_ingested()
    with _bench_store(run) as (url, _):
        run.log("  filling a PostgreSQL store by `planning ingest` (untimed) ...")
        home, env = filled_home(run, url, "bench_rebuild")
        command = proc.planning("build", "--full", "--on", run.on)
        runs: dict[str, list[proc.Finished]] = {"embedded": [], "postgresql": []}
        for _ in range(2):  # alternating, so both sides see the same load
            runs["embedded"].append(proc.run(command, run.env(run.home)))
            runs["postgresql"].append(proc.run(command, env))
        (run.home / "BUILT").write_text(run.on)
    shutil.rmtree(home, ignore_errors=True)
    ours = min(runs["postgresql"], key=lambda done: done.seconds)
    theirs = min(runs["embedded"], key=lambda done: done.seconds)
    ratio = ours.seconds / theirs.seconds
    cycles = len(run.ds.cycles)
    seconds = {side: [round(done.seconds, 1) for done in done_runs] for side, done_runs in runs.items()}
    return row(
        "PostgreSQL store: full rebuild",
        f"`planning build --full` with `PLANNING_STORE` on the PostgreSQL store, {cycles} cycles: {ours.seconds:,.1f} s,"
        f" CPU {ours.cpu_seconds:,.1f} s (runs {seconds['postgresql']})",
        f"`planning build --full` on the embedded bench home, same events: {theirs.seconds:,.1f} s,"
        f" CPU {theirs.cpu_seconds:,.1f} s (runs {seconds['embedded']})",
        ratio, f"{ratio:.2f}× the embedded store's", "≤ 1.5×", ratio <= 1.5,
        "the operator's command as a subprocess (interpreter start, one Dagster run per cycle, the first rebuilding"
        " the event cache), on two homes holding the same file by `planning ingest`; two alternating runs each, the"
        " faster kept; the server shares the machine's cores",
        {"seconds": seconds, "cpu_seconds": {side: [round(done.cpu_seconds, 1) for done in done_runs]
                                             for side, done_runs in runs.items()},
         "peak_mib": {"embedded": theirs.peak_mib, "postgresql": ours.peak_mib}, "cycles": cycles},
    )
