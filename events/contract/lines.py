"""Reading JSON Lines in bounded memory, for every path that takes files (ingest, emit)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from events.contract.validation import MAX_EVENT_BYTES


@dataclass(frozen=True)
class Line:
    number: int
    raw: bytes  # without its terminator; at most MAX_EVENT_BYTES + 1 bytes are kept of an oversized line
    size: int  # the line's full size, terminator excluded


def read_lines(stream: BinaryIO, limit: int = MAX_EVENT_BYTES) -> Iterator[Line]:
    """Lines without their terminator; a line longer than ``limit`` is drained, never held whole."""
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
