"""The morning rebuild: ``daily_stage_status`` rebuilds every cycle at 06:00 London time.

A stage's status depends on the date (a window opens, a due date passes), so
it changes even when no event arrives and the sensor has nothing to react to.
"""

from datetime import datetime
from zoneinfo import ZoneInfo

import dagster as dg

from events.storage.backends import open_store
from pipelines.orchestration.defs.jobs import build_cycle
from pipelines.orchestration.defs.partitions import cycles
from pipelines.orchestration.defs.resources import PlanningHomeResource, planning_run_config

LONDON = ZoneInfo("Europe/London")

@dg.schedule(
    name="daily_stage_status",
    job=build_cycle,
    cron_schedule="0 6 * * *",
    execution_timezone=str(LONDON),
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Rebuilds every cycle at 06:00 London time: stage status changes with the date "
    "(windows open, due dates pass) even when no event arrives.",
)
def daily_stage_status(context: dg.ScheduleEvaluationContext, planning: PlanningHomeResource):
    home = planning.home
    day = _scheduled_day(context)
    with open_store(home.store) as store:
        targets = store.cycles()
    if not targets:
        return dg.SkipReason("the event store names no cycle yet")
    # A schedule cannot return partition requests as a sensor can; add the missing ones here.
    known = set(context.instance.get_dynamic_partitions(cycles.name))
    missing = [c for c in targets if c not in known]
    if missing:
        context.instance.add_dynamic_partitions(cycles.name, missing)
    return [
        dg.RunRequest(
            run_key=f"{day}:{cycle}",
            partition_key=cycle,
            run_config=planning_run_config(str(home.root), {"cycle_evidence": {"config": {"on": day}}}),
        )
        for cycle in targets
    ]


def _scheduled_day(context: dg.ScheduleEvaluationContext) -> str:
    """The London date of the tick (today's, when evaluated by hand without one)."""
    try:
        moment = context.scheduled_execution_time
    except Exception:  # build_schedule_context() without a time raises instead of returning None
        moment = None
    return (moment or datetime.now(LONDON)).astimezone(LONDON).date().isoformat()
