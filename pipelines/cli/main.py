"""The `planning` command (docs/cli.md). Each subcommand has its own --help."""

from __future__ import annotations

import argparse
import os
import select
import shlex
import signal
import sys
from pathlib import Path

from events.contract.vocabulary import THEMES
from events.home import PlanningHome
from pipelines.cli import arguments
from pipelines.cli.snapshots import add_snapshot_option, add_snapshots_command, chosen
from pipelines.exit_codes import ExitCode

MAX_SQL_ROWS = 1_000_000
MAX_SQL_SECONDS = 600.0
MAX_DEAD_LETTERS = 10_000
MAX_RANK = len(THEMES)  # a scope ranks each of the contract's themes at most once
READER_LEFT = 128 + signal.SIGPIPE  # 141: the reader closed our output, as shells report a tool SIGPIPE stopped
FORMAT_HELP = "table for people (long cells cut), csv or json (every value whole)"


def main(argv: list[str] | None = None) -> int:
    try:
        code = _run(argv)
        sys.stdout.flush()  # a reader that left shows here, not in Python's complaint at exit
        return code
    except BrokenPipeError:
        if not _reader_left():
            raise  # a socket's, not our output's: a real failure
        return _quiet_after_reader_left()


def _reader_left() -> bool:
    """Whether standard output is a pipe whose reader has closed it (`planning query … | head`)."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, ValueError, OSError):  # not a file (a test's capture), or already closed
        return False
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    return any(events & select.POLLERR for _, events in poller.poll(0))


def _quiet_after_reader_left() -> int:
    """Stop quietly, as Unix tools do when the reader of their output has all it wanted."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())  # what is still buffered goes nowhere, without a second error at exit
    os.close(devnull)
    return READER_LEFT


def _run(argv: list[str] | None) -> int:
    words = sys.argv[1:] if argv is None else argv
    parser = _backup_parser() if words[:1] == ["backup"] else _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help (0), or argparse's refusal of the command line (2, its message printed)
        return stop.code if isinstance(stop.code, int) else ExitCode.USAGE
    if not getattr(args, "run", None):
        parser.print_help()
        return ExitCode.USAGE
    from events.storage.backends import StoreRefused, UnknownStore

    try:
        return args.run(args, PlanningHome.from_env())
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED
    except UnknownStore as refusal:  # PLANNING_STORE, for whichever command opened the store
        print(f"{parser.prog} {_command(argv)}: {refusal}", file=sys.stderr)
        return ExitCode.USAGE
    except StoreRefused as refusal:  # PostgreSQL down, or its schema older than this version
        print(f"{parser.prog} {_command(argv)}: {refusal}", file=sys.stderr)
        return ExitCode.FAILED
    except Exception as refused:  # PartitionsRefused, read wherever a topic is made: up, broker start, senders add
        routing = sys.modules.get("events.routing")  # not imported here: it loads the contract, which backup never needs
        if routing is None or not isinstance(refused, routing.PartitionsRefused):
            raise
        print(f"planning: {refused}", file=sys.stderr)
        return ExitCode.USAGE


def _command(argv: list[str] | None) -> str:
    """The command's name as typed, for a message that names it."""
    words = [word for word in (sys.argv[1:] if argv is None else argv) if not word.startswith("-")]
    return words[0] if words else "(no command)"


