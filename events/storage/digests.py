"""The SHA-256 of a segment file, read once, in large pieces.

The store records each segment's digest and size when it writes it; a build or
``planning verify`` reads the file back through :func:`read_segment_bytes`,
which hashes the bytes as they are read and, in the same pass, counts lines
and keeps the first and last line's start (where a record names its position).
So checking a segment costs one sequential read, about what ``sha256sum`` pays.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

CHUNK = 4 * 1024 * 1024
EDGE = 64  # bytes kept of the first and the last line: enough for '{"position":N,'


@dataclass(frozen=True)
class SegmentBytes:
    sha256: str
    size: int
    lines: int  # newline characters: a whole segment ends with one
    head: bytes  # the start of the first line
    tail: bytes  # the start of the last line (after the last newline but one)


def read_segment_bytes(path: Path) -> SegmentBytes:
    digest, size, lines = hashlib.sha256(), 0, 0
    head, previous, chunk = b"", b"", b""
    with open(path, "rb", buffering=0) as file:
        while piece := file.read(CHUNK):
            digest.update(piece)
            size += len(piece)
            lines += piece.count(b"\n")
            head = head or piece[:EDGE]
            previous, chunk = chunk, piece
    end = previous + chunk  # a record is far smaller than a chunk, so the last line starts in these two
    body = end[:-1] if end.endswith(b"\n") else end
    start = body.rfind(b"\n") + 1
    return SegmentBytes(digest.hexdigest(), size, lines, head, body[start : start + EDGE])


def file_digest(path: Path) -> tuple[str, int]:
    """(SHA-256 as hex, size in bytes) of a file."""
    found = read_segment_bytes(path)
    return found.sha256, found.size
