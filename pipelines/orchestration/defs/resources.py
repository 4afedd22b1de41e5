"""What every projection asset needs: where $PLANNING_HOME is, the build's two instants, where it publishes,
and the build lock.

(No ``from __future__ import annotations`` here or in the asset modules:
Dagster reads these annotations at definition time.)
"""

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import dagster as dg

from events.home import PlanningHome
from projections.building import build as projection_build
from projections.reading.snapshots import sweep


class BuildConfig(dg.Config):
    """The two instants of docs/tables.md; empty means today / now."""

    on: Optional[str] = None  # YYYY-MM-DD
    as_of: Optional[str] = None  # ISO-8601; a bare date is the end of that day


class EvidenceConfig(BuildConfig):
    full: bool = False  # rebuild the event cache from the store instead of appending what is new


class SnapshotConfig(dg.Config):
    """Where ``panel_snapshot`` publishes: empty for the current snapshot the Panel reads (the sensor's, the
    schedule's and a plain `planning build`'s runs), or a name for a what-if build (`planning build` names
    one whenever on/as_of are not today/now; ``projections.reading.named``)."""

    snapshot: Optional[str] = None


class PlanningHomeResource(dg.ConfigurableResource):
    root: str

    @property
    def home(self) -> PlanningHome:
        return PlanningHome(Path(self.root))

    def build(self, cycle: str, run_id: str) -> Path:
        """The run's build folder for ``cycle``, made if missing: for the steps that write the build."""
        return projection_build.build_dir(self.home.projections, cycle, run_id)

    def build_path(self, cycle: str, run_id: str) -> Path:
        """Where the run's build of ``cycle`` is, without making the folder: for the steps that only read it."""
        return projection_build.build_path(self.home.projections, cycle, run_id)


@dg.resource(
    required_resource_keys={"planning"},
    description="The build lock, held from a run's first step to its last: builds queue, whoever started them. "
    "It sweeps what killed builds left, and at the end the run's own folder unless it was published.",
)
def build_lock(context: dg.InitResourceContext) -> Iterator[Path]:
    projections_dir = context.resources.planning.home.projections
    with projection_build.build_lock(projections_dir):
        sweep(projections_dir)  # no build is in progress: any folder no pointer names is a failed or killed one's
        try:
            yield projections_dir
        finally:
            # a failed step or blocking check left the folder unpublished; its staging file holds demographics
            sweep(projections_dir, only=context.run.run_id)


def planning_run_config(root: str, ops: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """The run config of every run we start or request: the home travels in it, so the UI shows where a run wrote."""
    config: dict[str, Any] = {"resources": {"planning": {"config": {"root": root}}}}
    if ops:
        config["ops"] = ops
    return config
