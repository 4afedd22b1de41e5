"""`planning up`: the data team's whole local stack on one machine, without Docker.

Ready in this order (the Dagster processes are launched first, as they need
neither Kafka nor the worker, so their start-up overlaps the broker's):

1. the Kafka broker (``pipelines.streaming.broker``; one already running from
   ``$PLANNING_HOME/kafka`` is used as it is and left running on stop);
2. the topics and the services' ACLs (``pipelines.streaming.topics.ensure_topics``,
   idempotent), and the senders' Kafka users brought in line with the registry
   (``pipelines.streaming.access.sync``: revoked senders lose theirs);
3. the stream worker (``python -m pipelines.cli worker``), ready when it says
   what it consumes;
4. ``dagster-webserver`` on the workspace ``dagster_home/workspace.yaml``,
   ready when it answers HTTP;
5. ``dagster-daemon run``, ready when every daemon the instance needs has sent
   a heartbeat. Its sensor (``pipelines.orchestration.defs.sensors``) launches a build when
   the store's high-water mark moves; the instance's run queue runs one build
   at a time (``run_queue.max_concurrent_runs: 1`` in dagster_home/dagster.yaml).

The subprocesses share ``PLANNING_HOME`` and ``DAGSTER_HOME=$PLANNING_HOME/dagster``
(seeded by ``use_planning_dagster_home``), write their output to
``$PLANNING_HOME/logs/<name>.log`` (the broker keeps its own
``$PLANNING_HOME/kafka/broker.log``), and each runs in its own session (``pipelines.processes``), so a
Ctrl-C in the terminal reaches only `planning up`, which then stops them in
reverse order: SIGTERM, then the rest of the process's group (a Dagster
process's code server, a run it launched), then SIGKILL after a timeout.

A build that is running when the stack stops is abandoned: it never
publishes (publication is the last step), so readers keep the previous
snapshot, and the next event or the 06:00 schedule builds that cycle again.
"""

from __future__ import annotations

import os
import signal
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from events.home import PlanningHome
from pipelines.orchestration.instance import DaemonHeartbeats, create_storage, use_planning_dagster_home
from pipelines.orchestration.ui import dagster_services
from pipelines.processes import Service
from pipelines.streaming.broker import BrokerConfig, BrokerError, start, status
from pipelines.streaming.access import BrokerAccess, prepare
from pipelines.streaming.credentials import CREDENTIALS_FILE, PASSWORD_ENV, USER_ENV, local_login

REPO_ROOT = Path(__file__).resolve().parents[2]
WORKER_READY = "planning worker: consuming"
START_ORDER = ("worker", "collector", "dagster-webserver", "dagster-daemon")  # after the broker; stopped in reverse, then the broker


class StackError(RuntimeError):
    """A part of the stack could not start or died; the message says which and why."""


class Stopping(BaseException):
    """SIGTERM (or SIGINT) arrived: unwind and stop everything."""


@dataclass(frozen=True)
class StackConfig:
    home: PlanningHome
    host: str = "127.0.0.1"
    kafka_port: int = 9092
    controller_port: int | None = None  # default: kafka_port + 1
    webserver_port: int = 3000
    collector_port: int = 8080  # `planning serve`, on the host only (HTTP: loopback needs no TLS)
    timeout: float = 120.0  # seconds for each part to become ready

    @property
    def logs(self) -> Path:
        return self.home.root / "logs"


def child_env(config: StackConfig, bootstrap: str) -> dict[str, str]:
    env = {
        **{k: v for k, v in os.environ.items() if k not in (USER_ENV, PASSWORD_ENV)},
        "PLANNING_HOME": str(config.home.root),
        "DAGSTER_HOME": str(config.home.dagster),
        "PLANNING_KAFKA": bootstrap,
        # the stack's broker is the home's: its services log in with the passwords it made
        "PLANNING_KAFKA_CREDENTIALS": str(config.home.kafka / CREDENTIALS_FILE),
        "PYTHONUNBUFFERED": "1",
    }
    if (REPO_ROOT / "pyproject.toml").exists():  # running from a checkout: the children import the same code
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return env


def _collector_url(config: StackConfig) -> str:
    return f"http://{config.host}:{config.collector_port}"


