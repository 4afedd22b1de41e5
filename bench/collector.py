"""The collector's figures: throughput against `planning ingest` of the same file, and a 100-event POST's latency.

Both run `planning serve` as a subprocess on the embedded default (it writes
the store itself), with the rate limit lifted (``--rate 1000000 --burst
10000000``: the bench measures the collector, not the limit a sender gets),
and one client in this process posting over one keep-alive connection with
``http.client``, one request after the other, as one upstream system would.
"""

from __future__ import annotations

import http.client
import json
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench import proc
from bench.measure import ingest_counts, pct, row

BATCH = 500  # events per POST in the throughput figure
LATENCY_BATCH = 100  # events per POST in the latency figure
LATENCY_REQUESTS = 200
LATENCY_WARMUP = 5
HEALTH_REQUESTS = 200
SENDER = "bench-sender"


def _register(home: Path) -> str:
    """A sender with every grant in ``home``'s registry; its secret."""
    from events.contract.models import EVENT_TYPES
    from events.home import PlanningHome
    from events.senders.registry import SenderRegistry

    with SenderRegistry.of(PlanningHome(home)) as registry:
        existing = registry.get(SENDER)
        return registry.rotate(SENDER) if existing else registry.add(SENDER, EVENT_TYPES, None)


class Served:
    """`planning serve --port 0` on ``home`` as a child process, its CPU and peak RSS sampled."""

    def __init__(self, run: Any, home: Path) -> None:
        home.mkdir(parents=True, exist_ok=True)
        self.log = open(home / "serve.log", "wb")
        self.child = subprocess.Popen(
            proc.planning("serve", "--port", "0", "--rate", "1000000", "--burst", "10000000"),
            cwd=proc.REPO, env=run.env(home), stdout=subprocess.PIPE, stderr=self.log)
        self.sampler = proc.PeakSampler(self.child.pid, interval=0.1)
        self.sampler.start()
        address = self.child.stdout.readline().decode().strip()
        if not address.startswith("http"):
            self.stop()
            raise RuntimeError(f"planning serve did not start: {(home / 'serve.log').read_text()[-3000:]}")
        where = urlsplit(address)
        self.connection = http.client.HTTPConnection(where.hostname, where.port, timeout=300)

    def cpu_seconds(self) -> float:
        return proc.cpu_seconds_of(self.child.pid) or 0.0

    def post(self, body: bytes, secret: str) -> dict[str, Any]:
        self.connection.request("POST", "/v1/events", body=body, headers={
            "Authorization": f"Bearer {secret}", "Content-Type": "application/x-ndjson"})
        response = self.connection.getresponse()
        answer = json.loads(response.read())
        if response.status not in (200, 207, 422):
            raise RuntimeError(f"POST answered {response.status}: {answer}")
        return answer

    def health(self) -> None:
        self.connection.request("GET", "/v1/health")
        self.connection.getresponse().read()

    def stop(self) -> int:
        if self.child.poll() is None:
            self.child.terminate()
        code = self.child.wait(timeout=120)
        self.sampler.stop()
        self.log.close()
        return code


def _batches(path: Path, size: int) -> Iterator[bytes]:
    batch: list[bytes] = []
    with open(path, "rb") as lines:
        for line in lines:
            batch.append(line)
            if len(batch) == size:
                yield b"".join(batch)
                batch = []
    if batch:
        yield b"".join(batch)


def _stored(home: Path) -> int:
    from events.storage.store import EventStore

    with EventStore(home / "store") as store:
        return store.counts()["events"]


