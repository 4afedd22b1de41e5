"""The Dagster instance of the embedded default lives under $PLANNING_HOME/dagster; `planning ui` opens it (``ui``)."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import dagster as dg

from events.home import PlanningHome

TEMPLATE = Path(__file__).resolve().parents[2] / "dagster_home" / "dagster.yaml"
WORKSPACE = TEMPLATE.with_name("workspace.yaml")
FALLBACK = "telemetry:\n  enabled: false\nnux:\n  enabled: false\n"


# SHA-256 of each dagster.yaml this project seeded homes with before the current one. A home still holding one of
# them, byte for byte, gets the current template; a file anyone edited is theirs and is left as it is.
SEEDED_BEFORE = {
    "05627de28a1901012d18265163e98eb1425fee48b6c84a94f56b86dc4605de9e",  # until 2026-12-01: the queue's default dequeue every 5 s
}


def use_planning_dagster_home(home: PlanningHome) -> Path:
    """Point DAGSTER_HOME at $PLANNING_HOME/dagster, seeded with the checked-in dagster.yaml (or brought up to it,
    when the home still holds an unedited earlier one)."""
    home.dagster.mkdir(parents=True, exist_ok=True)
    config = home.dagster / "dagster.yaml"
    if not config.exists() or (TEMPLATE.exists() and hashlib.sha256(config.read_bytes()).hexdigest() in SEEDED_BEFORE):
        if TEMPLATE.exists():
            shutil.copyfile(TEMPLATE, config)
        else:
            config.write_text(FALLBACK)
    os.environ["DAGSTER_HOME"] = str(home.dagster)
    return home.dagster


def create_storage(home: PlanningHome) -> None:
    """Create the instance's SQLite storage once, before several Dagster processes race to create it."""
    with dg.DagsterInstance.from_config(str(home.dagster)) as instance:
        instance.get_runs(limit=1)
        instance.get_daemon_heartbeats()


class DaemonHeartbeats:
    """The Dagster daemon's heartbeats on this home: whether every daemon it must run has beaten since a moment."""

    def __init__(self, home: PlanningHome) -> None:
        self._instance = dg.DagsterInstance.from_config(str(home.dagster))
        self.required = sorted(self._instance.get_required_daemon_types())

    def all_since(self, since: float) -> bool:
        beats = self._instance.get_daemon_heartbeats()
        return all(kind in beats and beats[kind].timestamp >= since for kind in self.required)

    def __enter__(self) -> DaemonHeartbeats:
        return self

    def __exit__(self, *exc: object) -> None:
        self._instance.dispose()
