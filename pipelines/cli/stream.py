"""Streaming subcommands of `planning`: broker, topics, emit, worker.

The Kafka bootstrap address is ``--bootstrap``, else ``$PLANNING_KAFKA``,
else ``127.0.0.1:9092`` (where ``planning broker start`` listens).
Topic names start ``planning.`` unless ``$PLANNING_TOPIC_PREFIX`` says otherwise.

Every client logs in with SASL/SCRAM: `planning emit` as a registered sender
(``PLANNING_SENDER``/``PLANNING_SENDER_SECRET``, or a file), `planning
topics` as ``admin`` and `planning worker` as ``worker``
(``pipelines.streaming.credentials``). No secret is ever an argument.
"""

from __future__ import annotations

import argparse
import os
import sys

from events.home import PlanningHome
from events.routing import MAX_PARTITIONS, PartitionsRefused, default_partitions
from pipelines.cli import arguments
from pipelines.exit_codes import ExitCode

DEFAULT_BOOTSTRAP = "127.0.0.1:9092"
SHOWN_PROBLEMS = 20
MAX_WAIT_SECONDS = 3600.0
MAX_BATCH = 100_000


def default_bootstrap() -> str:
    return os.environ.get("PLANNING_KAFKA") or DEFAULT_BOOTSTRAP


def add_stream_commands(commands: argparse._SubParsersAction) -> None:
    """Register the streaming subcommands on the `planning` parser."""
    bootstrap_help = f"Kafka bootstrap host:port (default: $PLANNING_KAFKA, else {DEFAULT_BOOTSTRAP})"

    broker = commands.add_parser(
        "broker", help="run a local single-node Kafka broker (data in $PLANNING_HOME/kafka)",
        description="Start, stop or inspect the local development broker (Apache Kafka 4.x, KRaft, "
                    "jars from Maven Central). Its data lives in $PLANNING_HOME/kafka.")
    actions = broker.add_subparsers(title="actions", metavar="ACTION")
    start = actions.add_parser("start", help="start the broker and wait until it is ready",
                               description="Start the broker in the background; prints its bootstrap address.")
    start.add_argument("--port", type=arguments.whole_number(1, 65_534), default=9092, help="client port (default 9092)")
    start.add_argument("--controller-port", type=arguments.whole_number(1, 65_535), default=None,
                       help="KRaft controller port (default: port + 1)")
    start.add_argument("--timeout", type=arguments.seconds(MAX_WAIT_SECONDS), default=60.0,
                       help="seconds to wait for readiness (default 60)")
    start.set_defaults(run=_broker_start)
    stop = actions.add_parser("stop", help="stop the broker (SIGTERM, then SIGKILL after --timeout)",
                              description="Stop the broker recorded in $PLANNING_HOME/kafka/broker.pid.")
    stop.add_argument("--timeout", type=arguments.seconds(MAX_WAIT_SECONDS), default=30.0,
                      help="seconds to wait after SIGTERM (default 30)")
    stop.set_defaults(run=_broker_stop)
    state = actions.add_parser("status", help="say whether the broker runs (exit 0) or not (exit 3)",
                               description="Whether the broker of $PLANNING_HOME/kafka runs, and where.")
    state.set_defaults(run=_broker_status)
    broker.set_defaults(run=_usage(broker))

    topics = commands.add_parser(
        "topics", help="create the pipeline's topics if missing (idempotent) and list them",
        description="As the Kafka admin, create the collector's topics (one per event family) and the "
                    "dead-letter topic if they do not exist, grant the worker and the collector their ACLs, then "
                    "list each topic with its partitions, retention and what it carries. Existing topics are never "
                    "changed; a sender's own topics are made when it is added (`planning senders add`).")
    topics.add_argument("--bootstrap", default=None, help=bootstrap_help)
    topics.add_argument("--partitions", type=arguments.whole_number(1, MAX_PARTITIONS), default=None,
                        help="partitions for topics created now (default: $PLANNING_TOPIC_PARTITIONS, else 3)")
    topics.set_defaults(run=_topics)

    emit = commands.add_parser(
        "emit", help="validate JSON Lines events and send the valid ones to Kafka (`-` reads stdin)",
        description="Send each line of each FILE, as a registered sender, to that sender's topic of the event's "
                    "family after checking it against the event contract. "
                    "Invalid lines are NOT sent; each is reported with its line number and reasons. "
                    "Exit 0 when every line was sent, 1 when any line was invalid, 2 when a file or the sender's "
                    "credentials are missing, 3 when Kafka failed (unreachable, or the sender was refused).")
    emit.add_argument("files", nargs="+", metavar="FILE", help="one or more JSON Lines files of events (- reads stdin)")
    emit.add_argument("--bootstrap", default=None, help=bootstrap_help)
    emit.add_argument("--credentials", default=None, metavar="FILE",
                      help="file with the lines PLANNING_SENDER=NAME and PLANNING_SENDER_SECRET=SECRET (default: "
                           "those variables in the environment, else the file $PLANNING_SENDER_CREDENTIALS)")
    emit.set_defaults(run=_emit)

    worker = commands.add_parser(
        "worker", help="run the stream worker: sender topics -> event store (until Ctrl-C / SIGTERM)",
        description="As the Kafka principal worker, consume every sender's topics and the collector's (a new "
                    "sender's within seconds), validate each message and check it against its sender's grants, "
                    "append batches to the event store with the sender recorded "
                    "(duplicates dropped, rejects dead-lettered and forwarded to the dead-letter topic), and "
                    "commit Kafka offsets only after each batch is durable. On the embedded store it holds the writer "
                    "lock: `planning ingest` refuses while it runs (use `planning emit`). On the PostgreSQL store "
                    "(PLANNING_STORE) any number of workers run in one consumer group, beside ingests.")
    worker.add_argument("--bootstrap", default=None, help=bootstrap_help)
    worker.add_argument("--batch", type=arguments.whole_number(1, MAX_BATCH), default=None, metavar="N",
                        help="at most N messages per store append (default 2000)")
    worker.add_argument("--loglevel", default="WARNING", help="faust's log level (default WARNING)")
    worker.set_defaults(run=_worker)


