"""`planning ingest`: JSON Lines files into the event store, through the contract.

Memory stays bounded whatever the file size: lines are read one at a time
(an oversized line is drained, never held whole), validated, and appended in
batches of ``BATCH_SIZE``. Each batch is one atomic append, so a crash loses
at most the batch in flight, and nothing already counted as accepted.

Validation is most of the CPU an ingest spends (parsing, the pydantic
contract, the body digest), so a file of at least ``PARALLEL_MIN_BYTES`` is
validated by a pool of processes (one per core) while this process appends:
lines go out in chunks of ``CHUNK_LINES``, at most ``2 × processes`` chunks
in flight (memory stays bounded), and verdicts come back in file order, so
batches, their atomicity, the dead letters and their reasons are exactly
those of the inline path. The pool is ``pipelines.ingest.pool``'s.

A store that cannot be written (a read-only file system, a full disk) is a
refusal, not a crash: :class:`StoreUnwritable` says why, and carries what
was stored before it happened (each batch is atomic, so those stay, and
ingesting the file again only adds what is missing). So is an event of the
other kind than the store holds, synthetic or real (:class:`MixedDataRefused`):
the ingest stops at its batch, and nothing of that batch is stored.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import stat
import sys
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, TextIO

from events.contract.lines import Line, read_lines
from events.storage.backends import Store
from events.storage.store import BatchOutcome, MixedData, Received
from events.contract.validation import verdict
from events.senders.registry import Sender
from pipelines.ingest.delivery import delivered_by
from pipelines.ingest.pool import cores, start_pool, verdicts

BATCH_SIZE = 5_000
PROGRESS_EVERY = 100_000  # lines
PARALLEL_MIN_BYTES = 8 * 1024 * 1024  # below this a pool costs more to start than it saves
CHUNK_LINES = 1_000


@dataclass
class IngestSummary:
    """Counts only, so memory does not grow with the number of lines."""

    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    examples: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)  # the first rejections
    high_water_mark: int = 0

    def add(self, batch: BatchOutcome, keep_examples: int = 10) -> None:
        self.accepted += len(batch.accepted)
        self.duplicates += len(batch.duplicates)
        self.rejected += len(batch.rejected)
        self.examples += batch.rejected[: max(keep_examples - len(self.examples), 0)]
        self.high_water_mark = max(self.high_water_mark, batch.high_water_mark)

    def merge(self, other: IngestSummary) -> None:
        self.accepted += other.accepted
        self.duplicates += other.duplicates
        self.rejected += other.rejected
        self.examples = (self.examples + other.examples)[:10]
        self.high_water_mark = max(self.high_water_mark, other.high_water_mark)


class IngestStopped(RuntimeError):
    """The ingest stopped before the end of its input; ``summary`` counts what was stored before."""

    def __init__(self, reason: str, summary: IngestSummary) -> None:
        super().__init__(reason)
        self.summary = summary


class StoreUnwritable(IngestStopped):
    """The event store refused a write."""


class MixedDataRefused(IngestStopped):
    """An event of the other kind than the store's (synthetic or real) was refused, with its batch."""


def unwritable_reason(error: OSError | sqlite3.Error) -> str | None:
    """Why the store could not be written, when ``error`` says so (None for any other error)."""
    if isinstance(error, OSError):
        if error.errno == errno.ENOSPC:
            return "the disk is full"
        if error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            return "it is read-only"
        return None
    message = str(error).lower()
    if "readonly" in message or "read-only" in message:
        return "it is read-only"
    if "disk is full" in message:
        return "the disk is full"
    if "unable to open" in message or "disk i/o error" in message:
        return f"it cannot be opened for writing ({error})"
    return None


def _append(store: Store, batch: list[Received], recorded_at: datetime | None, total: IngestSummary) -> None:
    try:
        total.add(store.append(batch, recorded_at))
    except MixedData as refused:
        raise MixedDataRefused(str(refused), total) from refused
    except (OSError, sqlite3.Error) as error:
        reason = unwritable_reason(error)
        if reason is None:
            raise
        raise StoreUnwritable(reason, total) from error