def _backup_parser() -> argparse.ArgumentParser:
    """`planning backup` alone: it runs beside a writer and is timed against `cp -r`, so it does not wait
    for every other command's imports (the contract, DuckDB, the web framework: most of a second)."""
    from pipelines.cli.backup import add_backup_commands

    parser = argparse.ArgumentParser(prog="planning")
    add_backup_commands(parser.add_subparsers(title="commands", metavar="COMMAND"))
    return parser


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="planning",
        description="The policing-plan evidence pipeline. Data lives under $PLANNING_HOME (default ./.planning).",
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    demo = commands.add_parser("demo", help="generate a synthetic cycle, ingest it, build, print the stage dashboard")
    demo.add_argument("--today", type=arguments.day, help="pretend today is this date (YYYY-MM-DD)")
    demo.add_argument("--seed", type=arguments.whole_number(0, 2**32 - 1), default=2027,
                      help="the generator's seed: the same seed and --today give the same events")
    demo.set_defaults(run=_demo)

    ingest = commands.add_parser("ingest", help="append JSON Lines events through the contract (`-` reads stdin)")
    ingest.add_argument("files", nargs="+", metavar="FILE", help="one or more JSON Lines files of events (- reads stdin)")
    ingest.add_argument(
        "--recorded-at", type=arguments.recorded_at,
        help="knowledge time to record (ISO-8601, from 2000-01-01 to now), for backfilling history; default: now",
    )
    ingest.add_argument(
        "--as", dest="as_sender", metavar="NAME",
        help="deliver as this registered sender, its grant checked on each event; default: you, the operator, with every grant",
    )
    ingest.set_defaults(run=_ingest)

    build = commands.add_parser("build", help="materialize the projections through Dagster at (on, as_of)")
    build.add_argument("--cycle", help="one cycle (YYYY-YY); default: every cycle in the store")
    build.add_argument("--on", type=arguments.day, help="the date the timetable is read at (YYYY-MM-DD); default: today")
    build.add_argument("--as-of", dest="as_of", type=arguments.as_of, help="knowledge cutoff (ISO-8601; a date means its end); default: now")
    build.add_argument("--full", action="store_true", help="rebuild the event cache from the store instead of adding what is new")
    build.add_argument(
        "--name", help="publish as this named snapshot; default: the current snapshot for a build at (today, now), "
        "else a name made of on and as_of (the current snapshot is never replaced by a what-if build)",
    )
    build.set_defaults(run=_build)

    query = commands.add_parser("query", help="print one projection table from the latest build")
    query.add_argument("table", help="a projection table (an unknown name lists them)")
    query.add_argument("--cycle", help="only this cycle's rows (YYYY-YY); not for dead_letters, which belong to no cycle")
    query.add_argument("--scope", type=arguments.scope, help="only this scope's rows (LONDON or a borough's GSS code); for tables with a scope")
    query.add_argument(
        "--rank", type=arguments.whole_number(1, MAX_RANK),
        help="only this rank's rows, e.g. one priority's evidence: "
        "`planning query priority_evidence --cycle C --scope LONDON --rank 1`; for tables with a rank",
    )
    query.add_argument("--format", choices=("table", "csv", "json"), default="table", help=FORMAT_HELP)
    add_snapshot_option(query)
    query.set_defaults(run=_query)

    sql = commands.add_parser("sql", help="read-only SQL over the latest published projections")
    sql.add_argument("statement", metavar="SQL", help='one read-only query, e.g. "SELECT * FROM consultation_coverage"')
    sql.add_argument("--format", choices=("table", "csv", "json"), default="table", help=FORMAT_HELP)
    sql.add_argument(
        "--limit", type=arguments.whole_number(1, MAX_SQL_ROWS), default=10_000,
        help=f"at most this many rows (default 10,000, at most {MAX_SQL_ROWS:,}); more is reported as truncated",
    )
    sql.add_argument(
        "--timeout", type=arguments.seconds(MAX_SQL_SECONDS), default=10.0,
        help=f"stop the query after this many seconds (default 10, at most {MAX_SQL_SECONDS:g})",
    )
    add_snapshot_option(sql)
    sql.set_defaults(run=_sql)

    dead = commands.add_parser("deadletters", help="list rejected events with their reasons (data team)")
    dead.add_argument(
        "--limit", type=arguments.whole_number(1, MAX_DEAD_LETTERS), default=20,
        help=f"show the last this many (default 20, at most {MAX_DEAD_LETTERS:,})",
    )
    dead.add_argument("--sender", metavar="NAME",
                      help="only the dead letters this sender delivered (unknown: those stored before senders were recorded)")
    dead.set_defaults(run=_deadletters)
    from pipelines.cli.replay import add_replay_action

    add_replay_action(dead)

    ui = commands.add_parser("ui", help="open Dagster's UI (webserver and daemon) on this PLANNING_HOME, until Ctrl-C or SIGTERM")
    ui.add_argument("--port", type=arguments.whole_number(1, 65_535), default=3000,
                    help="the webserver's port on 127.0.0.1")
    ui.set_defaults(run=_ui)

    from pipelines.cli.backup import add_backup_commands
    from pipelines.cli.integrity import add_integrity_commands
    from pipelines.cli.panel import add_panel_commands
    from pipelines.cli.senders import add_senders_command
    from pipelines.cli.serve import add_serve_command
    from pipelines.cli.stack import add_stack_commands
    from pipelines.cli.store import add_store_commands
    from pipelines.cli.stream import add_stream_commands
    from pipelines.cli.users import add_users_command

    add_stream_commands(commands)
    add_store_commands(commands)
    add_panel_commands(commands)
    add_snapshots_command(commands)
    add_senders_command(commands)
    add_stack_commands(commands)
    add_integrity_commands(commands)
    add_backup_commands(commands)
    add_serve_command(commands)
    add_users_command(commands)
    return parser


