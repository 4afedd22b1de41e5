"""The Dagster instance of the embedded default lives under $PLANNING_HOME/dagster."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from events.home import PlanningHome

TEMPLATE = Path(__file__).resolve().parents[1] / "dagster_home" / "dagster.yaml"
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