def receive(line: Line, origin: str, received_at: datetime | None = None) -> Received:
    return Received(line.raw, origin, verdict(line.raw, received_at, size=line.size))


def validators(stream: BinaryIO) -> int:
    """How many processes validate this stream: 0 (inline) for a small file, a pipe or one core."""
    available = cores()
    if available < 2:
        return 0
    try:
        info = os.fstat(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return 0
    if not stat.S_ISREG(info.st_mode) or info.st_size < PARALLEL_MIN_BYTES:
        return 0
    return min(available, 4)


def received(stream: BinaryIO, name: str, received_at: datetime | None, processes: int = 0) -> Iterator[tuple[int, Received]]:
    """(line number, Received) for every line, in file order; validated by ``processes`` processes, or inline."""
    if processes < 1:
        for line in read_lines(stream):
            yield line.number, receive(line, f"{name}:{line.number}", received_at)
        return
    pool = start_pool(processes)
    in_flight: deque[tuple[list[Line], Future]] = deque()
    try:
        chunk: list[Line] = []
        for line in read_lines(stream):
            chunk.append(line)
            if len(chunk) >= CHUNK_LINES:
                in_flight.append((chunk, pool.submit(verdicts, [l.raw for l in chunk], received_at, [l.size for l in chunk])))
                chunk = []
                while len(in_flight) > 2 * processes:
                    yield from _collect(*in_flight.popleft(), name)
        if chunk:
            in_flight.append((chunk, pool.submit(verdicts, [l.raw for l in chunk], received_at, [l.size for l in chunk])))
        while in_flight:
            yield from _collect(*in_flight.popleft(), name)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _collect(lines: list[Line], pending: Future, name: str) -> Iterator[tuple[int, Received]]:
    for line, result in zip(lines, pending.result()):
        yield line.number, Received(line.raw, f"{name}:{line.number}", result)


def ingest_stream(
    store: Store,
    stream: BinaryIO,
    name: str,
    *,
    recorded_at: datetime | None = None,
    progress: TextIO | None = sys.stderr,
    sender: Sender | None = None,
) -> IngestSummary:
    """Validate and append every line of one stream, as delivered by ``sender`` (its grant checked on
    each event; None: not recorded); returns what happened to them."""
    total = IngestSummary()
    batch: list[Received] = []
    started = time.monotonic()
    for number, item in received(stream, name, recorded_at, validators(stream)):
        batch.append(delivered_by(item, sender))
        if len(batch) >= BATCH_SIZE:
            _append(store, batch, recorded_at, total)
            batch = []
        if progress is not None and number % PROGRESS_EVERY == 0:
            rate = number / max(time.monotonic() - started, 1e-9)
            print(f"  {name}: {number:,} lines ({rate:,.0f} lines/s)", file=progress, flush=True)
    if batch:
        _append(store, batch, recorded_at, total)
    return total


def ingest_files(
    store: Store, paths: Iterable[str], *, recorded_at: datetime | None = None, progress: TextIO | None = sys.stderr,
    sender: Sender | None = None,
) -> IngestSummary:
    """`-` reads standard input. ``sender``: who delivers the files (``ingest_stream``)."""
    total = IngestSummary()
    for path in paths:
        try:
            if path == "-":
                total.merge(ingest_stream(store, sys.stdin.buffer, "stdin", recorded_at=recorded_at, progress=progress, sender=sender))
            else:
                with open(Path(path), "rb") as stream:
                    total.merge(ingest_stream(store, stream, path, recorded_at=recorded_at, progress=progress, sender=sender))
        except IngestStopped as refused:
            total.merge(refused.summary)
            raise type(refused)(str(refused), total) from refused.__cause__
    return total
