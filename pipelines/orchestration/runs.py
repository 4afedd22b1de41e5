"""Run Dagster jobs in this process from the command line (the embedded default).

A build of one cycle is one run of ``build_cycle`` on its partition; a build of
every cycle is one run over the range of their partitions (when a run over
several cycles fails, each is built again on its own, so that those which pass
are published); a pack is one run of ``build_packs``, recorded in the Dagster instance under
$PLANNING_HOME/dagster, so the data team sees every build, its checks and its
metadata in the UI. A pack `planning pack` writes without a run is recorded
there too (``record_pack``). ``run_job`` is the one way this package starts a run.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import dagster as dg

from events.home import PlanningHome
from events.storage.backends import open_store
from pipelines.orchestration.definitions import defs
from pipelines.orchestration.defs.assets import store_observation
from pipelines.orchestration.defs.jobs import build_cycle, build_operations, build_packs
from pipelines.orchestration.defs.packs import briefing_pack
from pipelines.orchestration.defs.partitions import RANGE_END, RANGE_START, cycles
from pipelines.orchestration.defs.resources import planning_run_config
from pipelines.orchestration.defs.sensors import MARK_TAG
from pipelines.orchestration.instance import use_planning_dagster_home
from projections.building.timetable import default_windows
from projections.packs import WrittenPack
from projections.reading.named import CURRENT
from projections.reading.snapshots import published

SNAPSHOT_TAG = "planning/snapshot"  # on each build_cycle run we start: "current", or the named snapshot it publishes
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


class RunFailed(RuntimeError):
    """A run did not succeed; the message names the failed steps and checks."""


class BuildFailed(RunFailed):
    """Some runs of a build failed; the others were published. ``failures`` names each failed one."""

    def __init__(self, failures: list[FailedRun], builds: list[CycleBuild]) -> None:
        self.failures, self.builds = failures, builds
        super().__init__("; ".join(f"the build of {f.target} failed (run {f.run_id}): {f.reason}" for f in failures))


class PackFailed(RunFailed):
    pass


@dataclass(frozen=True)
class CycleBuild:
    cycle: str
    run_id: str  # "" when not built
    rows: dict[str, int]
    not_built: str | None = None  # why the cycle was not built (a cycle the calendar cannot hold)


@dataclass(frozen=True)
class FailedRun:
    target: str  # the cycle, or "the dead letters"
    run_id: str
    reason: str

    @property
    def cycle(self) -> str | None:
        return None if self.target == DEAD_LETTERS_TARGET else self.target


DEAD_LETTERS_TARGET = "the dead letters"
NO_TIMETABLE = "not a cycle the timetable can hold (YYYY-YY, years 1 to 9999): retract its events"


def run_job(
    instance: dg.DagsterInstance, home: PlanningHome, job: dg.UnresolvedAssetJobDefinition,
    ops: dict[str, Any], partition: str | None = None, tags: dict[str, str] | None = None, *, through: str | None = None,
) -> dg.ExecuteInProcessResult:
    """One in-process run of ``job`` on ``home``: the home travels in the run's config, so the UI shows where it wrote.
    With ``through``, the run covers the cycle partitions from ``partition`` to ``through`` in the instance's order."""
    if partition is not None and not instance.has_dynamic_partition(cycles.name, partition):
        instance.add_dynamic_partitions(cycles.name, [partition])
    if through is not None:
        tags = {**(tags or {}), RANGE_START: str(partition), RANGE_END: through}
    return defs.resolve_job_def(job.name).execute_in_process(
        partition_key=partition if through is None else None,
        instance=instance,
        run_config={**planning_run_config(str(home.root), ops), **QUIET},
        raise_on_error=False,
        tags=tags,
    )


def cycle_runs(instance: dg.DagsterInstance, targets: list[str]) -> list[list[str]]:
    """The runs that build ``targets``: each a range of cycle partitions, in the instance's order, holding
    targets only (a cycle between two targets that is not one splits them; usually there is one range)."""
    known = set(instance.get_dynamic_partitions(cycles.name))
    instance.add_dynamic_partitions(cycles.name, [t for t in targets if t not in known])
    wanted, ranges, current = set(targets), [], []
    for key in instance.get_dynamic_partitions(cycles.name):
        if key in wanted:
            current.append(key)
        elif current:
            ranges.append(current)
            current = []
    return ranges + [current] if current else ranges


