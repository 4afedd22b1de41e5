"""The sensor: builds follow the event store without anyone running `planning build`.

``event_store_sensor`` watches the store's high-water mark. It reads only
the event store (on either backend, ``events.storage.backends.open_store``:
the embedded store's index and new segments, or PostgreSQL) and
``published.json``, never Kafka: a sensor that polls a broker can hang the
daemon (dagster-io/dagster#4021). When the mark has moved since the last
evaluation it requests one run of ``build_cycle`` per cycle named by the new
events, each with ``run_key = "<cycle>@<mark>"``, so a re-evaluation never
launches the same build twice. A cycle whose build is still queued is not
requested again: that run reads the store when it starts, so it will include
the new events (a busy stream does not pile up builds of one cycle behind the
one-at-a-time run queue). A build that has started (dequeued, launching or
running) may already have read the store, so one more build of its cycle may
queue behind it, and no more than that one.

Why coalescing never skips an event. The sensor reads the mark first, then asks
which builds are queued. A run still queued at that moment has not started, so
its ``cycle_evidence`` reads the store's mark, and its ``as_of`` (now, unless
the request gave one: the sensor's never do), after every event up to the mark
the sensor read was committed. The run's ``planning/store_mark`` tag is the
mark that caused the request, not its cut: the cut is the ``store_position``
the build publishes. Any event after a build started gets its own request at
the next evaluation. A queued build cancelled by hand leaves its events to the
next mark move or the morning rebuild, as a cancelled build always did.

Nor is a cycle whose published build already read
every event that names it (``already_current``): the first evaluation of a
new daemon, e.g. when `planning ui` opens a home `planning build` has built,
does not rebuild what is current. It keeps the mark it launched for in its
cursor, and reports an observation of the ``event_store`` asset: the mark,
events and events/s since the last evaluation, dead letters, and the lag
behind the last published build.

A retraction names its target by ``event_id`` alone, and the target may be an
event of another cycle (a mistaken ``cycle`` on the retraction itself does not
stop it from removing its target wherever it is). The sensor does not look
the target up; when any new event is ``event.retracted`` it requests a build
of every cycle in the store. Retractions are rare, so rebuilding everything
for one is cheaper than being wrong.

An erasure redacts dead letters in the store, but the published copy of the
dead letters (``build_operations``' ``ops.duckdb``) keeps their bytes until it
is rebuilt. When that copy is older than the store's last redaction
(``pipelines.orchestration.freshness``) the sensor requests one run of
``build_operations``, run_key ``operations@redactions-<mark>``: so an erasure
that came through the stream worker reaches the data team's copy too.

The morning rebuild is in ``schedules.py``.
"""

import json
import time
from typing import Any, Optional

import dagster as dg

from events.storage.backends import Store, open_store
from pipelines.orchestration.defs.assets import DATA_VERSION_TAG, event_store, sender_counts
from pipelines.orchestration.defs.jobs import build_cycle, build_operations
from pipelines.orchestration.freshness import operations_behind_erasures
from pipelines.orchestration.defs.partitions import cycles, cycles_of_run
from pipelines.orchestration.defs.resources import PlanningHomeResource, planning_run_config
from projections.reading.snapshots import published

MARK_TAG = "planning/store_mark"
# Below the daemon's own loop, which evaluates sensors at most every 5 s, so that every pass of the loop evaluates
# this one. Dagster measures the interval from the previous tick's start, and a pass begins 5 s after the last
# one began, a little less after that tick's start: at 5, a pass could find a hair under 5 s gone and skip it, and
# about one gap in three was 10 s (docs/decisions.md, "Freshness: one queued build per cycle"). A tick reads the
# index's per-segment rows (or PostgreSQL's counters), never the events, so it stays cheap at any size.
SENSOR_INTERVAL_SECONDS = 1


