"""Is the store intact? Each segment checked against what the index recorded when it was written.

The index keeps, per committed segment, its positions (first..last), its number
of events, and the SHA-256 and size of its bytes. A segment is intact when its
file exists, its bytes hash to that digest at that size, and it holds exactly
``events`` lines, the first at position ``first`` and the last at ``last``.
(With the digest matching, the bytes are those the writer wrote, so the lines in
between are too.) A segment written before digests were recorded gets its
digest the first time a writer opens the store (``EventStore``), trusted as found.

Builds call :func:`ensure_intact` on every segment they read, before DuckDB
reads it, and refuse with :class:`DamagedSegment`: no figure is ever computed
from a changed or truncated file. ``planning verify`` calls :func:`verify`,
which also finds segment files no commit refers to, counts the index's event
ids against the committed events, and reports the quarantined segments.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from events.storage.digests import SegmentBytes, read_segment_bytes
from events.storage.store import QUARANTINE, EventStore, Segment

WHAT_TO_DO = ("`planning verify` lists every damaged segment and the events it holds; "
              "put a good copy of each back from a backup, then build again")


class DamagedSegment(RuntimeError):
    """A committed segment is missing, or its bytes are not those the index recorded: nothing is built from it."""

    def __init__(self, segment: Segment, problem: str) -> None:
        self.segment, self.problem = segment, problem
        super().__init__(
            f"segment {segment.path.name} (positions {segment.first_position:,}–{segment.last_position:,}, "
            f"{segment.events:,} events) is damaged: {problem}. Nothing was built from it; {WHAT_TO_DO}"
        )


def problem_of(segment: Segment) -> str | None:
    """What is wrong with a committed segment, in words; None when it is intact."""
    try:
        found = read_segment_bytes(segment.path)
    except FileNotFoundError:
        return "the file is missing"
    except OSError as error:
        return f"the file cannot be read ({error.strerror or error})"
    return _mismatch(segment, found)


def _mismatch(segment: Segment, found: SegmentBytes) -> str | None:
    if segment.size is not None and found.size != segment.size:
        shorter = "truncated: " if found.size < segment.size else ""
        return f"{shorter}{found.size:,} bytes where {segment.size:,} were written"
    if segment.sha256 is not None and found.sha256 != segment.sha256:
        return f"its bytes changed: SHA-256 {found.sha256[:16]}… where {segment.sha256[:16]}… was recorded"
    if found.lines != segment.events:
        return f"{found.lines:,} lines where the index says {segment.events:,} events"
    for edge, expected in ((found.head, segment.first_position), (found.tail, segment.last_position)):
        if not edge.startswith(f'{{"position":{expected},'.encode()):
            return f"its {'first' if expected == segment.first_position else 'last'} line is not position {expected:,}"
    return None


def ensure_intact(segments: list[Segment]) -> None:
    """Raise :class:`DamagedSegment` for the first segment that is not intact (each read once)."""
    for segment in segments:
        problem = problem_of(segment)
        if problem is not None:
            raise DamagedSegment(segment, problem)


@dataclass(frozen=True)
class BrokenSegment:
    segment: Segment
    problem: str
    event_ids: list[str]  # the events it holds, by the index (position order)
    unreadable: list[int]  # positions whose line is missing or not the record at that position


@dataclass(frozen=True)
class Quarantined:
    path: Path
    events: int  # readable records in it
    not_in_store: int  # of those, how many event ids the index does not hold (``planning recover`` appends them)
    unreadable_lines: int


@dataclass
class Verification:
    segments: int = 0
    events: int = 0  # committed, by the segments' rows
    broken: list[BrokenSegment] = field(default_factory=list)
    uncommitted: list[str] = field(default_factory=list)  # segment files beyond the committed ones
    store_problems: list[str] = field(default_factory=list)  # the index disagreeing with itself
    quarantined: list[Quarantined] = field(default_factory=list)
    bytes_read: int = 0
    undigested: int = 0  # segments checked by their lines only: no digest recorded yet (no writer has opened the store since)

    @property
    def intact(self) -> bool:
        unrecovered = any(q.not_in_store for q in self.quarantined)
        return not (self.broken or self.uncommitted or self.store_problems or unrecovered)


def verify(store: EventStore) -> Verification:
    """Check every committed segment, the segment folder and the index's counts (read-only)."""
    on_disk = {path.name for path in store.segments_dir.iterdir()}  # listed before the index is read
    segments = store.segments()
    result = Verification(segments=len(segments), events=sum(s.events for s in segments))
    for segment in segments:
        try:
            found = read_segment_bytes(segment.path)
        except OSError as error:
            problem = "the file is missing" if isinstance(error, FileNotFoundError) else f"the file cannot be read ({error})"
            result.broken.append(BrokenSegment(segment, problem, [], []))
            continue
        result.bytes_read += found.size
        problem = _mismatch(segment, found)
        if problem is None and segment.sha256 is None:
            result.undigested += 1
        elif problem is not None:
            result.broken.append(BrokenSegment(segment, problem, [], _unreadable_positions(segment)))
    _name_events(store, result)
    # a file written but not yet committed when the folder was listed is committed by now
    committed = {s.path.name for s in store.segments()}
    result.uncommitted = sorted(name for name in on_disk - committed
                                if not name.startswith(".") and (store.segments_dir / name).exists())
    result.store_problems = _index_problems(store, segments)
    result.quarantined = _quarantined(store)
    return result