def collector_throughput(run: Any) -> dict[str, Any]:

    lines = run.ds.lines
    ingest_home, home = run.dir / "collector-ingest-home", run.dir / "collector-home"
    for place in (ingest_home, home):
        shutil.rmtree(place, ignore_errors=True)
        place.mkdir(parents=True)
    run.log("  planning ingest of the file (the baseline) ...")
    ingested = proc.run(proc.planning("ingest", str(run.ds.events_file)), run.env(ingest_home))
    counts = ingest_counts(ingested.stdout)
    run.log(f"  planning serve, posting the file in batches of {BATCH} ...")
    secret = _register(home)
    served = Served(run, home)
    totals = {"accepted": 0, "duplicates": 0, "rejected": 0, "requests": 0}
    try:
        cpu_before = served.cpu_seconds()
        started = time.perf_counter()
        for body in _batches(run.ds.events_file, BATCH):
            answer = served.post(body, secret)
            totals["requests"] += 1
            for key in ("accepted", "duplicates", "rejected"):
                totals[key] += answer[key]
        seconds = time.perf_counter() - started
        cpu = served.cpu_seconds() - cpu_before
    finally:
        served.stop()
    run.peaks["collector (planning serve)"] = {"peak_mib": served.sampler.peak_kib / 1024, "seconds": seconds}
    stored, baseline_stored = _stored(home), _stored(ingest_home)
    if stored != baseline_stored or totals["accepted"] != counts.get("accepted"):
        raise RuntimeError(f"the collector stored {stored:,} events ({totals}), the ingest {baseline_stored:,} ({counts})")
    ours, raw = lines / seconds, lines / ingested.seconds
    ratio = ours / raw
    return row(
        "collector throughput",
        f"`planning serve`, {totals['requests']:,} POSTs of {BATCH} lines: {ours:,.0f} lines/s ({lines:,} lines in "
        f"{seconds:,.1f} s, server CPU {cpu:,.1f} s; accepted {totals['accepted']:,}, duplicate "
        f"{totals['duplicates']:,}, rejected {totals['rejected']:,})",
        f"`planning ingest` of the same file: {raw:,.0f} lines/s ({ingested.seconds:,.1f} s, CPU "
        f"{ingested.cpu_seconds:,.1f} s; accepted {counts.get('accepted', 0):,})",
        ratio, f"{ratio:.2f}×", "≥ 0.5×", ratio >= 0.5,
        "one client, one keep-alive connection, each POST sent when the last was answered; the collector's time is "
        "from the first POST to the last answer (the server already running), the ingest's the process's wall time "
        "(interpreter start included); both stores checked to hold the same events afterwards",
        {"lines": lines, "seconds": seconds, "ingest_seconds": ingested.seconds, "lines_per_s": ours,
         "ingest_lines_per_s": raw, "server_cpu_seconds": cpu, **totals},
    )


def _fresh_batches(path: Path, size: int, count: int) -> list[bytes]:
    """``count`` bodies of ``size`` valid events of the file, each with a new ``event_id`` (so each is stored)."""
    from events.contract.validation import Accepted, verdict

    bodies, batch = [], []
    with open(path, "rb") as lines:
        for line in lines:
            if not isinstance(verdict(line.rstrip(b"\n")), Accepted):
                continue
            event = json.loads(line)
            if event["event_type"] == "event.retracted":
                continue  # its target keeps the old id: it would be refused, not stored
            event["event_id"] = str(uuid.uuid4())
            batch.append(json.dumps(event).encode())
            if len(batch) == size:
                bodies.append(b"\n".join(batch) + b"\n")
                batch = []
                if len(bodies) == count:
                    break
    return bodies


def collector_latency(run: Any) -> dict[str, Any]:

    home = run.dir / "collector-home"
    loaded = (home / "store").exists()
    if not loaded:
        home.mkdir(parents=True, exist_ok=True)
    before = _stored(home) if loaded else 0
    bodies = _fresh_batches(run.ds.events_file, LATENCY_BATCH, LATENCY_WARMUP + LATENCY_REQUESTS)
    secret = _register(home)
    served = Served(run, home)
    times, health = [], []
    try:
        for number, body in enumerate(bodies):
            started = time.perf_counter()
            answer = served.post(body, secret)
            if number >= LATENCY_WARMUP:
                times.append(time.perf_counter() - started)
            if answer["accepted"] != LATENCY_BATCH:
                raise RuntimeError(f"a latency POST was not stored whole: {answer}")
        for _ in range(HEALTH_REQUESTS):
            started = time.perf_counter()
            served.health()
            health.append(time.perf_counter() - started)
    finally:
        served.stop()
    p50, p95, floor = pct(times, 50) * 1000, pct(times, 95) * 1000, pct(health, 95) * 1000
    return row(
        "collector latency",
        f"POST of {LATENCY_BATCH} new events, answered once stored: p50 {p50:,.1f} ms, p95 {p95:,.1f} ms, max "
        f"{max(times) * 1000:,.1f} ms ({LATENCY_REQUESTS} requests)",
        f"GET /v1/health on the same connection: p95 {floor:,.2f} ms",
        p95 / 100, f"p95 {p95:,.0f} ms", "p95 ≤ 100 ms", p95 <= 100,
        f"the embedded default: each POST is one store append (segment file fsynced, index committed with "
        f"synchronous=FULL) before the answer; the store already held {before:,} events; one client, one keep-alive "
        f"connection, {LATENCY_WARMUP} requests before the measured ones",
        {"p50_ms": p50, "p95_ms": p95, "max_ms": max(times) * 1000, "health_p95_ms": floor, "stored_before": before},
    )
