"""The Dagster code location (``dagster_home/workspace.yaml``): gathers ``defs/``, defines nothing itself."""

import dagster as dg

from events.home import PlanningHome
from pipelines.orchestration.defs import assets, checks, jobs, packs, schedules, sensors
from pipelines.orchestration.defs.resources import PlanningHomeResource, build_lock

defs = dg.Definitions(
    assets=[assets.event_store, assets.cycle_evidence, assets.panel_tables, assets.panel_snapshot, assets.dead_letters,
            packs.briefing_pack],
    asset_checks=[checks.full_rebuild_matches],
    jobs=[jobs.build_cycle, jobs.build_operations, jobs.build_packs],
    sensors=[sensors.event_store_sensor],
    schedules=[schedules.daily_stage_status],
    # every run in one process, ad hoc materializations from the UI too: the build lock and a build's
    # DuckDB files belong to the run, not to one step
    executor=dg.in_process_executor,
    resources={"planning": PlanningHomeResource(root=str(PlanningHome.from_env().root)), "build_lock": build_lock},
)
