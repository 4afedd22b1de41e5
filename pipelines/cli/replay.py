"""`planning deadletters replay`: judge dead letters again and store those that now pass
(``pipelines.ingest.replay``)."""

from __future__ import annotations

import argparse
import sys

from events.home import PlanningHome
from pipelines.cli import arguments
from pipelines.exit_codes import ExitCode


def add_replay_action(deadletters: argparse.ArgumentParser) -> None:
    actions = deadletters.add_subparsers(title="actions", metavar="ACTION")
    replay = actions.add_parser(
        "replay", help="judge dead letters again against the contract and grants as they are now; store those that pass",
        description="Judge each dead letter not replayed yet (narrowed by the options) against the contract as it is now, "
        "upcasters included, and its sender's grant as it is now; append those that pass, recorded at the replay's time, "
        "and mark them with the position they went to. Replaying again appends nothing more.",
    )
    replay.add_argument("--sender", metavar="NAME", help="only dead letters this sender delivered (unknown: of no known sender)")
    replay.add_argument("--reason-contains", metavar="TEXT", help="only dead letters with a reason containing this text (any case)")
    replay.add_argument("--since", type=arguments.since, metavar="T",
                        help="only dead letters received at or after this instant (ISO-8601; a date means its start)")
    replay.add_argument("--dry-run", action="store_true", help="list what would pass and what would still fail, and store nothing")
    replay.add_argument("--recorded-at", type=arguments.recorded_at,
                        help="knowledge time to record for what passes (ISO-8601); default: now, the replay's time")
    replay.set_defaults(run=_replay)


def _replay(args: argparse.Namespace, home: PlanningHome) -> int:
    from events.senders.registry import SenderRegistry
    from events.storage.backends import open_store
    from events.storage.store import StoreLocked
    from pipelines.ingest.replay import NOT_REPLAYABLE, REPLAYED, STILL_FAILS, STORED_ALREADY, Choice, describe, replay
    from projections.reading.cells import one_line

    choice = Choice(args.sender, args.reason_contains, args.since)
    try:
        store = open_store(home.store, writer=not args.dry_run, holder="planning deadletters replay")
    except StoreLocked as locked:
        print(f"planning deadletters replay: {locked}. Only one process may write the store at a time: "
              "stop it (or wait for it to finish), then replay again; `--dry-run` works meanwhile.", file=sys.stderr)
        return ExitCode.FAILED
    with store, SenderRegistry.of(home) as registry:
        report = replay(store, registry, choice, replayed_at=args.recorded_at, dry_run=args.dry_run)
    for line in describe(report.items):
        print(one_line(line))
    passing = report.count(REPLAYED)
    if args.dry_run:
        print(f"would pass {passing:,}  stored already {report.count(STORED_ALREADY):,}  "
              f"would still fail {report.count(STILL_FAILS):,}  cannot be replayed {report.count(NOT_REPLAYABLE):,}  (dry run: nothing stored)")
    else:
        print(f"replayed {passing:,}  stored already {report.count(STORED_ALREADY):,}  "
              f"still failing {report.count(STILL_FAILS):,}  cannot be replayed {report.count(NOT_REPLAYABLE):,}")
        if passing or report.count(STORED_ALREADY):
            _show_replays_in_dagster(home)
    if not report.items:
        print("planning deadletters replay: no dead letter not replayed yet matches", file=sys.stderr)
    return ExitCode.REJECTED if report.count(STILL_FAILS) or report.count(NOT_REPLAYABLE) else ExitCode.OK


def _show_replays_in_dagster(home: PlanningHome) -> None:
    """Rebuild the data team's dead letters, so their table and Dagster's metadata show the replays."""
    from pipelines.orchestration.runs import BuildFailed, rebuild_operations

    try:
        rebuild_operations(home)
    except BuildFailed as failed:
        print(f"planning deadletters replay: the replayed events are stored, but the data team's dead letters were not "
              f"rebuilt: {failed}. Run `planning build` to rebuild them.", file=sys.stderr)
