"""`planning verify` and `planning recover`: is the store intact, and give back what a crash set aside.

``verify`` only reads (it takes no lock, so the worker and ingests go on). It
prints one block per problem, in words the data team can act on, and exits
REJECTED (1) when it found any: a damaged or missing segment, a segment file no
commit refers to, an index that disagrees with itself, or quarantined events
the store does not hold. FAILED (3) means it could not look at all.

On the PostgreSQL store ``verify`` checks what makes sense there
(``events.storage.postgres.integrity``) with the same exit codes, and
``recover`` refuses (exit 2) and says what PostgreSQL does instead.

``recover`` is a writer (it takes the writer lock, so it refuses while the
worker runs) and appends the quarantined segments' events that the store does
not hold (``events.storage.recovery``).
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from events.home import PlanningHome
from pipelines.cli.embedded_only import refuse_on_postgres
from pipelines.exit_codes import ExitCode

if TYPE_CHECKING:  # the store's modules load when verify runs, not for every `planning` command's parser
    from events.storage.integrity import BrokenSegment, Verification

SHOWN_IDS = 10  # event ids printed per broken segment; --all-ids prints every one


def add_integrity_commands(commands: argparse._SubParsersAction) -> None:
    check = commands.add_parser(
        "verify", help="check every segment of the store against the digest recorded when it was written",
        description="Checks that every committed segment exists, that its bytes match the SHA-256 and size the index "
        "recorded when it was written and hold exactly the positions the index says, that no segment file lies beyond "
        "the committed ones, that the index counts as many event ids as the segments hold events, and that the counts "
        "by sender kept with the segments are those of the index; reports the quarantined segments. On the PostgreSQL "
        "store (PLANNING_STORE): that every record's body has the digest stored with it, that positions run without a "
        "gap from 1 to the high-water mark, that every key row is well formed, and that the counts kept by sender are "
        "those of the events. "
        "Exit 0: intact; 1: something is broken (each problem named); 3: the store cannot be read.",
    )
    check.add_argument("--all-ids", action="store_true",
                       help=f"list every event id a broken segment holds (default: the first {SHOWN_IDS})")
    check.set_defaults(run=_verify)
    recover = commands.add_parser(
        "recover", help="append again the events of quarantined segments that the store does not hold",
        description="A segment file the index did not know (left by a crash, or by a crash that also lost the index's "
        "write-ahead log) is moved to store/quarantine/ by the next writer, never deleted. This appends the events of "
        "every quarantined file whose event_id the store does not hold, keeping their recorded_at, sender and sealed "
        "personal data; running it again appends nothing. Stop the worker first (it is a writer). The embedded store's "
        "only: on PostgreSQL it refuses (exit 2), which recovers from its own write-ahead log.",
    )
    recover.set_defaults(run=_recover)


def _verify(args: argparse.Namespace, home: PlanningHome) -> int:
    import sqlite3

    from events.storage.backends import is_embedded
    from events.storage.integrity import verify
    from events.storage.store import EventStore

    if not is_embedded():
        return _verify_postgres(home)

    if not (home.store / "store.sqlite").exists():
        print(f"planning verify: there is no event store at {home.store}", file=sys.stderr)
        return ExitCode.FAILED
    try:
        with EventStore(home.store) as store:
            found = verify(store)
    except (OSError, sqlite3.Error) as error:
        print(f"planning verify: cannot read the event store at {home.store}: {error}", file=sys.stderr)
        return ExitCode.FAILED
    print(f"event store {home.store}: {found.segments:,} committed segments, {found.events:,} events, "
          f"{found.bytes_read / 1e6:,.1f} MB checked")
    for broken in found.broken:
        _print_broken(broken, args.all_ids)
    for name in found.uncommitted:
        print(f"NOT COMMITTED  segments/{name}: no commit refers to this file, so no build reads it; the next "
              "writer (an ingest, the worker, `planning recover`) moves it to quarantine/")
    for problem in found.store_problems:
        print(f"INDEX  {problem}")
    _print_quarantine(found)
    if found.undigested:
        print(f"note: {found.undigested:,} segment(s) written before digests were recorded were checked by their "
              "lines only; the next writer to open the store records their digests")
    if found.intact:
        print("intact: every committed segment is as it was written")
        return ExitCode.OK
    held = sum(b.segment.events for b in found.broken)
    print(f"NOT INTACT: {len(found.broken):,} damaged or missing segment(s) holding {held:,} events"
          f"{_and_more(found)}. Builds refuse to read a damaged segment, so the Panel keeps its last good snapshot. "
          "Put good copies of the named segments back from a backup, then run `planning verify` again.",
          file=sys.stderr)
    return ExitCode.REJECTED


def _and_more(found: Verification) -> str:
    more = []
    if found.uncommitted:
        more.append(f"{len(found.uncommitted):,} segment file(s) beyond the committed ones")
    if found.store_problems:
        more.append(f"{len(found.store_problems):,} index problem(s)")
    missing = sum(q.not_in_store for q in found.quarantined)
    if missing:
        more.append(f"{missing:,} quarantined event(s) not in the store (`planning recover`)")
    return "; " + "; ".join(more) if more else ""


def _print_broken(broken: BrokenSegment, all_ids: bool) -> None:
    segment = broken.segment
    label = "MISSING" if broken.problem == "the file is missing" else "DAMAGED"
    print(f"{label}  segments/{segment.path.name}: {broken.problem}")
    print(f"  holds positions {segment.first_position:,}–{segment.last_position:,} ({segment.events:,} events)")
    if broken.unreadable and label == "DAMAGED":
        print(f"  positions whose record cannot be read back: {_ranges(broken.unreadable)}")
    ids = broken.event_ids if all_ids else broken.event_ids[:SHOWN_IDS]
    if ids:
        rest = len(broken.event_ids) - len(ids)
        print(f"  event ids: {', '.join(ids)}" + (f" … and {rest:,} more (--all-ids)" if rest else ""))


def _print_quarantine(found: Verification) -> None:
    for held in found.quarantined:
        if held.not_in_store:
            state = f"{held.not_in_store:,} of them not in the store: run `planning recover`"
        else:
            state = "all of them in the store (recovered, or never lost); kept, never deleted"
        unreadable = f"; {held.unreadable_lines:,} line(s) are not records" if held.unreadable_lines else ""
        print(f"QUARANTINED  quarantine/{held.path.name}: {held.events:,} events, {state}{unreadable}")


def _ranges(positions: list[int]) -> str:
    """1, 2, 3, 7 -> '1–3, 7'."""
    runs: list[list[int]] = []
    for position in positions:
        if runs and position == runs[-1][1] + 1:
            runs[-1][1] = position
        else:
            runs.append([position, position])
    return ", ".join(f"{a:,}" if a == b else f"{a:,}–{b:,}" for a, b in runs)


def _verify_postgres(home: PlanningHome) -> int:
    """verify on the PostgreSQL store: records against their digests, positions, key rows
    (``events.storage.postgres.integrity``)."""
    from events.storage.backends import describe_store, open_store
    from events.storage.postgres.integrity import verify_postgres

    with open_store(home.store) as store:
        found = verify_postgres(store)
    print(f"{describe_store(home.store)}: {found.events:,} events up to position {found.high_water_mark:,}, "
          f"{found.digests_checked:,} bodies checked against their digests"
          + (f" ({found.not_checkable:,} not checkable: erased respondents, or an older contract)" if found.not_checkable else ""))
    for problem in found.wrong_records:
        print(f"WRONG RECORD  {problem}")
    for first, last in found.gaps:
        print(f"MISSING  position{'s' if last > first else ''} {_ranges(list(range(first, last + 1)))}: no event stored there")
    for problem in found.bad_keys:
        print(f"KEYS  {problem}")
    for problem in found.wrong_counts:
        print(f"COUNTS  {problem}")
    if found.intact:
        print("intact: every record has its digest, positions run without gaps, every key row is well formed, "
              "the counts by sender agree")
        return ExitCode.OK
    print(f"NOT INTACT: {len(found.wrong_records):,} wrong record(s), {len(found.gaps):,} gap(s) in the positions, "
          f"{len(found.bad_keys):,} malformed key row(s), {len(found.wrong_counts):,} wrong count(s) by sender. "
          "Builds may read wrong events: restore the database to a time before the damage (point-in-time recovery), "
          "then `planning store reapply-erasures`, then `planning verify` again.",
          file=sys.stderr)
    return ExitCode.REJECTED


def _recover(args: argparse.Namespace, home: PlanningHome) -> int:
    from events.storage.recovery import recover
    from events.storage.store import EventStore, StoreLocked

    refused = refuse_on_postgres("recover", "PostgreSQL recovers a crash by itself from its write-ahead log; to go back "
                                 "to an earlier state, use point-in-time recovery, then `planning store reapply-erasures`.")
    if refused is not None:
        return refused

    try:
        store = EventStore(home.store, writer=True, holder="planning recover")
    except StoreLocked as locked:
        print(f"planning recover: {locked}. Stop it (recover must be the only writer), then run this again.",
              file=sys.stderr)
        return ExitCode.FAILED
    with store:
        recovery = recover(store)
    if not recovery.files:
        print("nothing to recover: the quarantine is empty")
        return ExitCode.OK
    for done in recovery.files:
        where = f" at positions {done.positions[0]:,}–{done.positions[1]:,}" if done.positions else ""
        print(f"quarantine/{done.path.name}: {done.records:,} events, appended {done.appended:,}{where}, "
              f"already in the store {done.already_stored:,}")
        if done.unreadable_lines:
            print(f"  {done.unreadable_lines:,} line(s) are not records (cut short by the crash) and were left out")
        if done.keys_lost:
            print(f"  {done.keys_lost:,} event(s) came back without their personal data: its key was lost with the "
                  "index's write-ahead log (they count; their comments and demographics cannot be read)")
        if done.erasures:
            print(f"  {done.erasures:,} erasure(s) among them applied again")
    print(f"recovered {recovery.appended:,} event(s); the quarantined files are kept. "
          "Run `planning build` to publish with them, `planning verify` to check the store.")
    return ExitCode.OK