def _usage(parser: argparse.ArgumentParser):
    def run(args: argparse.Namespace, home: PlanningHome) -> int:
        parser.print_help()
        return ExitCode.USAGE
    return run


# --- broker ------------------------------------------------------------------


def _broker_start(args: argparse.Namespace, home: PlanningHome) -> int:
    from pipelines.streaming.broker import BrokerConfig, BrokerError, start

    controller_port = args.controller_port or args.port + 1
    if controller_port == args.port:
        print("planning broker start: --controller-port must differ from --port", file=sys.stderr)
        return ExitCode.USAGE
    from pipelines.streaming.access import BrokerAccess, prepare

    config = BrokerConfig(home.kafka, args.port, controller_port)
    try:
        broker = start(config, args.timeout)
    except BrokerError as error:
        print(f"planning broker start: {error}", file=sys.stderr)
        return ExitCode.FAILED
    try:
        _states, report = prepare(BrokerAccess(broker.bootstrap, config.login()), home)
    except Exception as error:
        broker.stop()
        print(f"planning broker start: the broker started but its topics and ACLs could not be set up "
              f"({error!r}); stopped it again", file=sys.stderr)
        return ExitCode.FAILED
    print(broker.bootstrap)
    print(f"broker running (pid {broker.pid}); SASL/SCRAM-SHA-512 with ACLs; service passwords in "
          f"{config.credentials_file}; log: {config.log_file}", file=sys.stderr)
    _say_sync(report)
    broker.process = None  # detach: the JVM keeps running after we exit
    return ExitCode.OK


def _say_sync(report) -> None:
    if report.removed:
        print(f"removed the Kafka users of senders not active in the registry: {', '.join(report.removed)}",
              file=sys.stderr)
    if report.without_user:
        print(f"active senders without a Kafka user (`planning senders rotate NAME` gives them one): "
              f"{', '.join(report.without_user)}", file=sys.stderr)


def _broker_stop(args: argparse.Namespace, home: PlanningHome) -> int:
    from pipelines.streaming.broker import BrokerError, stop_from_pidfile

    try:
        stopped = stop_from_pidfile(home.kafka, args.timeout)
    except BrokerError as error:
        print(f"planning broker stop: {error}", file=sys.stderr)
        return ExitCode.FAILED
    print(f"stopped broker in {home.kafka}" if stopped else f"no broker running in {home.kafka}")
    return ExitCode.OK


def _broker_status(args: argparse.Namespace, home: PlanningHome) -> int:
    from pipelines.streaming.broker import status

    current = status(home.kafka)
    if current.running:
        print(f"running (pid {current.pid}) at {current.bootstrap}")
        return ExitCode.OK
    print(f"not running ({home.kafka})")
    return ExitCode.FAILED  # as LSB init scripts' status does


# --- topics --------------------------------------------------------------------


def _partitions_refusal() -> str | None:
    """What is wrong with $PLANNING_TOPIC_PARTITIONS, if anything: said before a topic is created."""
    try:
        default_partitions()
    except PartitionsRefused as wrong:
        return str(wrong)
    return None


