"""`planning backup DIR` and `planning restore DIR`: the store's copy elsewhere, and the way back.

Backup runs beside the writer (``events.storage.backup``); restore puts a backup in place of a
missing, empty or broken store, re-applies every erasure the ledgers record
(``events.storage.restore``), then rebuilds every cycle from the restored store and publishes
it, as ``planning build --full`` does, so the Panel shows what the restored store holds.
Both are the embedded store's: with the PostgreSQL store they refuse (exit 2) and say which of
PostgreSQL's own tools to use, and `planning store reapply-erasures` does restore's erasure step.

Both also carry the web site's databases (``$PLANNING_HOME/web/``): the audit log is a record the
Authority must keep, and accounts are convenient to get back. Their file names are those of
``pipelines.web.accounts`` and ``pipelines.web.audit``, written here so that a backup does not load
the web framework.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from events.home import PlanningHome
from pipelines.cli import arguments
from pipelines.exit_codes import ExitCode

if TYPE_CHECKING:
    from events.storage.backup import SiteDatabase

SITE_FILES = (("web/accounts.sqlite", False), ("web/audit.sqlite", True))  # (name in the home and the backup, append-only)


def site_databases(home: PlanningHome) -> list[SiteDatabase]:
    """The web site's databases, as backup and restore take them."""
    from events.storage.backup import SiteDatabase

    return [SiteDatabase(name, home.root / name, append_only) for name, append_only in SITE_FILES]


def add_backup_commands(commands: argparse._SubParsersAction) -> None:
    """Register `planning backup` and `planning restore` on the `planning` parser."""
    backup = commands.add_parser(
        "backup", help="copy the event store, sender registry, erasure ledger and web site's databases into DIR, online and incrementally",
        description="Copy the event store (as of one committed position), the sender registry, the erasure ledger and the web "
                    "site's accounts and audit log "
                    "into DIR while the stream worker or an ingest goes on writing. A second backup into the same DIR "
                    "copies only the segments committed since. DIR is a whole backup once its manifest.json is written "
                    "(last). Exit 0; 2 when the store is PostgreSQL's (use its own tools); 3 when there is no store; 4 when DIR holds "
                    "something else.")
    backup.add_argument("dir", metavar="DIR", type=Path, help="the backup directory (created if missing)")
    backup.set_defaults(run=_backup)

    restore = commands.add_parser(
        "restore", help="put the backup in DIR in place of a missing, empty or broken store, then rebuild and publish",
        description="Check that DIR is a whole backup, copy it in place of the event store, erase again every "
                    "respondent the erasure ledgers record (this home's, the backup's, and each --erasure-ledger), then "
                    "rebuild every cycle from the restored store and publish it (as `planning build --full`). A healthy "
                    "store is replaced only with --force, and is moved aside, not deleted. Exit 0; 2 when DIR is not a "
                    "whole backup, or when the store is PostgreSQL's (restore the database, then `planning store "
                    "reapply-erasures`); 3 when the store is being written or the rebuild failed; 4 when the store is "
                    "healthy and --force was not given.")
    restore.add_argument("dir", metavar="DIR", type=Path, help="a directory `planning backup` wrote")
    restore.add_argument("--force", action="store_true",
                         help="replace a healthy store too (it is moved aside to store.replaced-<time>, not deleted)")
    restore.add_argument("--erasure-ledger", dest="ledgers", metavar="FILE", type=Path, action="append",
                         help="another copy of the erasure ledger to re-apply (e.g. the off-site copy); may be repeated")
    restore.add_argument("--on", type=arguments.day, help="the date the rebuild reads the timetable at (YYYY-MM-DD); default: today")
    restore.set_defaults(run=_restore)


POSTGRES_BACKUP = ("Back up the database with PostgreSQL's own tools: `pg_basebackup` with WAL archiving (for "
                   "point-in-time recovery) or `pg_dump --schema=planning_store`; keep $PLANNING_HOME/erasures and "
                   "$PLANNING_HOME/store/senders.sqlite with it (docs/cli.md, 'Backup and restore').")
POSTGRES_RESTORE = ("Restore the database with PostgreSQL's own tools (point-in-time recovery, or `pg_restore`), then run "
                    "`planning store reapply-erasures` so that every erasure since the backup holds again, then "
                    "`planning build --full` (docs/cli.md, 'Backup and restore').")