def build(
    home: PlanningHome, cycle: str | None = None, on: str | None = None, as_of: str | None = None, *,
    full: bool = False, snapshot: str | None = None,
) -> list[CycleBuild]:
    """Materialize every Panel table of one cycle (or of every cycle in the store), then the dead letters.

    Every cycle is built, whichever failed before it, and then the dead letters: what succeeded is
    published, as the current snapshot, or in the named ``snapshot`` (a what-if build: the current
    snapshot and the data team's dead letters are left as they are, so no dead letters are built).
    Each run is tagged ``planning/snapshot`` with where it published. If any run failed,
    ``BuildFailed`` names each, and carries the builds that succeeded.
    """
    if cycle:
        targets = [cycle]
    else:
        with open_store(home.store) as store:
            targets = store.cycles()
    instants = {"on": on, "as_of": as_of}
    built: dict[str, CycleBuild] = {}
    failures: list[FailedRun] = []
    with _instance(home) as instance:
        instance.report_runless_asset_event(store_observation(home))  # the catalog shows the store each build read
        for target in targets:
            if not default_windows(target):  # "0000-01" as an older contract let in: no timetable, no Panel to show
                built[target] = CycleBuild(target, "", {}, NO_TIMETABLE)
        runs = cycle_runs(instance, [t for t in targets if t not in built])
        while runs:
            keys = runs.pop(0)
            # the cache is rebuilt once, by the first run that succeeds
            evidence = {**instants, "full": full and not any(b.run_id for b in built.values())}
            ops = {"cycle_evidence": {"config": evidence}, "panel_snapshot": {"config": {"snapshot": snapshot}}}
            result = run_job(instance, home, build_cycle, ops, keys[0], {SNAPSHOT_TAG: snapshot or CURRENT},
                             through=keys[-1] if len(keys) > 1 else None)
            if result.success:
                rows = _row_counts(result)
                built.update((key, CycleBuild(key, result.run_id, rows.get(key, {}))) for key in keys)
            elif len(keys) > 1:  # nothing of the run was published: each cycle alone, so that those which pass are
                runs[:0] = [[key] for key in keys]
            else:
                failures.append(FailedRun(keys[0], result.run_id, _failure(result)))
        if snapshot is None:
            result = run_job(instance, home, build_operations, {"dead_letters": {"config": instants}})
            if not result.success:
                failures.append(FailedRun(DEAD_LETTERS_TARGET, result.run_id, _failure(result)))
    builds = [built[t] for t in targets if t in built]
    if failures:
        raise BuildFailed(failures, builds)
    return builds


class SensorBuilds:
    """Runs of ``build_cycle`` as the store sensor requests them (its run config and ``planning/store_mark``
    tag; the cycle's Panel tables only, no dead letters), on one instance kept open as a daemon keeps
    its own: for a long-lived process that stands in for the daemon (the bench's build loop)."""

    def __init__(self, home: PlanningHome) -> None:
        self.home = home
        self._instance = _instance(home)

    def build(self, cycle: str, requested_at_mark: int) -> bool:
        """One run; whether it succeeded (a failure is in the instance, as a daemon's run would be)."""
        result = run_job(self._instance, self.home, build_cycle, {}, cycle, {MARK_TAG: str(requested_at_mark)})
        return result.success

    def __enter__(self) -> SensorBuilds:
        return self

    def __exit__(self, *exc: object) -> None:
        self._instance.dispose()


def rebuild_operations(home: PlanningHome) -> str:
    """Build and publish again the data team's dead letters, as known at the published copy's own
    ``as_of``, from the store as it is now (after an erasure redacted some): one run of
    ``build_operations``; its run id."""
    as_of = (published(home.projections).get("operations") or {}).get("as_of")
    with _instance(home) as instance:
        result = run_job(instance, home, build_operations, {"dead_letters": {"config": {"as_of": as_of}}})
    if not result.success:
        raise BuildFailed([FailedRun(DEAD_LETTERS_TARGET, result.run_id, _failure(result))], [])
    return result.run_id


def write_current_pack(home: PlanningHome, cycle: str, *, stage: str | None = None) -> dict:
    """Materialize ``briefing_pack`` for one cycle through Dagster; its metadata, with the run id.
    Whether the pack is labelled synthetic is the snapshot's to say, not the caller's."""
    with _instance(home) as instance:
        result = run_job(instance, home, build_packs, {"briefing_pack": {"config": {"stage": stage}}}, cycle)
    if not result.success:
        raise PackFailed(f"the briefing pack of {cycle} was not written (run {result.run_id}): {_failure(result)}")
    for materialization in _materializations(result):
        return {key: value.value for key, value in materialization.metadata.items()} | {"run_id": result.run_id}
    raise PackFailed(f"the briefing pack run of {cycle} materialized nothing (run {result.run_id})")


def record_pack(home: PlanningHome, written: WrittenPack) -> None:
    """Record a pack written outside a run (`planning pack`) in its place, ``$PLANNING_HOME/packs/<cycle>``,
    as a materialization of that cycle's ``briefing_pack``: the catalog then shows every pack that exists,
    whoever wrote it, and a missing partition means that no pack of that cycle was written."""
    metadata: dict[str, Any] = {
        "stage": written.stage, "html": dg.MetadataValue.path(str(written.html)),
        "on": written.on.isoformat(), "as_of": written.as_of.isoformat(), "written_by": "planning pack",
    }
    if written.pdf:
        metadata["pdf"] = dg.MetadataValue.path(str(written.pdf))
    if written.pdf_error:
        metadata["pdf_error"] = written.pdf_error
    with _instance(home) as instance:
        if not instance.has_dynamic_partition(cycles.name, written.cycle):
            instance.add_dynamic_partitions(cycles.name, [written.cycle])
        instance.report_runless_asset_event(
            dg.AssetMaterialization(asset_key=briefing_pack.key, partition=written.cycle, metadata=metadata))


def _instance(home: PlanningHome) -> dg.DagsterInstance:
    use_planning_dagster_home(home)
    warnings.filterwarnings("ignore", module="dagster")
    return dg.DagsterInstance.get()


def _materializations(result: dg.ExecuteInProcessResult) -> list[dg.AssetMaterialization]:
    return [e.event_specific_data.materialization for e in result.all_events if e.event_type_value == "ASSET_MATERIALIZATION"]


def _row_counts(result: dg.ExecuteInProcessResult) -> dict[str, dict[str, int]]:
    """Each cycle's row count of each table the run materialized."""
    counts: dict[str, dict[str, int]] = {}
    for materialization in _materializations(result):
        row_count = materialization.metadata.get("dagster/row_count")
        if row_count is not None:
            counts.setdefault(str(materialization.partition), {})[materialization.asset_key.to_user_string()] = int(row_count.value)
    return counts


def _failure(result: dg.ExecuteInProcessResult) -> str:
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
