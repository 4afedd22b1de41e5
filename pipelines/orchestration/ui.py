"""`planning ui`: Dagster's webserver and daemon on this home, and all of it stopped on Ctrl-C or SIGTERM.

Not ``dagster dev``: Dagster has superseded that command (it prints a
warning telling users to run ``dg dev``, a tool this project does not ship),
and its children outlived a `planning ui` that was sent SIGTERM. We start the
same two processes ``dagster dev`` starts, as `planning up` does, each in its
own session with its output in ``$PLANNING_HOME/logs/``; a Ctrl-C reaches only
`planning ui`, which then stops both process groups together (a code server
or a run they started included): SIGTERM, then SIGKILL after ``STOP_GRACE``
seconds, so nothing is left after 10 seconds.

Opening the UI starts the daemon, whose sensor would otherwise treat every
cycle as new on its first tick: it first compares each cycle with the store
position its published build read (``defs.sensors``), so a cycle already
current is not built again.
"""

from __future__ import annotations

import os
import signal
import sys
import time
import urllib.request
from pathlib import Path
from typing import TextIO

from events.home import PlanningHome
from pipelines.exit_codes import ExitCode
from pipelines.orchestration.instance import WORKSPACE, create_storage, use_planning_dagster_home
from pipelines.processes import Service, stop_together, wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
STOP_GRACE = 6.0  # seconds between SIGTERM and SIGKILL: within 10 s of the signal nothing is left
READY_TIMEOUT = 120.0  # seconds the webserver may take to answer


class Stopping(BaseException):
    """SIGINT, SIGTERM or SIGHUP arrived: stop everything."""


class ServiceDied(RuntimeError):
    """The webserver or the daemon exited on its own; the message names it and ends with its log's tail."""


def dagster_services(home: PlanningHome, host: str, port: int) -> list[Service]:
    """The webserver on ``host:port`` and the daemon (sensor, schedule, run queue), both on this home's instance."""
    python, logs = sys.executable, home.root / "logs"
    return [
        Service("dagster-webserver",
                [python, "-m", "dagster_webserver", "-w", str(WORKSPACE), "-h", host, "-p", str(port)],
                logs / "dagster-webserver.log", where=f"http://{host}:{port}"),
        Service("dagster-daemon", [python, "-m", "dagster._daemon", "run", "-w", str(WORKSPACE)],
                logs / "dagster-daemon.log", where=f"sensor + schedule + run queue on {home.dagster}"),
    ]


def dagster_env(home: PlanningHome) -> dict[str, str]:
    """The children's environment: this home, its Dagster instance, and (from a checkout) this code."""
    env = {**os.environ, "PLANNING_HOME": str(home.root), "DAGSTER_HOME": str(home.dagster), "PYTHONUNBUFFERED": "1"}
    if (REPO_ROOT / "pyproject.toml").exists():
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return env


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _raise_stopping(signum: int, _frame: object) -> None:
    raise Stopping(signal.Signals(signum).name)


def _check_alive(services: list[Service]) -> None:
    for service in services:
        if not service.alive():
            raise ServiceDied(f"{service.name} exited with code {service.process.returncode}; "
                              f"last lines of {service.log}:\n{service.tail()}")


def run_ui(home: PlanningHome, port: int, host: str = "127.0.0.1", out: TextIO = sys.stdout) -> int:
    """Serve Dagster's UI on ``host:port`` until a signal (exit 0) or a death (exit 3); stop everything either way."""
    previous = {sig: signal.signal(sig, _raise_stopping) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    services: list[Service] = []
    code = 0
    try:
        try:
            use_planning_dagster_home(home)
            create_storage(home)  # once, before the two processes race to create it
            env, cwd = dagster_env(home), REPO_ROOT if (REPO_ROOT / "pyproject.toml").exists() else home.root
            for service in dagster_services(home, host, port):
                services.append(service)
                service.start(env, cwd)
            url = f"http://{host}:{port}"
            ready = wait_until(lambda: _check_alive(services) or answers(f"{url}/server_info"), READY_TIMEOUT, 0.5)
            if not ready:
                raise ServiceDied(f"the webserver did not answer on {url} after {READY_TIMEOUT:.0f} s; "
                                  f"last lines of {services[0].log}:\n{services[0].tail()}")
            print(f"Dagster UI ready on {url} (DAGSTER_HOME={home.dagster}); logs in {home.root / 'logs'}. "
                  "Ctrl-C stops it.", file=out, flush=True)
            while True:
                _check_alive(services)
                time.sleep(1.0)
        except ServiceDied as died:
            print(f"planning ui: {died}", file=sys.stderr, flush=True)
            code = ExitCode.FAILED
        except Stopping as signal_name:
            print(f"planning ui: {signal_name}, stopping", file=out, flush=True)
        finally:
            for sig in previous:  # a second Ctrl-C must not interrupt the stop halfway
                signal.signal(sig, signal.SIG_IGN)
            stop_together(services, STOP_GRACE)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("planning ui: stopped", file=out, flush=True)
    return code