def _topics(args: argparse.Namespace, home: PlanningHome) -> int:
    from pipelines.streaming.credentials import MissingCredentials
    from pipelines.streaming.topics import describe_topics, ensure_topics

    if (refusal := _partitions_refusal()) is not None:
        print(f"planning topics: {refusal}", file=sys.stderr)
        return ExitCode.USAGE
    bootstrap = args.bootstrap or default_bootstrap()
    try:
        states = ensure_topics(bootstrap, partitions=args.partitions)
        rows = describe_topics(bootstrap)
    except MissingCredentials as missing:
        print(f"planning topics: {missing}", file=sys.stderr)
        return ExitCode.USAGE
    except Exception as error:  # no broker, refused, timed out: say so plainly
        print(f"planning topics: cannot reach Kafka at {bootstrap}: {error!r}", file=sys.stderr)
        return ExitCode.FAILED
    created = {s.name for s in states if s.created}
    for row in rows:
        retention = row["retention.ms"]
        days = f"{int(retention) / 86_400_000:g} days" if retention not in (None, "-1") else "unbounded"
        spec = row["spec"]
        note = "created" if row["name"] in created else "exists"
        drift = ""
        if row["partitions"] != spec.partitions or retention != spec.configs["retention.ms"]:
            drift = f"  (differs from the design: {spec.partitions} partitions, {spec.retention_days} days)"
        print(f"{row['name']:<28} {note:<8} partitions {row['partitions']}  retention {days:<10} "
              f"{'personal data' if spec.personal_data else 'no personal data':<16}  {row['carries']}{drift}")
    return ExitCode.OK


# --- emit ----------------------------------------------------------------------


def _emit(args: argparse.Namespace, home: PlanningHome) -> int:
    from pathlib import Path

    from events.emitter import EmitFailed, Emitter, MissingCredentials, SenderCredentials
    from projections.reading.cells import one_line

    missing = [f for f in args.files if f != "-" and not Path(f).is_file()]
    if missing:
        print(f"planning emit: no such file: {', '.join(missing)}", file=sys.stderr)
        return ExitCode.USAGE
    try:
        credentials = SenderCredentials.resolve(args.credentials)
    except MissingCredentials as problem:
        print(f"planning emit: {problem}", file=sys.stderr)
        return ExitCode.USAGE
    bootstrap = args.bootstrap or default_bootstrap()
    sent = invalid = 0
    try:
        with Emitter(bootstrap, credentials=credentials) as emitter:
            for path in args.files:
                report = emitter.emit_lines(path)
                sent += report.sent
                invalid += len(report.invalid)
                for problem in report.invalid[:SHOWN_PROBLEMS]:
                    print(f"  not sent {one_line(report.name)}:{problem.number}: {one_line('; '.join(problem.reasons))}",
                          file=sys.stderr)
                if len(report.invalid) > SHOWN_PROBLEMS:
                    print(f"  … and {len(report.invalid) - SHOWN_PROBLEMS:,} more invalid line(s) in {report.name}",
                          file=sys.stderr)
    except EmitFailed as failure:
        print(f"planning emit: {failure}", file=sys.stderr)
        return ExitCode.FAILED
    except Exception as error:  # no broker reachable, wrong secret, and the like
        print(f"planning emit: cannot send to Kafka at {bootstrap} as sender {credentials.sender}: {error!r}",
              file=sys.stderr)
        return ExitCode.FAILED
    print(f"sent {sent:,}  invalid (not sent) {invalid:,}")
    return ExitCode.REJECTED if invalid else ExitCode.OK


# --- worker --------------------------------------------------------------------


def _worker(args: argparse.Namespace, home: PlanningHome) -> int:
    from events.storage.store import StoreLocked
    from pipelines.streaming.credentials import MissingCredentials
    from pipelines.streaming.worker import DEFAULT_BATCH, MissingTopics, run_worker

    if (refusal := _partitions_refusal()) is not None:
        print(f"planning worker: {refusal}", file=sys.stderr)
        return ExitCode.USAGE
    bootstrap = args.bootstrap or default_bootstrap()
    batch = args.batch or DEFAULT_BATCH
    try:
        return run_worker(home, bootstrap, batch_size=batch, loglevel=args.loglevel)
    except StoreLocked as locked:
        print(f"planning worker: {locked}; only one process may write the store: start the worker when "
              f"{locked.holder} has finished", file=sys.stderr)
        return ExitCode.FAILED
    except (MissingCredentials, MissingTopics) as problem:
        print(f"planning worker: {problem}", file=sys.stderr)
        return ExitCode.FAILED
