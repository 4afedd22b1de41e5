"""The Dagster daemon as the freshness figure's builder (`--only freshness_daemon`).

The build loop (``bench/buildloop.py``) stands in for the daemon and is a lower bound: it reads the
store's mark every 0.2 s and builds in one long-lived process. This starts the daemon itself on the
bench home, the way `planning ui` and `planning up` start it (``pipelines.orchestration.ui``), so
the figure also pays what an operator's stack pays: the sensor's interval, the run queue's dequeue
interval, and a new process (Python, Dagster and our definitions imported) for every run.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg

from bench import proc
from events.home import PlanningHome
from pipelines.orchestration.instance import DaemonHeartbeats, create_storage, use_planning_dagster_home
from pipelines.orchestration.ui import STOP_GRACE, dagster_env, dagster_services
from pipelines.processes import stop_together, wait_until

READY_S = 120.0  # seconds the daemon may take to beat once
SENSOR_LOOP_S = 6.0  # the daemon's sensor loop runs at most every 5 s (Dagster's MIN_INTERVAL_LOOP_TIME)


@contextmanager
def dagster_daemon(home: Path) -> Iterator[list[str]]:
    """The daemon running on ``home`` while inside; the list it yields holds, once it has stopped, one
    line saying how many runs it started and how they ended."""
    planning = PlanningHome(home)
    before = os.environ.get("DAGSTER_HOME")
    try:
        use_planning_dagster_home(planning)  # sets DAGSTER_HOME in this process too
    finally:
        if before is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = before
    create_storage(planning)
    daemon = next(s for s in dagster_services(planning, "127.0.0.1", 0) if s.name == "dagster-daemon")
    started = datetime.now(timezone.utc)
    summary: list[str] = []
    daemon.start(dagster_env(planning), proc.REPO)
    try:
        with DaemonHeartbeats(planning) as heartbeats:
            if not wait_until(lambda: not daemon.alive() or heartbeats.all_since(started.timestamp()), READY_S, 0.5):
                raise RuntimeError(f"the Dagster daemon did not beat within {READY_S:.0f} s:\n{daemon.tail()}")
        if not daemon.alive():
            raise RuntimeError(f"the Dagster daemon exited on start:\n{daemon.tail()}")
        time.sleep(SENSOR_LOOP_S)  # its sensor's first tick (the code server loads our definitions first)
        yield summary
        if not daemon.alive():
            raise RuntimeError(f"the Dagster daemon exited during the figure:\n{daemon.tail()}")
    finally:
        stop_together([daemon], STOP_GRACE)
        summary.append(runs_since(planning, started))


def runs_since(planning: PlanningHome, started: datetime) -> str:
    """How many runs the instance holds that were created after ``started``, by status."""
    with dg.DagsterInstance.from_config(str(planning.dagster)) as instance:
        runs = instance.get_runs(filters=dg.RunsFilter(created_after=started))
    statuses: dict[str, int] = {}
    for run in runs:
        statuses[run.status.value] = statuses.get(run.status.value, 0) + 1
    return f"{len(runs)} runs ({', '.join(f'{n} {s.lower()}' for s, n in sorted(statuses.items())) or 'none'})"
