"""The jobs: what one run builds. Each runs in one process (a DuckDB file has one writer: this run)."""

import dagster as dg

from pipelines.orchestration.defs.assets import cycle_evidence, dead_letters, panel_snapshot, panel_tables
from pipelines.orchestration.defs.packs import briefing_pack

build_cycle = dg.define_asset_job(
    "build_cycle",
    selection=dg.AssetSelection.assets(cycle_evidence, panel_tables, panel_snapshot),
    executor_def=dg.in_process_executor,
    description="Build and publish one cycle's Panel tables at (on, as_of).",
)
build_operations = dg.define_asset_job(
    "build_operations",
    selection=dg.AssetSelection.assets(dead_letters),
    executor_def=dg.in_process_executor,
    description="Build the data team's dead-letter table.",
)
build_packs = dg.define_asset_job(
    "build_packs",
    selection=dg.AssetSelection.assets(briefing_pack),
    executor_def=dg.in_process_executor,
    description="Write the briefing pack (HTML and PDF) of the stage each cycle is in, from the published snapshot.",
)
