"""The PostgreSQL store's stream figure (``pg_stream``): 1, 2 and 3 `planning worker` processes in one
consumer group, appending to one PostgreSQL store, and how the rate scales with them.

The issue asks to *show* how the stream scales, so the figure keeps what explains the rate beside it:
the CPU each worker (with its validator process) and the PostgreSQL server spent while the workers
drained, the share of the machine that was busy, and how many events each worker stored. On a machine
with few cores a second worker only helps while a core is idle.

- The input is the stream figure's (``stream_sample``: the file, or its first STREAM_MAX_LINES lines),
  emitted once by `planning emit` into the bench sender's topics (3 partitions each) before any worker runs.
- For k = 1, 2, 3: a new database of the bench's cluster made ready by `planning store init`, a new home
  whose ``PLANNING_STORE`` names it (so a new consumer group, reading from offset 0), and k workers
  started together in that home, as docker-compose's ``--scale worker=k`` starts them. Stopped once the
  store holds every event.
- The rate is read from the store: events stored after the first batch's ``recorded_at``, divided by the
  time from that ``recorded_at`` to the last one (the stream figure's "sustained", from the store).
- The baseline is the stream figure's: kafka-python consuming the same messages from offset 0, doing nothing.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bench import proc
from bench.measure import Run, row
from bench.postgres import _bench_store, _new_database

WORKER_COUNTS = (1, 2, 3)
READY = "planning worker: consuming"
STORED = re.compile(r"messages: stored ([\d,]+),")


def machine_busy() -> tuple[int, int]:
    """(busy, total) jiffies of all cores so far, from /proc/stat."""
    with open("/proc/stat") as stat:
        numbers = [int(n) for n in stat.readline().split()[1:]]
    idle = numbers[3] + numbers[4]  # idle + iowait
    return sum(numbers) - idle, sum(numbers)


class CpuWatch(threading.Thread):
    """CPU seconds spent by process trees while it runs: each root with its descendants, sampled every
    ``interval`` (a process that ends between samples keeps its last sample). Processes already alive
    when it starts count only what they spend afterwards."""

    def __init__(self, roots: dict[str, int], interval: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.roots, self.interval = roots, interval
        self.first: dict[int, float] = {}
        self.last: dict[str, dict[int, float]] = {name: {} for name in roots}
        self._stop_event = threading.Event()
        for pid in self._tree_pids():
            self.first[pid] = proc.cpu_seconds_of(pid) or 0.0

    def _tree_pids(self) -> list[int]:
        return [pid for root in self.roots.values() for pid in (root, *proc.descendants(root))]

    def sample(self) -> None:
        for name, root in self.roots.items():
            for pid in (root, *proc.descendants(root)):
                seconds = proc.cpu_seconds_of(pid)
                if seconds is not None:
                    self.last[name][pid] = seconds

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            self.sample()

    def stop(self) -> dict[str, float]:
        """One last sample; CPU seconds per root since the watch began."""
        self.sample()
        self._stop_event.set()
        self.join(timeout=5)
        return {name: sum(seconds - self.first.get(pid, 0.0) for pid, seconds in pids.items())
                for name, pids in self.last.items()}


@dataclass
class Drain:
    """One k's result."""
    workers: int
    events: int
    per_s: float
    store_seconds: float
    polled_per_s: float
    cpu: dict[str, float] = field(default_factory=dict)
    busy_share: float = 0.0
    stored_by_worker: list[int] = field(default_factory=list)


def _postmaster(url: str) -> int:
    """The server's main process: the parent of this connection's backend."""
    import psycopg

    with psycopg.connect(url) as db:
        backend = db.execute("SELECT pg_backend_pid()").fetchone()[0]
    with open(f"/proc/{backend}/stat") as stat:
        return int(stat.read().rsplit(")", 1)[1].split()[1])


def _stored(db: Any) -> int:
    """The store's mark; positions are gap-free, so it is the count of stored events."""
    return db.execute("SELECT coalesce(max(position), 0) FROM planning_store.events").fetchone()[0]