# --- ingest ------------------------------------------------------------------


def _ingest(args: argparse.Namespace, home: PlanningHome) -> int:
    import sqlite3

    from events.storage.backends import open_store
    from events.storage.store import StoreLocked
    from pipelines.ingest.files import MixedDataRefused, StoreUnwritable, ingest_files, unwritable_reason
    from projections.reading.cells import one_line

    missing = [f for f in args.files if f != "-" and not Path(f).is_file()]
    if missing:
        print(f"planning ingest: no such file: {', '.join(missing)}", file=sys.stderr)
        return ExitCode.USAGE
    sender = _ingesting_sender(args.as_sender, home)
    if isinstance(sender, str):
        print(f"planning ingest: --as: {sender}", file=sys.stderr)
        return ExitCode.USAGE
    try:
        store = open_store(home.store, writer=True, holder="planning ingest")
    except StoreLocked as locked:
        print(f"planning ingest: {locked}.\n{_while_locked(locked.holder, args.files)}", file=sys.stderr)
        return ExitCode.FAILED
    except (OSError, sqlite3.Error) as error:
        reason = unwritable_reason(error)
        if reason is None:
            raise
        print(f"planning ingest: cannot write the event store at {home.store}: {reason}. Nothing was stored.", file=sys.stderr)
        return ExitCode.CANNOT_WRITE
    try:
        with store:
            outcome = ingest_files(store, args.files, recorded_at=args.recorded_at, sender=sender)
    except StoreUnwritable as refused:
        done = refused.summary
        print(f"accepted {done.accepted:,}  duplicate {done.duplicates:,}  rejected {done.rejected:,}  (before the store refused)")
        print(f"planning ingest: cannot write the event store at {home.store}: {refused}. What is counted above is stored; "
              "free the disk or make the store writable, then ingest the same files again (what is stored already "
              "is skipped as duplicate).", file=sys.stderr)
        return ExitCode.CANNOT_WRITE
    except MixedDataRefused as refused:
        done = refused.summary
        print(f"accepted {done.accepted:,}  duplicate {done.duplicates:,}  rejected {done.rejected:,}  (before the refusal)")
        print(f"planning ingest: REFUSED, the ingest stopped here: {one_line(str(refused))}", file=sys.stderr)
        return ExitCode.REJECTED
    print(f"accepted {outcome.accepted:,}  duplicate {outcome.duplicates:,}  rejected {outcome.rejected:,}")
    for origin, reasons in outcome.examples:
        print(f"  rejected {one_line(origin)}: {one_line('; '.join(reasons))}", file=sys.stderr)
    if outcome.rejected > len(outcome.examples):
        print(f"  … and {outcome.rejected - len(outcome.examples):,} more: `planning deadletters`", file=sys.stderr)
    if not _operations_follow_erasures(home):
        return ExitCode.FAILED
    return ExitCode.REJECTED if outcome.rejected else ExitCode.OK


def _ingesting_sender(name: str | None, home: PlanningHome):
    """The sender an ingest delivers as: the operator, or the active registered sender ``--as`` names
    (else why not, as text)."""
    from events.senders.registry import SenderRegistry, operator

    if name is None:
        return operator()
    with SenderRegistry.of(home) as registry:
        sender = registry.get(name)
    if sender is None:
        return f"sender {name} is not registered (`planning senders list` shows who is)"
    if not sender.active:
        return f"sender {name} is revoked (since {sender.revoked_at}); ingest as yourself, without --as"
    return sender


def _operations_follow_erasures(home: PlanningHome) -> bool:
    """Rebuild the data team's published dead letters if an erasure redacted some since they were
    built (Dagster is imported only then); False, with what to do, if that failed."""
    from pipelines.orchestration.freshness import operations_behind_erasures

    if not operations_behind_erasures(home):
        return True
    from pipelines.orchestration.runs import BuildFailed, rebuild_operations

    try:
        run_id = rebuild_operations(home)
    except BuildFailed as failed:
        print(f"planning ingest: the erasure is stored, but the data team's dead letters still hold the erased "
              f"data: {failed}.\nRun `planning build` to rebuild them.", file=sys.stderr)
        return False
    print(f"erasure: the data team's dead letters were rebuilt without the erased data (run {run_id})")
    return True