def services(config: StackConfig, bootstrap: str) -> list[Service]:
    """The stack's subprocesses, in start order."""
    python, logs = sys.executable, config.logs
    return [
        Service("worker", [python, "-m", "pipelines.cli", "worker", "--bootstrap", bootstrap],
                logs / "worker.log", where=f"consumes {bootstrap}, writes {config.home.store}"),
        Service("collector", [python, "-m", "pipelines.cli", "serve", "--host", config.host,
                              "--port", str(config.collector_port), "--bootstrap", bootstrap],
                logs / "collector.log", where=f"{_collector_url(config)}/v1/events, hands over to {bootstrap}"),
        *dagster_services(config.home, config.host, config.webserver_port),
    ]


class Stack:
    """Start with start(), stop with stop(); stop() is safe to call at any point, and twice."""

    def __init__(self, config: StackConfig, out: TextIO = sys.stdout) -> None:
        self.config = config
        self.out = out
        self.broker = None  # pipelines.streaming.broker.Broker we started (None when one was already running)
        self.bootstrap: str | None = None
        self.started: list[Service] = []
        self.started_at = time.time()

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    # --- start ------------------------------------------------------------------

    def start(self) -> None:
        home = self.config.home
        use_planning_dagster_home(home)
        self.config.logs.mkdir(parents=True, exist_ok=True)
        self.say(f"planning up: PLANNING_HOME={home.root}")
        self._create_dagster_storage()
        env = child_env(self.config, self._planned_bootstrap())
        cwd = REPO_ROOT if (REPO_ROOT / "pyproject.toml").exists() else home.root
        worker, collector, webserver, daemon = services(self.config, self._planned_bootstrap())
        # Dagster needs neither Kafka nor the worker: launched first, its imports overlap the broker's boot.
        for service in (webserver, daemon):
            self._launch(service, env, cwd)
        self._start_broker()
        self._ensure_topics()
        self._launch(worker, env, cwd)
        self._launch(collector, env, cwd)  # logs in to Kafka as the collector: after the topics and ACLs
        for service in (worker, collector, webserver, daemon):
            getattr(self, f"_wait_{service.name.replace('-', '_')}")(service)
            self.say(f"  {service.name:<18} {service.where}  (pid {service.pid}, ready after "
                     f"{time.time() - self.started_at:.1f} s)  log {service.log}")

    def _launch(self, service: Service, env: dict[str, str], cwd: Path) -> None:
        service.start(env, cwd)
        self.started.append(service)
        self.started.sort(key=lambda s: START_ORDER.index(s.name))  # stop() goes through it backwards

    def _planned_bootstrap(self) -> str:
        """The broker already running from $PLANNING_HOME/kafka, else the one start() is about to start."""
        current = status(self.config.home.kafka)
        if current.running and current.bootstrap:
            return current.bootstrap
        return f"{self.config.host}:{self.config.kafka_port}"

    def _start_broker(self) -> None:
        home, started = self.config.home, time.monotonic()
        current = status(home.kafka)
        if current.running:
            self.bootstrap = current.bootstrap
            self.say(f"  {'kafka':<18} {self.bootstrap}  (already running, pid {current.pid}; left running on stop)"
                     f"  log {home.kafka / 'broker.log'}")
            return
        controller = self.config.controller_port or self.config.kafka_port + 1
        broker_config = BrokerConfig(home.kafka, self.config.kafka_port, controller, host=self.config.host)
        try:
            self.broker = start(broker_config, self.config.timeout)
        except BrokerError as error:
            raise StackError(f"the Kafka broker did not start: {error}") from None
        self.bootstrap = self.broker.bootstrap
        self.say(f"  {'kafka':<18} {self.bootstrap}  (pid {self.broker.pid}, ready in {time.monotonic() - started:.1f} s)"
                 f"  log {broker_config.log_file}")

    def _ensure_topics(self) -> None:
        try:
            access = BrokerAccess(self.bootstrap, local_login("admin", self.config.home.kafka))
            states, report = prepare(access, self.config.home)
        except Exception as error:
            raise StackError(f"cannot create the topics and ACLs on {self.bootstrap}: {error!r}") from None
        created = [s.name for s in states if s.created]
        self.say(f"  {'topics':<18} {len(states)} topics ({len(created)} created now); SASL/SCRAM with ACLs")
        if report.removed:
            self.say(f"  {'senders':<18} removed the Kafka users of inactive senders: {', '.join(report.removed)}")
        if report.without_user:
            self.say(f"  {'senders':<18} without a Kafka user (rotate to give one): {', '.join(report.without_user)}")

    def _create_dagster_storage(self) -> None:
        """Create the instance's SQLite storage here, once, before two Dagster processes race to create it."""
        create_storage(self.config.home)

    def _ready(self, service: Service, predicate: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + self.config.timeout
        while time.monotonic() < deadline:
            if not service.alive():
                raise StackError(f"{service.name} exited with code {service.process.returncode} before it was ready; "
                                 f"last lines of {service.log}:\n{service.tail()}")
            if predicate():
                return
            time.sleep(0.5)
        raise StackError(f"{service.name} was not {what} after {self.config.timeout:.0f} s; "
                         f"last lines of {service.log}:\n{service.tail()}")

    def _wait_worker(self, service: Service) -> None:
        self._ready(service, lambda: WORKER_READY in service.output(), "consuming")

    def _wait_collector(self, service: Service) -> None:
        self._answering(service, f"{_collector_url(self.config)}/v1/health")

    def _wait_dagster_webserver(self, service: Service) -> None:
        self._answering(service, f"http://{self.config.host}:{self.config.webserver_port}/server_info")

    def _answering(self, service: Service, url: str) -> None:
        def answers() -> bool:
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    return response.status == 200
            except OSError:
                return False

        self._ready(service, answers, f"answering on {url}")

    def _wait_dagster_daemon(self, service: Service) -> None:
        since = service.started_at  # heartbeats of an earlier daemon on this home do not count
        with DaemonHeartbeats(self.config.home) as heartbeats:
            self._ready(service, lambda: heartbeats.all_since(since), f"heartbeating ({', '.join(heartbeats.required)})")

    # --- run and stop -------------------------------------------------------------

    def watch(self, interval: float = 1.0) -> None:
        """Return when a service dies (StackError) or a signal arrives (Stopping)."""
        while True:
            for service in self.started:
                if not service.alive():
                    raise StackError(f"{service.name} exited with code {service.process.returncode}; "
                                     f"last lines of {service.log}:\n{service.tail()}")
            if self.broker is not None and not self.broker.is_running():
                raise StackError(f"the Kafka broker exited; see {self.broker.config.log_file}")
            time.sleep(interval)

    def stop(self) -> None:
        for service in reversed(self.started):
            if service.process is not None:
                started = time.monotonic()
                service.stop()
                self.say(f"  stopped {service.name} (exit {service.process.returncode}, {time.monotonic() - started:.1f} s)")
        self.started = []
        if self.broker is not None:
            started = time.monotonic()
            self.broker.stop()
            self.say(f"  stopped kafka ({time.monotonic() - started:.1f} s)")
            self.broker = None


def _raise_stopping(signum: int, _frame: object) -> None:
    raise Stopping(signal.Signals(signum).name)


def run(config: StackConfig, out: TextIO = sys.stdout) -> int:
    """`planning up`: start everything, wait until a signal or a death, stop everything. Exit 0 on a signal."""
    previous = {sig: signal.signal(sig, _raise_stopping) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    stack = Stack(config, out)
    code = 0
    try:
        try:
            stack.start()
            stack.say(f"ready in {time.time() - stack.started_at:.1f} s. Send events as a registered sender "
                      f"(`planning senders add`, then PLANNING_SENDER and PLANNING_SENDER_SECRET in the environment) "
                      f"with `planning emit FILE --bootstrap {stack.bootstrap}`; the daemon's sensor starts a build within ~5 s; "
                      f"read with `planning query consultation_coverage`. Ctrl-C stops everything.")
            stack.watch()
        except StackError as error:
            print(f"planning up: {error}", file=sys.stderr, flush=True)
            code = 3
        except Stopping as signal_name:
            stack.say(f"planning up: {signal_name}, stopping")
        finally:
            # A second Ctrl-C must not interrupt the orderly stop halfway.
            for sig in previous:
                signal.signal(sig, signal.SIG_IGN)
            stack.stop()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    stack.say("planning up: stopped")
    return code