def _store_rate(url: str) -> tuple[float, float, int]:
    """(events/s, seconds, events) from the store: the events recorded after the first batch's
    ``recorded_at``, over the time from it to the last ``recorded_at``."""
    import psycopg

    with psycopg.connect(url) as db:
        first, last = db.execute("SELECT min(recorded_at), max(recorded_at) FROM planning_store.events").fetchone()
        after = db.execute("SELECT count(*) FROM planning_store.events WHERE recorded_at > %s", (first,)).fetchone()[0]
        total = db.execute("SELECT count(*) FROM planning_store.events").fetchone()[0]
    seconds = (datetime.fromisoformat(last) - datetime.fromisoformat(first)).total_seconds()
    return after / max(seconds, 1e-9), seconds, total


def _wait_ready(logs: list[Path], children: list[subprocess.Popen], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not all(log.exists() and READY in log.read_text(errors="replace") for log in logs):
        for log, child in zip(logs, children):
            if child.poll() is not None:
                raise RuntimeError(f"a worker exited {child.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the workers did not all log {READY!r} within {timeout:.0f} s")
        time.sleep(0.2)


def _stop(children: list[subprocess.Popen]) -> None:
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for child in children:
        try:
            child.wait(timeout=60)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def drain_with(run: Run, url: str, prefix: str, workers: int, expected: int) -> Drain:
    """``workers`` `planning worker` processes, one new home and store, draining the topics from offset 0."""
    import psycopg

    from bench.figures import enlist

    database = _new_database(url, f"bench_stream_{workers}")
    home = run.dir / f"pg-stream-{workers}"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    env = run.env(home, PLANNING_STORE=database, PLANNING_TOPIC_PREFIX=prefix)
    proc.run(proc.planning("store", "init"), env)
    enlist(run, home, prefix)
    watch = CpuWatch({"postgresql": _postmaster(database)})
    logs = [home / f"worker{n + 1}.log" for n in range(workers)]
    children: list[subprocess.Popen] = []
    poll = None
    busy_before = machine_busy()
    try:
        for log in logs:
            with open(log, "wb") as out:
                children.append(subprocess.Popen(proc.planning("worker", "--bootstrap", run.broker().bootstrap),
                                                 cwd=proc.REPO, env=env, stdout=out, stderr=subprocess.STDOUT))
        watch.roots.update({f"worker{n + 1}": child.pid for n, child in enumerate(children)})
        watch.last.update({name: {} for name in watch.roots if name not in watch.last})
        watch.start()
        _wait_ready(logs, children, 120)
        poll = psycopg.connect(database, autocommit=True)  # one connection, not one per look
        first, mark = None, 0
        deadline = time.perf_counter() + max(600, expected / 300)
        while mark < expected:
            time.sleep(0.25)
            mark = _stored(poll)
            now = time.perf_counter()
            if first is None and mark > 0:
                first = (now, mark)
            for log, child in zip(logs, children):
                if child.poll() is not None:
                    raise RuntimeError(f"a worker died:\n{log.read_text(errors='replace')[-3000:]}")
            if now > deadline:
                raise RuntimeError(f"{workers} worker(s) stored {mark:,} of {expected:,} events before the deadline")
        finished = time.perf_counter()
        cpu = watch.stop()
        busy_after = machine_busy()
    finally:
        if poll is not None:
            poll.close()
        _stop(children)
        if watch.is_alive():
            watch.stop()
    per_s, seconds, events = _store_rate(database)
    stored_by_worker = []
    for log in logs:
        counts = STORED.findall(log.read_text(errors="replace"))
        stored_by_worker.append(int(counts[-1].replace(",", "")) if counts else 0)
    shutil.rmtree(home, ignore_errors=True)
    busy = (busy_after[0] - busy_before[0]) / max(busy_after[1] - busy_before[1], 1)
    assert first is not None
    polled = (expected - first[1]) / max(finished - first[0], 1e-9)
    return Drain(workers, events, per_s, seconds, polled, cpu, busy, stored_by_worker)


def emit_once(run: Run, prefix: str, events_file: Path) -> float:
    """`planning emit` of the file into the bench sender's topics under ``prefix``; its seconds."""
    from bench.figures import enlist

    home = run.dir / "pg-stream-emit"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    sender = enlist(run, home, prefix)
    done = proc.run(proc.planning("emit", str(events_file), "--bootstrap", run.broker().bootstrap),
                    run.env(home, PLANNING_TOPIC_PREFIX=prefix, PLANNING_SENDER=sender.sender,
                            PLANNING_SENDER_SECRET=sender.secret))
    shutil.rmtree(home, ignore_errors=True)
    return done.seconds


def _described(drain: Drain) -> str:
    workers = ", ".join(f"{name} {seconds:,.1f}" for name, seconds in drain.cpu.items() if name != "postgresql")
    shares = "/".join(f"{n:,}" for n in drain.stored_by_worker)
    return (f"{drain.workers} worker(s): {drain.per_s:,.0f} events/s ({drain.store_seconds:,.1f} s; stored by each"
            f" {shares}; CPU s {workers}, PostgreSQL {drain.cpu.get('postgresql', 0):,.1f}; machine"
            f" {drain.busy_share:.0%} busy)")


def pg_stream(run: Run) -> dict[str, Any]:
    from bench.figures import STREAM_MAX_LINES, raw_consume, stream_sample

    broker = run.broker()
    prefix = f"benchpg{uuid.uuid4().hex[:8]}"
    events_file, expected, messages = stream_sample(run)
    run.log(f"  emitting {messages:,} valid lines once into {prefix} ...")
    emit_seconds = emit_once(run, prefix, events_file)
    drains: list[Drain] = []
    with _bench_store(run) as (url, _):
        for workers in WORKER_COUNTS:
            run.log(f"  {workers} worker(s) draining into a new PostgreSQL store ...")
            drains.append(drain_with(run, url, prefix, workers, expected))
    raw_s, raw_seen = raw_consume(broker.bootstrap, prefix, messages)
    raw = raw_seen / raw_s
    one = drains[0].per_s
    scaling = {d.workers: d.per_s / one for d in drains}
    last = drains[-1]
    return row(
        "PostgreSQL store: stream, 1–3 workers",
        "; ".join(_described(d) for d in drains) + f"; each of the {expected:,} events stored",
        f"kafka-python consuming the same {raw_seen:,} messages, doing nothing: {raw:,.0f} msg/s ({raw_s:,.2f} s)",
        last.per_s / one,
        " / ".join(f"{k} worker{'s' if k > 1 else ''} {s:.2f}×" for k, s in scaling.items()) + " of one"
        + f"; one worker {one / raw:.3f}× raw",
        "scaling shown", None,
        "workers in one consumer group (3 partitions per topic), started together on a new home and a new"
        " PostgreSQL store per count, draining from offset 0 what `planning emit` sent once"
        f" ({emit_seconds:,.1f} s); rate = events recorded after the first batch's `recorded_at` over the time to"
        " the last one, read from the store (the group's joins and rebalances fall inside it); CPU of each worker"
        " with its validator process and of the server's processes, over the drain; all share the machine's cores;"
        f" input: the first {min(run.ds.lines, STREAM_MAX_LINES):,} lines of the file",
        {"events": expected, "messages": messages, "emit_seconds": emit_seconds, "raw_seconds": raw_s,
         "raw_per_s": raw, "scaling": scaling,
         "drains": [{"workers": d.workers, "per_s": d.per_s, "store_seconds": d.store_seconds, "events": d.events,
                     "polled_per_s": d.polled_per_s, "cpu_seconds": d.cpu, "machine_busy": d.busy_share,
                     "stored_by_worker": d.stored_by_worker} for d in drains]},
    )