def _backup(args: argparse.Namespace, home: PlanningHome) -> int:
    from events.storage.backup import BackupRefused, NothingToBackUp, backup
    from pipelines.cli.embedded_only import refuse_on_postgres

    refused = refuse_on_postgres("backup", POSTGRES_BACKUP)
    if refused is not None:
        return refused

    try:
        report = backup(home.store, args.dir, site=site_databases(home))
    except NothingToBackUp as error:
        print(f"planning backup: {error}", file=sys.stderr)
        return ExitCode.FAILED
    except BackupRefused as error:
        print(f"planning backup: {error}", file=sys.stderr)
        return ExitCode.CANNOT_WRITE
    m = report.manifest
    print(f"backup of {home.store} into {args.dir}: consistent at position {m.position:,} "
          f"({m.events:,} events, {m.dead_letters:,} dead letters, {len(m.segments):,} segments)")
    print(f"  copied {len(report.copied):,} new segment(s), {report.copied_bytes:,} bytes"
          + (f"; {report.kept:,} already in the backup" if report.kept else ""))
    for name in report.copied[:10]:
        print(f"    {name}")
    if len(report.copied) > 10:
        print(f"    … and {len(report.copied) - 10:,} more")
    print(f"  copied {', '.join(report.copied_files)}")
    return ExitCode.OK


def _restore(args: argparse.Namespace, home: PlanningHome) -> int:
    from pipelines.cli.embedded_only import refuse_on_postgres

    refused = refuse_on_postgres("restore", POSTGRES_RESTORE)
    if refused is not None:
        return refused
    from events.storage.backup import IncompleteBackup
    from events.storage.restore import HealthyStore, RestoreRefused, restore
    from events.storage.store import StoreLocked

    ledgers = tuple(args.ledgers or ())
    missing = [str(p) for p in ledgers if not p.is_file()]
    if missing:
        print(f"planning restore: --erasure-ledger: no such file: {', '.join(missing)}", file=sys.stderr)
        return ExitCode.USAGE
    try:
        report = restore(args.dir, home.store, force=args.force, ledgers=ledgers, site=site_databases(home))
    except IncompleteBackup as error:
        print(f"planning restore: {error}", file=sys.stderr)
        return ExitCode.USAGE
    except (HealthyStore, RestoreRefused) as error:
        print(f"planning restore: {error}", file=sys.stderr)
        return ExitCode.CANNOT_WRITE
    except StoreLocked as locked:
        print(f"planning restore: {locked}: stop it first, then restore", file=sys.stderr)
        return ExitCode.FAILED
    m = report.manifest
    was = report.replaced.state + (f" ({report.replaced.reason})" if report.replaced.reason else "")
    print(f"restored {args.dir} into {home.store}: position {m.position:,} ({m.events:,} events, taken {m.taken_at}); "
          f"the store there was {was}")
    if report.moved_to is not None:
        print(f"  the store that was there is kept at {report.moved_to} (delete it once you no longer need it)")
    print(f"  erasures re-applied: {report.erasures:,} (keys shredded {report.keys_shredded:,}, "
          f"dead letters redacted {report.dead_letters_redacted:,})")
    if report.quarantined:
        print(f"  {report.quarantined:,} quarantined segment file(s) put back in {home.store / 'quarantine'}: "
              "`planning recover` appends those of their events the store lacks")
    for what in report.site:
        print(f"  {what}")
    _worker_rereads_kafka(home)
    if report.other_stores:
        print(f"  {report.other_stores:,} ledger entr(ies) belong to another store and were not applied", file=sys.stderr)
    return _rebuild(home, args.on)


def _worker_rereads_kafka(home: PlanningHome) -> None:
    """Give the stream worker a new consumer group: its old group's offsets are past the backup's
    position, so it would never re-read what the lost store held after it. A new group starts from the
    earliest offsets Kafka retains; what the restored store holds already is skipped as duplicate."""
    group = home.root / "worker" / "group"
    if not group.is_file():
        return
    old = group.read_text().strip()
    group.rename(group.with_name(f"group.before-restore-{os.getpid()}"))
    print(f"  the stream worker's consumer group {old} is retired: started again, the worker reads Kafka from the "
          "earliest retained offsets, so what the backup lacks comes back while Kafka retains it (the rest is skipped as duplicate)")


def _rebuild(home: PlanningHome, on: str | None) -> int:
    from pipelines.orchestration.runs import BuildFailed, build

    try:
        builds = build(home, on=on, full=True)
    except BuildFailed as failure:
        print(f"planning restore: the store is restored, but the rebuild failed: {failure}. "
              "Run `planning build --full` once the cause is fixed.", file=sys.stderr)
        return ExitCode.FAILED
    print(f"rebuilt and published {len(builds):,} cycle(s): " + ", ".join(b.cycle for b in builds if b.run_id))
    return ExitCode.OK
