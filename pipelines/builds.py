"""Run projection builds through Dagster from the command line (the embedded default).

Each cycle is one run of ``build_cycle`` on its partition, recorded in the
Dagster instance under $PLANNING_HOME/dagster, so the data team sees every
build, its checks and its metadata in the UI.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

from events.home import PlanningHome
from events.store import EventStore
from pipelines.dagster_instance import use_planning_dagster_home

QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


class BuildFailed(RuntimeError):
    pass


@dataclass(frozen=True)
class CycleBuild:
    cycle: str
    run_id: str
    rows: dict[str, int]


def build(
    home: PlanningHome, cycle: str | None = None, on: str | None = None, as_of: str | None = None, *, full: bool = False
) -> list[CycleBuild]:
    """Materialize every Panel table of one cycle (or of every cycle in the store), then the dead letters."""
    use_planning_dagster_home(home)
    warnings.filterwarnings("ignore", module="dagster")
    import dagster as dg

    from pipelines.definitions import cycles as cycle_partitions
    from pipelines.definitions import defs

    if cycle:
        targets = [cycle]
    else:
        with EventStore(home.store) as store:
            targets = store.cycles()
    with dg.DagsterInstance.get() as instance:
        instance.add_dynamic_partitions(cycle_partitions.name, [c for c in targets if not instance.has_dynamic_partition(cycle_partitions.name, c)])
        config = {"on": on, "as_of": as_of}
        evidence_config = {**config, "full": full}
        # The home travels in the run's config, so the UI shows where each build wrote.
        resources = {"resources": {"planning": {"config": {"root": str(home.root)}}}}
        builds = []
        for target in targets:
            result = defs.resolve_job_def("build_cycle").execute_in_process(
                partition_key=target,
                instance=instance,
                run_config={"ops": {"cycle_evidence": {"config": evidence_config}}, **resources, **QUIET},
                raise_on_error=False,
            )
            if not result.success:
                raise BuildFailed(f"the build of {target} failed (run {result.run_id}): {_failure(result)}")
            builds.append(CycleBuild(target, result.run_id, _row_counts(result)))
            evidence_config["full"] = False  # the cache is rebuilt once, by the first cycle's run
        result = defs.resolve_job_def("build_operations").execute_in_process(
            instance=instance, run_config={"ops": {"dead_letters": {"config": config}}, **resources, **QUIET}, raise_on_error=False
        )
        if not result.success:
            raise BuildFailed(f"the dead-letter build failed (run {result.run_id}): {_failure(result)}")
    return builds


def _row_counts(result) -> dict[str, int]:
    counts = {}
    for event in result.all_events:
        if event.event_type_value == "ASSET_MATERIALIZATION":
            materialization = event.event_specific_data.materialization
            row_count = materialization.metadata.get("dagster/row_count")
            if row_count is not None:
                counts[materialization.asset_key.to_user_string()] = int(row_count.value)
    return counts


def _failure(result) -> str:
    messages = []
    for event in result.all_events:
        if event.event_type_value == "STEP_FAILURE":
            error = event.event_specific_data.error
            while error is not None and error.cause is not None:  # the root cause, not Dagster's wrapper
                error = error.cause
            messages.append(f"{event.step_key}: {error.message.strip() if error else 'failed'}")
        elif event.event_type_value == "ASSET_CHECK_EVALUATION" and not event.event_specific_data.passed:
            messages.append(f"check {event.event_specific_data.check_name} on {event.event_specific_data.asset_key.to_user_string()} failed")
    return "; ".join(messages) or "see the run in the Dagster UI"
