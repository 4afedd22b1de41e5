"""`planning ingest`: JSON Lines files into the event store, through the contract.

Memory stays bounded whatever the file size: lines are read one at a time
(an oversized line is drained, never held whole), validated, and appended in
batches of ``BATCH_SIZE``. Each batch is one atomic append, so a crash loses
at most the batch in flight, and nothing already counted as accepted.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, TextIO

from events.store import BatchOutcome, EventStore, Received
from events.validation import MAX_EVENT_BYTES, Rejected, validate_line

BATCH_SIZE = 5_000
PROGRESS_EVERY = 100_000  # lines


@dataclass(frozen=True)
class Line:
    number: int
    raw: bytes  # at most MAX_EVENT_BYTES + 1 bytes are kept of an oversized line
    size: int


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


def read_lines(stream: BinaryIO, limit: int = MAX_EVENT_BYTES) -> Iterator[Line]:
    """Lines without their terminator; a line longer than ``limit`` is drained, not held."""
    number = 0
    while chunk := stream.readline(limit + 1):
        number += 1
        head, size = chunk, len(chunk)
        while not chunk.endswith(b"\n") and size > limit:
            chunk = stream.readline(limit + 1)
            if not chunk:
                break
            size += len(chunk)
        raw = head.rstrip(b"\r\n") if size <= limit else head
        yield Line(number, raw, size - (len(head) - len(raw)) if size <= limit else size)


def receive(line: Line, origin: str, received_at: datetime | None = None) -> Received:
    if line.size > MAX_EVENT_BYTES:
        reason = f"line: {line.size:,} bytes is larger than the {MAX_EVENT_BYTES:,}-byte limit for one event (first 64 KiB kept)"
        return Received(line.raw, origin, Rejected((reason,)))
    return Received(line.raw, origin, validate_line(line.raw, received_at))


def ingest_stream(
    store: EventStore,
    stream: BinaryIO,
    name: str,
    *,
    recorded_at: datetime | None = None,
    progress: TextIO | None = sys.stderr,
) -> IngestSummary:
    """Validate and append every line of one stream; returns what happened to them."""
    total = IngestSummary()
    batch: list[Received] = []
    started = time.monotonic()
    for line in read_lines(stream):
        batch.append(receive(line, f"{name}:{line.number}", recorded_at))
        if len(batch) >= BATCH_SIZE:
            total.add(store.append(batch, recorded_at))
            batch = []
        if progress is not None and line.number % PROGRESS_EVERY == 0:
            rate = line.number / max(time.monotonic() - started, 1e-9)
            print(f"  {name}: {line.number:,} lines ({rate:,.0f} lines/s)", file=progress, flush=True)
    if batch:
        total.add(store.append(batch, recorded_at))
    return total


def ingest_files(
    store: EventStore, paths: Iterable[str], *, recorded_at: datetime | None = None, progress: TextIO | None = sys.stderr
) -> IngestSummary:
    """`-` reads standard input."""
    total = IngestSummary()
    for path in paths:
        if path == "-":
            total.merge(ingest_stream(store, sys.stdin.buffer, "stdin", recorded_at=recorded_at, progress=progress))
        else:
            with open(Path(path), "rb") as stream:
                total.merge(ingest_stream(store, stream, path, recorded_at=recorded_at, progress=progress))
    return total
