"""The Dagster instance of the embedded default lives under $PLANNING_HOME/dagster; `planning ui` opens it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from events.home import PlanningHome

TEMPLATE = Path(__file__).resolve().parents[2] / "dagster_home" / "dagster.yaml"
WORKSPACE = TEMPLATE.with_name("workspace.yaml")
FALLBACK = "telemetry:\n  enabled: false\nnux:\n  enabled: false\n"


def use_planning_dagster_home(home: PlanningHome) -> Path:
    """Point DAGSTER_HOME at $PLANNING_HOME/dagster, seeded with the checked-in dagster.yaml."""
    home.dagster.mkdir(parents=True, exist_ok=True)
    config = home.dagster / "dagster.yaml"
    if not config.exists():
        if TEMPLATE.exists():
            shutil.copyfile(TEMPLATE, config)
        else:
            config.write_text(FALLBACK)
    os.environ["DAGSTER_HOME"] = str(home.dagster)
    return home.dagster


def run_ui(home: PlanningHome, port: int) -> int:
    """Dagster's UI (``dagster dev``) on this home, on 127.0.0.1:``port``, until it stops; its exit code."""
    use_planning_dagster_home(home)
    os.environ["PLANNING_HOME"] = str(home.root)
    command = [sys.executable, "-m", "dagster", "dev", "-w", str(WORKSPACE), "-h", "127.0.0.1", "-p", str(port)]
    return subprocess.call(command)
