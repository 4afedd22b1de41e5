"""`planning store init`: make the event store ready, on either backend (``PLANNING_STORE``).

For PostgreSQL it creates the store's schema and applies the migrations the
database lacks, in order (``events.storage.postgres.migrations``); running it
again changes nothing. For the embedded store it creates the store under
``$PLANNING_HOME/store``, as the first ingest would.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from events.home import PlanningHome
from events.storage.backends import UnknownStore, chosen_store
from pipelines.exit_codes import ExitCode


def add_store_commands(commands: argparse._SubParsersAction) -> None:
    store = commands.add_parser("store", help="manage the event store itself (PLANNING_STORE chooses which)")
    actions = store.add_subparsers(title="actions", metavar="ACTION")
    init = actions.add_parser(
        "init", help="create the event store, or migrate its schema to this version's",
        description="With PLANNING_STORE=postgresql://…, creates the schema planning_store in that database and applies "
        "the migrations it lacks (each recorded in planning_store.migrations); again, it changes nothing. Unset, creates "
        "the embedded store under $PLANNING_HOME/store. Exit 0: ready; 2: PLANNING_STORE is not understood; "
        "3: the database could not be reached or migrated.",
    )
    init.set_defaults(run=_init)
    reapply = actions.add_parser(
        "reapply-erasures", help="erase again every respondent the erasure ledgers record (after a database restore)",
        description="After PostgreSQL was restored from a backup or to an earlier point in time, the store may hold keys "
        "and dead letters of respondents erased since. This erases them again, from this home's erasure ledger "
        "($PLANNING_HOME/erasures) and each --erasure-ledger: keys shredded, dead letters redacted, as `planning restore` "
        "does for the embedded store. Running it again changes nothing. Then rebuild (`planning build --full`). "
        "Exit 0: done; 2: an --erasure-ledger file is missing; 3: the store cannot be reached or written.",
    )
    reapply.add_argument("--erasure-ledger", dest="ledgers", metavar="FILE", type=Path, action="append", default=[],
                         help="another copy of the erasure ledger to re-apply (e.g. the off-site copy); may be repeated")
    reapply.set_defaults(run=_reapply_erasures)
    def _usage(args: argparse.Namespace, home: PlanningHome) -> int:
        store.print_help()
        return ExitCode.USAGE

    store.set_defaults(run=_usage)


def _init(args: argparse.Namespace, home: PlanningHome) -> int:
    try:
        choice = chosen_store()
    except UnknownStore as refusal:
        print(f"planning store init: {refusal}", file=sys.stderr)
        return ExitCode.USAGE
    if choice.embedded:
        from events.storage.store import EventStore, StoreLocked

        try:
            with EventStore(home.store, writer=True, holder="planning store init"):
                pass
        except StoreLocked as locked:
            print(f"planning store init: the store at {home.store} is in use by {locked.holder}, so it exists already",
                  file=sys.stderr)
            return ExitCode.OK
        print(f"embedded event store ready at {home.store}")
        return ExitCode.OK
    from events.storage.postgres.migrations import LATEST, StoreInitFailed, init_store, redacted_url

    try:
        applied = init_store(choice.url)
    except StoreInitFailed as failure:
        print(f"planning store init: {redacted_url(choice.url)}: {failure}".rstrip(), file=sys.stderr)
        return ExitCode.FAILED
    done = f"applied migration(s) {', '.join(map(str, applied))}" if applied else "nothing to apply"
    print(f"PostgreSQL event store at {redacted_url(choice.url)}: schema version {LATEST} ({done})")
    return ExitCode.OK


def _reapply_erasures(args: argparse.Namespace, home: PlanningHome) -> int:
    """Erase again whom the ledgers name: restore's erasure step, for a store PostgreSQL restored."""
    from events.storage.backends import describe_store, open_store
    from events.storage.erasure_ledger import ErasureLedger, ledger_path
    from events.storage.restore import merged_erasures
    from events.storage.store import StoreLocked

    missing = [str(path) for path in args.ledgers if not path.is_file()]
    if missing:
        print(f"planning store reapply-erasures: --erasure-ledger: no such file: {', '.join(missing)}", file=sys.stderr)
        return ExitCode.USAGE
    try:
        store = open_store(home.store, writer=True, holder="planning store reapply-erasures")
    except StoreLocked as locked:
        print(f"planning store reapply-erasures: {locked}: stop it first, then run this again", file=sys.stderr)
        return ExitCode.FAILED
    with store:
        if store.vault is None:  # type: ignore[attr-defined]
            print(f"{describe_store(home.store)} holds no events: nothing to erase")
            return ExitCode.OK
        store_id = store.vault.store_id  # type: ignore[attr-defined]
        erasures, others = merged_erasures(store_id, [ledger_path(home.store), *args.ledgers])
        shredded, redacted = store.reapply_erasures(erasures)
    if erasures:  # this home's ledger then holds every erasure the other copies had
        with ErasureLedger(ledger_path(home.store)) as ledger:
            ledger.merge(store_id, erasures)
    print(f"{describe_store(home.store)}: {len(erasures):,} erasure(s) re-applied: {shredded:,} key(s) shredded again, "
          f"{redacted:,} dead letter(s) redacted")
    if others:
        print(f"  {others:,} ledger entr(ies) belong to another store and were not applied", file=sys.stderr)
    return ExitCode.OK
