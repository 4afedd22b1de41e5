"""`planning up`: the local stack (broker, topics, worker, Dagster webserver and daemon) in one command."""

from __future__ import annotations

import argparse

from events.home import PlanningHome
from pipelines.cli import arguments


def add_stack_commands(commands: argparse._SubParsersAction) -> None:
    """Register `planning up` on the `planning` parser."""
    up = commands.add_parser(
        "up", help="run the local stack: Kafka, topics, stream worker, HTTP collector, Dagster webserver and daemon (until Ctrl-C)",
        description="Start, on this machine and without Docker, the Kafka broker (data in $PLANNING_HOME/kafka; "
                    "one already running there is reused), the topics, the stream worker, the HTTP collector "
                    "(`planning serve`, handing each line to Kafka), dagster-webserver and dagster-daemon (DAGSTER_HOME=$PLANNING_HOME/dagster), each waited for in turn. Logs go to "
                    "$PLANNING_HOME/logs/. The daemon's sensor builds a cycle when new events reach the store. "
                    "Ctrl-C or SIGTERM stops everything in reverse order. Exit 0 after a clean stop, 3 when a "
                    "part failed to start or died.")
    up.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    up.add_argument("--kafka-port", type=int, default=9092, help="the broker's client port (default 9092)")
    up.add_argument("--controller-port", type=int, default=None, help="the broker's KRaft port (default: kafka port + 1)")
    up.add_argument("--port", type=int, default=3000, help="the Dagster webserver's port (default 3000)")
    up.add_argument("--collector-port", type=arguments.whole_number(1, 65_535), default=8080,
                    help="the HTTP collector's port (`planning serve`, default 8080), for senders without Kafka")
    up.add_argument("--timeout", type=float, default=120.0, help="seconds each part may take to be ready (default 120)")
    up.set_defaults(run=_up)


def _up(args: argparse.Namespace, home: PlanningHome) -> int:
    from pipelines.streaming.stack import StackConfig, run

    config = StackConfig(home, host=args.host, kafka_port=args.kafka_port, controller_port=args.controller_port,
                         webserver_port=args.port, collector_port=args.collector_port, timeout=args.timeout)
    return run(config)
