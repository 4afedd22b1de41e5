"""`planning snapshots`: the current snapshot and the named (what-if) ones, and dropping a named one.

A build at (today, now) publishes the current snapshot, which every reader
sees by default; a build at other instants publishes a named snapshot
(``projections.reading.named``), read with ``--snapshot NAME`` on `query`,
`sql`, `pack` and `export`. A name no snapshot has is refused with exit 2
(USAGE), and the message lists the names there are.
"""

from __future__ import annotations

import argparse
import sys

from events.home import PlanningHome
from pipelines.exit_codes import ExitCode


def snapshot_name(text: str) -> str:
    """An argparse type: a name a snapshot can have, or ``current``."""
    from projections.reading.named import CURRENT, BadSnapshotName, check_name

    if text == CURRENT:
        return text
    try:
        return check_name(text)
    except BadSnapshotName as error:
        raise argparse.ArgumentTypeError(str(error)) from None


snapshot_name.__name__ = "snapshot name"


def add_snapshot_option(parser: argparse.ArgumentParser) -> None:
    """``--snapshot NAME`` on a reading command."""
    parser.add_argument(
        "--snapshot", metavar="NAME", type=snapshot_name,
        help="read this named snapshot (a what-if build; `planning snapshots` lists them); default: the current one",
    )


def chosen(args: argparse.Namespace) -> str | None:
    """The named snapshot the command reads; None for the current one."""
    from projections.reading.named import CURRENT

    name = getattr(args, "snapshot", None)
    return None if name in (None, CURRENT) else name


def add_snapshots_command(commands: argparse._SubParsersAction) -> None:
    """Register `planning snapshots` (and `planning snapshots drop NAME`)."""
    snapshots = commands.add_parser(
        "snapshots",
        help="list the current snapshot and the named (what-if) ones, by cycle",
        description="List the published snapshots: the current one the Panel reads, built at (today, now), and each "
        "named one a build at other instants published; one row per cycle with its on, as_of and built_at.",
    )
    snapshots.add_argument("--format", choices=("table", "csv", "json"), default="table", help="how to print the list")
    snapshots.set_defaults(run=_list)
    actions = snapshots.add_subparsers(title="actions", metavar="ACTION")
    drop = actions.add_parser(
        "drop", help="remove a named snapshot",
        description="Remove a named snapshot: its entry in the published pointer, then its files "
        "(a file a reader still has open goes at the next build). The current snapshot cannot be dropped.",
    )
    drop.add_argument("name", metavar="NAME", type=snapshot_name, help="the named snapshot to remove")
    drop.set_defaults(run=_drop)


def _list(args: argparse.Namespace, home: PlanningHome) -> int:
    from pipelines.cli import output
    from projections.reading.snapshots import listed_snapshots

    rows = listed_snapshots(home.projections)
    columns = ["snapshot", "cycle", "on", "as_of", "built_at"]
    output.write(columns, [tuple(row[c] for c in columns) for row in rows], args.format)
    if not rows:
        print("planning snapshots: nothing has been published yet: run `planning build` first", file=sys.stderr)
    return ExitCode.OK


def _drop(args: argparse.Namespace, home: PlanningHome) -> int:
    from projections.building.build import build_lock
    from projections.reading.named import CURRENT
    from projections.reading.snapshots import UnknownSnapshot, drop_snapshot, named_snapshots, published

    if args.name == CURRENT:
        print("planning snapshots drop: the current snapshot is what the Panel reads and cannot be dropped; "
              "name a what-if snapshot (`planning snapshots` lists them)", file=sys.stderr)
        return ExitCode.USAGE
    try:
        known = sorted(named_snapshots(published(home.projections)))
        if args.name not in known:  # refused at once, not after waiting for a build to finish
            raise UnknownSnapshot(args.name, known)
        with build_lock(home.projections):  # a build in progress finishes first: the sweep never takes its folder
            cycles = drop_snapshot(home.projections, args.name)
    except UnknownSnapshot as error:
        print(f"planning snapshots drop: {error}", file=sys.stderr)
        return ExitCode.USAGE
    print(f"dropped snapshot {args.name} ({', '.join(cycles)})")
    return ExitCode.OK
