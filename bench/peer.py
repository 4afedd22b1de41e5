"""The peer: the same events through the Python ``eventsourcing`` library (SQLite recorder),
with ``consultation_coverage`` built by a follower (a ``ProcessApplication``).

Why a process application and not ``eventsourcing.projection``: in
eventsourcing 9.5 the projection runner subscribes to the application's
recorder, and ``SQLiteApplicationRecorder.subscribe`` raises
NotImplementedError (subscriptions exist for the POPO and PostgreSQL
recorders only). The follower mechanism (``Follower.pull_and_process`` over
the leader's notification log) works with SQLite, so that is the peer.

Modelling, chosen to favour the peer:
* upstream: one ``Submission`` aggregate per event (created by the event, never
  loaded again), saved 500 per transaction;
* the follower: one ``Cell`` aggregate per cycle × borough × channel, counting
  responses and distinct respondents (by the store's ``subject`` surrogate),
  with the aggregate cache on and fast-forward off, so a cell is not replayed
  from SQLite per event;
* less work than ours: no retractions, no (on, as_of) cut, no targets, no
  'all' rows, no other table; the personal data are not sealed.

Input: the records our store accepted (position order), so both sides see the
same events. Timed separately: writing them into the peer (its ingest) and the
follower catching up from notification 0 (its rebuild of the table).
"""

from __future__ import annotations

import shutil
import time
import uuid
from pathlib import Path
from typing import Any

NAMESPACE = uuid.UUID("6f1c1f0e-4c55-4b0c-9a52-5b4f3f0d1e27")


def run_peer(records, workdir: Path, *, batch: int = 500) -> dict[str, Any]:
    from eventsourcing.application import AggregateNotFoundError, Application
    from eventsourcing.dispatch import singledispatchmethod
    from eventsourcing.domain import Aggregate, event
    from eventsourcing.system import ProcessApplication

    class Submission(Aggregate):
        @staticmethod
        def create_id(event_id: str) -> uuid.UUID:
            return uuid.UUID(event_id)

        @event("Received")
        def __init__(self, event_id: str, event_type: str, cycle: str, occurred_at: str,
                     payload: dict, subject: str | None) -> None:
            self.event_type = event_type

    class Cell(Aggregate):
        @staticmethod
        def create_id(cycle: str, borough: str, channel: str) -> uuid.UUID:
            return uuid.uuid5(NAMESPACE, f"{cycle}/{borough}/{channel}")

        @event("Opened")
        def __init__(self, cycle: str, borough: str, channel: str) -> None:
            self.responses = 0
            self.subjects: set[str] = set()

        @event("Counted")
        def count(self, subject: str | None) -> None:
            self.responses += 1
            if subject:
                self.subjects.add(subject)

    class Events(Application):
        name = "Events"

    class Coverage(ProcessApplication):
        name = "Coverage"

        @singledispatchmethod
        def policy(self, domain_event, processing_event):
            """Other events: nothing to do (the tracking record is still written)."""

        @policy.register(Submission.Received)
        def _(self, domain_event, processing_event):
            if domain_event.event_type != "consultation.response_received":
                return
            payload = domain_event.payload
            key = (domain_event.cycle, payload["borough"], payload["channel"])
            try:
                cell = self.repository.get(Cell.create_id(*key))
            except AggregateNotFoundError:
                cell = Cell(*key)
            cell.count(domain_event.subject)
            processing_event.collect_events(cell)

    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    base = {"PERSISTENCE_MODULE": "eventsourcing.sqlite"}
    upstream = Events(env={**base, "SQLITE_DBNAME": str(workdir / "events.sqlite")})
    written = 0
    started = time.perf_counter()
    pending = []
    for record in records:
        pending.append(Submission(record["event_id"], record["event_type"], record["cycle"], record["occurred_at"],
                                  record["payload"], record.get("subject")))
        if len(pending) >= batch:
            upstream.save(*pending)
            written += len(pending)
            pending = []
    if pending:
        upstream.save(*pending)
        written += len(pending)
    write_seconds = time.perf_counter() - started

    coverage = Coverage(env={**base, "SQLITE_DBNAME": str(workdir / "coverage.sqlite"),
                             "AGGREGATE_CACHE_MAXSIZE": "100000", "AGGREGATE_CACHE_FASTFORWARD": "n"})
    coverage.follow(upstream.name, upstream.notification_log)
    started = time.perf_counter()
    coverage.pull_and_process(upstream.name)
    project_seconds = time.perf_counter() - started
    processed = coverage.recorder.max_tracking_id(upstream.name) or 0
    cells = coverage.recorder.max_notification_id() or 0  # events written by the follower
    size = sum(p.stat().st_size for p in workdir.iterdir())
    upstream.close() if hasattr(upstream, "close") else None
    coverage.close() if hasattr(coverage, "close") else None
    shutil.rmtree(workdir, ignore_errors=True)
    return {"events": written, "processed": processed, "write_s": write_seconds, "project_s": project_seconds,
            "cell_events": cells, "sqlite_bytes": size}