def _read_cursor(cursor: Optional[str]) -> dict[str, Any]:
    """{mark: the mark last launched for, at: when it was read, observed: what the last observation said}."""
    if not cursor:
        return {"mark": 0, "at": None, "observed": None}
    try:
        state = json.loads(cursor)
    except ValueError:
        state = None
    if isinstance(state, int):  # a bare mark
        return {"mark": state, "at": None, "observed": None}
    if not isinstance(state, dict) or not isinstance(state.get("mark"), int):
        return {"mark": 0, "at": None, "observed": None}
    return {"mark": state["mark"], "at": state.get("at"), "observed": state.get("observed")}


def already_current(store: Store, projections_dir, targets: list[str]) -> set[str]:
    """The cycles among ``targets`` whose published build already read every event that names them.

    The sensor's cursor says what it launched builds for, not what was built: on its first evaluation
    (a new instance, the daemon of `planning ui` opened on a home `planning build` built) it would see
    every stored event as new and rebuild every cycle. Primed from the published marks, it builds
    only a cycle with an event (or any retraction) after the position its published build read.
    """
    positions: dict[int, list[str]] = {}
    for cycle, info in published(projections_dir).get("cycles", {}).items():
        if cycle in targets and info.get("store_position") is not None:
            positions.setdefault(int(info["store_position"]), []).append(cycle)
    current: set[str] = set()
    for position, built in positions.items():
        if not store.has_retraction_after(position):
            current |= set(built) - set(store.cycles(after=position))
    return current


def _last_built_position(projections_dir) -> Optional[int]:
    """The store position the most recent published build of any cycle had read up to."""
    positions = [
        info.get("store_position") for info in published(projections_dir).get("cycles", {}).values()
    ]
    positions = [int(p) for p in positions if p is not None]
    return max(positions) if positions else None


