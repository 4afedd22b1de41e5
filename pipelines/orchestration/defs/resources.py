"""What every projection asset needs: where $PLANNING_HOME is, and the build's two instants.

(No ``from __future__ import annotations`` here or in the asset modules:
Dagster reads these annotations at definition time.)
"""

from pathlib import Path
from typing import Any, Optional

import dagster as dg

from events.home import PlanningHome
from projections.building import build as projection_build


class BuildConfig(dg.Config):
    """The two instants of docs/tables.md; empty means today / now."""

    on: Optional[str] = None  # YYYY-MM-DD
    as_of: Optional[str] = None  # ISO-8601; a bare date is the end of that day


class EvidenceConfig(BuildConfig):
    full: bool = False  # rebuild the event cache from the store instead of appending what is new


class PlanningHomeResource(dg.ConfigurableResource):
    root: str

    @property
    def home(self) -> PlanningHome:
        return PlanningHome(Path(self.root))

    def build(self, cycle: str, run_id: str) -> Path:
        return projection_build.build_dir(self.home.projections, cycle, run_id)


def planning_run_config(root: str, ops: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """The run config of every run we start or request: the home travels in it, so the UI shows where a run wrote."""
    config: dict[str, Any] = {"resources": {"planning": {"config": {"root": root}}}}
    if ops:
        config["ops"] = ops
    return config
