"""Where everything lives: ``$PLANNING_HOME`` (default ``.planning/`` in the working directory).

    store/          the event store and its dead letters (events.storage.store)
    projections/    one DuckDB file per build, and the published pointer (projections)
    packs/          the briefing packs, <cycle>/<stage>.html and .pdf
    dagster/        Dagster's instance: run history, event logs, compute logs
    kafka/          the local broker's data, when one runs (pipelines.streaming.broker)
    erasures/       the erasure ledger, apart from the store (events.storage.erasure_ledger)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PlanningHome:
    root: Path

    @classmethod
    def from_env(cls) -> PlanningHome:
        return cls(Path(os.environ.get("PLANNING_HOME", ".planning")).resolve())

    @property
    def store(self) -> Path:
        return self.root / "store"

    @property
    def projections(self) -> Path:
        return self.root / "projections"

    @property
    def packs(self) -> Path:
        return self.root / "packs"

    @property
    def dagster(self) -> Path:
        return self.root / "dagster"

    @property
    def kafka(self) -> Path:
        return self.root / "kafka"