def _while_locked(holder: str, files: list[str]) -> str:
    """What to do while ``holder`` (as the lock file names it) writes the store."""
    if "worker" in holder:
        from pipelines.streaming.worker import holder_bootstrap

        bootstrap = holder_bootstrap(holder)
        emit = shlex.join(["planning", "emit", *files, *(["--bootstrap", bootstrap] if bootstrap else [])])
        return ("While the stream worker runs it is the only writer: "
                f"send the file through Kafka with `{emit}`, or stop the worker first.")
    if holder.startswith("planning serve"):
        from pipelines.cli.serve import while_serving

        return while_serving(holder)
    return f"Only one process may write the store at a time: wait until {holder} has finished, then run this again."


# --- build -------------------------------------------------------------------


def _build(args: argparse.Namespace, home: PlanningHome) -> int:
    from events.contract.cycle import Cycle
    from events.contract.instants import Instants
    from pipelines.orchestration.runs import BuildFailed, build
    from projections.reading.named import snapshot_of_build

    try:
        if args.cycle:
            Cycle.parse(args.cycle)
        instants = Instants.parse(args.on, args.as_of)
        snapshot = snapshot_of_build(args.on, args.as_of, args.name)
    except ValueError as error:
        print(f"planning build: {error}", file=sys.stderr)
        return ExitCode.USAGE
    failures = []
    try:
        builds = build(home, args.cycle, args.on, args.as_of, full=args.full, snapshot=snapshot)
    except BuildFailed as failure:  # the other cycles were built and published all the same
        builds, failures = failure.builds, failure.failures
    print(f"built at on={instants.on.isoformat()} as_of={args.as_of or 'now'}")
    if snapshot is not None and builds:
        print(f"  published as snapshot {snapshot}, beside the current one (read it with --snapshot {snapshot})")
    for b in builds:
        tables = ", ".join(f"{name} {rows}" for name, rows in sorted(b.rows.items()))
        print(f"  {b.cycle}: not built: {b.not_built}" if b.not_built else f"  {b.cycle}: {tables}  (Dagster run {b.run_id})")
    for f in failures:
        print(f"planning build: the build of {f.target} failed, nothing of it published (Dagster run {f.run_id}): {f.reason}",
              file=sys.stderr)
    if not builds and not failures:
        print("  the store holds no events yet: `planning ingest FILE` first")
    return ExitCode.FAILED if failures else ExitCode.OK


# --- query and sql -------------------------------------------------------------


def _query(args: argparse.Namespace, home: PlanningHome) -> int:
    from pipelines.cli import output
    from projections.reading.snapshots import NoSnapshot, UnknownSnapshot, open_reader
    from projections.reading.synthetic import NOTE, holds_synthetic
    from projections.tables import ALL_TABLES, BUILD_INFO, BUILD_INFO_ORDER, DEAD_LETTERS

    orders = {name: table.order_by for name, table in ALL_TABLES.items()} | {BUILD_INFO: BUILD_INFO_ORDER}
    if args.table not in orders:
        print(f"planning query: unknown table {args.table!r}; known tables: {', '.join(orders)}", file=sys.stderr)
        return ExitCode.USAGE
    for column, value in (("scope", args.scope), ("rank", args.rank)):
        having = [name for name, table in ALL_TABLES.items() if column in (c.name for c in table.columns)]
        if value and args.table not in having:
            print(f"planning query: {args.table} has no {column} column, so --{column} cannot choose its rows; "
                  f"--{column} is for {', '.join(having)}", file=sys.stderr)
            return ExitCode.USAGE
    operations = args.table == DEAD_LETTERS.name
    if operations and (args.cycle or args.snapshot):
        print(f"planning query: {DEAD_LETTERS.name} holds the events the contract refused, which belong to no cycle "
              "and to no snapshot: drop --cycle and --snapshot", file=sys.stderr)
        return ExitCode.USAGE
    try:
        db = open_reader(home.projections, operations=operations, cycles=[args.cycle] if args.cycle else None,
                         snapshot=chosen(args))
    except UnknownSnapshot as error:
        print(f"planning query: {error}", file=sys.stderr)
        return ExitCode.USAGE
    except NoSnapshot as error:
        print(f"planning query: {error}", file=sys.stderr)
        return ExitCode.FAILED
    label = NOTE if holds_synthetic(db) else None  # the snapshot's to say, whatever the flags (asked before the rows)
    chosen_rows = {"cycle": args.cycle, "scope": args.scope, "rank": args.rank}
    conditions = [(column, value) for column, value in chosen_rows.items() if value]
    where = ("WHERE " + " AND ".join(f"{column} = ?" for column, _ in conditions)) if conditions else ""
    try:
        cursor = db.execute(f"SELECT * FROM {args.table} {where} ORDER BY {orders[args.table]}",
                            [value for _, value in conditions])
    except Exception as error:  # a snapshot built before this table existed
        print(f"planning query: {args.table} is not in the published snapshot yet ({error}); run `planning build`", file=sys.stderr)
        return ExitCode.FAILED
    columns = [d[0] for d in cursor.description]
    printed = output.write(columns, _streamed(cursor), args.format, label=label)
    if printed.cut:
        print(f"planning query: {output.cut_note(printed)}; choose one --cycle, use `planning sql` with a WHERE, "
              "or `planning export`", file=sys.stderr)
    return ExitCode.OK


