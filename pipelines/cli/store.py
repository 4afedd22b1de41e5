"""`planning store init`: make the event store ready, on either backend (``PLANNING_STORE``).

For PostgreSQL it creates the store's schema and applies the migrations the
database lacks, in order (``events.storage.postgres.migrations``); running it
again changes nothing. For the embedded store it creates the store under
``$PLANNING_HOME/store``, as the first ingest would.
"""

from __future__ import annotations

import argparse
import sys

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