def _unreadable_positions(segment: Segment) -> list[int]:
    """The positions of the segment whose record cannot be read from its file as the one at that position."""
    expected = set(range(segment.first_position, segment.last_position + 1))
    try:
        with open(segment.path, "rb") as lines:
            for line in lines:
                try:
                    expected.discard(json.loads(line)["position"])
                except (ValueError, KeyError, TypeError):
                    continue
    except OSError:
        pass
    return sorted(expected)


def _name_events(store: EventStore, result: Verification) -> None:
    """The event ids each broken segment holds, as the index knows them (one pass over the index)."""
    if not result.broken:
        return
    ranges = [(b.segment.first_position, b.segment.last_position) for b in result.broken]
    ids = store.event_ids_between(min(a for a, _ in ranges), max(b for _, b in ranges))
    for broken in result.broken:
        first, last = broken.segment.first_position, broken.segment.last_position
        broken.event_ids.extend(event_id for position, event_id in ids if first <= position <= last)


def _index_problems(store: EventStore, segments: list[Segment]) -> list[str]:
    problems = []
    expected_first = 1
    for segment in segments:
        if segment.first_position != expected_first:
            problems.append(f"positions {expected_first:,}–{segment.first_position - 1:,} are in no committed segment"
                            if segment.first_position > expected_first else
                            f"segment {segment.path.name} overlaps the one before it")
        if segment.last_position - segment.first_position + 1 != segment.events:
            problems.append(f"segment {segment.path.name}: positions {segment.first_position:,}–{segment.last_position:,}"
                            f" are not its {segment.events:,} events")
        expected_first = segment.last_position + 1
    known, committed = store.committed_counts()  # at one instant: a batch committed meanwhile counts on both sides
    if known != committed:
        problems.append(f"the index knows {known:,} event ids but the committed segments hold {committed:,} events")
    return problems + _sender_problems(store)


def _sender_problems(store: EventStore) -> list[str]:
    """Where the counts by sender that the sensor, the builds and the Panel's provenance show (kept per segment as
    the appends go) disagree with the senders the index holds for the event ids."""
    tallies = store.sender_tallies()
    if tallies is None:
        return []
    return [f"sender {sender}: the segments' counts say {kept:,} events, the index holds {held:,}"
            for sender, kept, held in differing_counts(*tallies)]


def differing_counts(kept: dict[str, int], counted: dict[str, int]) -> list[tuple[str, int, int]]:
    """(sender, kept, counted) for each sender whose kept count of events is not the one counted, by name; a sender
    absent from one side counts 0 there. Both stores' verify compare their kept counts by sender with it."""
    return [(sender, kept.get(sender, 0), counted.get(sender, 0)) for sender in sorted(kept.keys() | counted.keys())
            if kept.get(sender, 0) != counted.get(sender, 0)]


def _quarantined(store: EventStore) -> list[Quarantined]:
    folder = store.root / QUARANTINE
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.iterdir()):
        ids, unreadable = quarantined_event_ids(path)
        missing = len(ids) - len(store.known_event_ids(ids))
        found.append(Quarantined(path, len(ids), missing, unreadable))
    return found


def quarantined_event_ids(path: Path) -> tuple[list[str], int]:
    """The event ids of the readable records of a quarantined file, and how many lines could not be read."""
    ids, unreadable = [], 0
    with open(path, "rb") as lines:
        for line in lines:
            try:
                ids.append(str(json.loads(line)["event_id"]))
            except (ValueError, KeyError, TypeError):
                unreadable += 1
    return ids, unreadable