def _streamed(cursor: object, size: int = 1024):
    """The cursor's rows, fetched a chunk at a time (a whole table is never held at once)."""
    while rows := cursor.fetchmany(size):  # type: ignore[attr-defined]
        yield from rows


def _sql(args: argparse.Namespace, home: PlanningHome) -> int:
    from pipelines.cli import output
    from projections.reading.panel_sql import PanelSqlError, run_panel_sql, truncation_note
    from projections.reading.snapshots import NoSnapshot, UnknownSnapshot
    from projections.reading.synthetic import NOTE

    try:
        columns, rows, truncated, *_ = result = run_panel_sql(
            home.projections, args.statement, limit=args.limit, timeout=args.timeout, snapshot=chosen(args),
        )
    except UnknownSnapshot as error:
        print(f"planning sql: {error}", file=sys.stderr)
        return ExitCode.USAGE
    except NoSnapshot as error:
        print(f"planning sql: {error}", file=sys.stderr)
        return ExitCode.FAILED
    except PanelSqlError as error:
        print(f"planning sql: {error}", file=sys.stderr)
        return ExitCode.REJECTED
    printed = output.write(columns, rows, args.format, label=NOTE if result.synthetic else None)
    if printed.cut:
        print(f"planning sql: {output.cut_note(printed)}; narrow the query or use `planning export`", file=sys.stderr)
    elif truncated:
        print(f"planning sql: {truncation_note(result, args.limit)}", file=sys.stderr)
    return ExitCode.OK


def _deadletters(args: argparse.Namespace, home: PlanningHome) -> int:
    from events.storage.backends import open_store
    from events.storage.store import UNKNOWN_SENDER
    from projections.reading.cells import one_line

    with open_store(home.store) as store:
        letters = store.dead_letters(sender=args.sender)
    for letter in letters[-args.limit:]:
        raw = "(redacted by an erasure)" if letter["raw"] is None else letter["raw"][:120].decode("utf-8", "replace")
        print(f"{letter['received_at']}  {one_line(letter['origin'])}  from {one_line(letter['sender'] or UNKNOWN_SENDER)}\n"
              f"  why: {one_line('; '.join(letter['reasons']))}\n  raw: {one_line(raw)}")
        if letter["replayed_position"] is not None:
            print(f"  replayed: stored at position {letter['replayed_position']} ({letter['replayed_at']})")
    sent = "" if args.sender is None else f" from {one_line(args.sender)}"
    print(f"{len(letters):,} dead letter(s){sent} in {home.store}")
    return ExitCode.OK


def _ui(args: argparse.Namespace, home: PlanningHome) -> int:
    from pipelines.orchestration.ui import run_ui

    print(f"starting Dagster's webserver and daemon on http://127.0.0.1:{args.port} (DAGSTER_HOME={home.dagster})",
          flush=True)
    return run_ui(home, args.port)


# --- demo --------------------------------------------------------------------


def _demo(args: argparse.Namespace, home: PlanningHome) -> int:
    from pipelines.demo.run import run_demo

    return run_demo(home, today=args.today, seed=args.seed)


if __name__ == "__main__":
    sys.exit(main())