@dg.sensor(
    name="event_store_sensor",
    jobs=[build_cycle, build_operations],
    minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Reads the event store's high-water mark (local state only, never Kafka); when it moved, "
    "requests a build of each cycle the new events name (every cycle if one is a retraction), "
    "run_key <cycle>@<mark>, and records the mark, throughput, dead letters and lag on event_store; "
    "rebuilds the dead letters' copy when an erasure redacted some since it was built.",
)
def event_store_sensor(context: dg.SensorEvaluationContext, planning: PlanningHomeResource) -> dg.SensorResult:
    home = planning.home
    state = _read_cursor(context.cursor)
    previous = state["mark"]
    now = time.time()
    with open_store(home.store) as store:
        mark = store.high_water_mark()
        counts, by_sender = store.counts(), store.counts_by_sender()
        reset = mark < previous  # the store was replaced (e.g. restored from a backup): start again
        after = 0 if reset else previous
        if mark > after or reset:
            everything = reset or store.has_retraction_after(after)
            targets = store.cycles() if everything else store.cycles(after=after)
        else:
            everything, targets = False, []
        current = set() if reset else already_current(store, home.projections, targets)

    new_events = max(mark - previous, 0)
    elapsed = now - state["at"] if state["at"] is not None else None
    built = _last_built_position(home.projections)
    observed = {"mark": mark, "dead_letters": counts["dead_letters"], "built": built}

    # A build still waiting in the queue reads the store when it starts, so it will see these events too:
    # another request for its cycle would only repeat its work. Asked after the mark was read, never before:
    # a run dequeued in between would have read the store before these events were seen as built.
    queued = _queued_cycles(context, targets)
    requested = [cycle for cycle in targets if cycle not in queued and cycle not in current]
    run_requests = [
        dg.RunRequest(
            run_key=f"{cycle}@{mark}",
            job_name=build_cycle.name,
            partition_key=cycle,
            run_config=planning_run_config(str(home.root)),
            tags={MARK_TAG: str(mark)},
        )
        for cycle in requested
    ]
    run_requests += _operations_after_erasure(home)
    partition_requests = []
    if requested:
        known = set(context.instance.get_dynamic_partitions(cycles.name)) if _has_instance(context) else set()
        missing = [c for c in requested if c not in known]
        if missing:
            partition_requests.append(dg.AddDynamicPartitionsRequest(partitions_def_name=cycles.name, partition_keys=missing))

    asset_events = []
    if mark != previous or observed != state["observed"]:
        # Observed when something changed (the mark, the dead letters, or a build caught up), not
        # every tick: the asset's history then reads as a log of changes.
        metadata: dict[str, Any] = {
            "high_water_mark": dg.MetadataValue.int(mark),
            "previous_mark": dg.MetadataValue.int(previous),
            "events_since_last_evaluation": dg.MetadataValue.int(new_events),
            "events_per_second": dg.MetadataValue.float(round(new_events / elapsed, 3) if elapsed else 0.0),
            "seconds_since_last_evaluation": dg.MetadataValue.float(round(elapsed, 3) if elapsed else 0.0),
            "events_stored": dg.MetadataValue.int(counts["events"]),
            "dead_letters": dg.MetadataValue.int(counts["dead_letters"]),
            "by_sender": sender_counts(by_sender),
            "last_built_position": dg.MetadataValue.int(built) if built is not None else dg.MetadataValue.null(),
            "lag_events": dg.MetadataValue.int(mark - (built or 0)),
            "cycles_requested": dg.MetadataValue.text(", ".join(requested) or "none"),
            "cycles_already_queued": dg.MetadataValue.text(", ".join(sorted(queued)) or "none"),
            "cycles_already_current": dg.MetadataValue.text(", ".join(sorted(current)) or "none"),
            "all_cycles_because": dg.MetadataValue.text(
                "store reset" if reset else "retraction" if everything else "-"
            ),
        }
        asset_events.append(dg.AssetObservation(asset_key=event_store.key, metadata=metadata,
                                                tags={DATA_VERSION_TAG: str(mark)}))

    cursor = json.dumps({"mark": mark, "at": now, "observed": observed})
    if not run_requests:
        why = (f"builds of {', '.join(sorted(queued))} are queued and will read up to mark {mark}" if queued
               else f"the published builds of {', '.join(sorted(current))} already read up to mark {mark}" if current
               else f"the store's high-water mark is still {mark}")
        return dg.SensorResult(skip_reason=why, cursor=cursor, asset_events=asset_events)
    rebuilding = requested + (["the dead letters, after an erasure"] if len(run_requests) > len(requested) else [])
    context.log.info(f"mark {previous} -> {mark}: building {', '.join(rebuilding)}")
    return dg.SensorResult(
        run_requests=run_requests,
        dynamic_partitions_requests=partition_requests,
        cursor=cursor,
        asset_events=asset_events,
    )


def _operations_after_erasure(home) -> list[dg.RunRequest]:
    """A run of build_operations when the published dead letters predate a redaction, at their own as_of."""
    if not operations_behind_erasures(home):
        return []
    with open_store(home.store) as store:
        redactions = store.redaction_mark()
    as_of = (published(home.projections).get("operations") or {}).get("as_of")
    return [dg.RunRequest(
        run_key=f"operations@redactions-{redactions}",
        job_name=build_operations.name,
        run_config=planning_run_config(str(home.root), {"dead_letters": {"config": {"as_of": as_of}}}),
    )]


def _queued_cycles(context: dg.SensorEvaluationContext, targets: list[str]) -> set[str]:
    """Cycles among ``targets`` that a queued, not yet started, build_cycle run will build: a run of one cycle
    (the sensor's, the schedule's) or of a range of them (``planning build``, a backfill from the UI)."""
    if not targets or not _has_instance(context):
        return set()
    runs = context.instance.get_runs(
        filters=dg.RunsFilter(job_name=build_cycle.name, statuses=[dg.DagsterRunStatus.QUEUED])
    )
    order = context.instance.get_dynamic_partitions(cycles.name) if runs else []
    return {cycle for run in runs for cycle in cycles_of_run(run.tags, order)} & set(targets)


def _has_instance(context: dg.SensorEvaluationContext) -> bool:
    try:
        return context.instance is not None
    except Exception:  # build_sensor_context() without an instance
        return False
