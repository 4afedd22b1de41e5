"""The projection assets: the event store (observed), the cycle's evidence, one asset per Panel table, publication.

Every projection asset is partitioned by cycle. A run builds one cycle (the
sensor's, the schedule's, `planning build --cycle`) or a range of them (`planning
build` of every cycle, a backfill in the UI: each asset has a single-run backfill
policy, so the range is one run and each step works through
``context.partition_keys``). For each cycle of the run, ``cycle_evidence``
stages its events at (on, as_of) into a private file, the ``panel_tables``
step runs each Panel table's SQL file into the cycle's panel file (an asset
per table, one step for all) and each table's checks guard it (blocking),
and ``panel_snapshot`` publishes each file for readers only when
every check passed for every cycle of the run: as the cycle's current snapshot,
or, for a what-if build at other instants, in the named snapshot its config
gives (the current one untouched). Runs execute in one process: a DuckDB file
has one writer, and it is this run. Every build asset takes the ``build_lock``
resource, held for the whole run: builds queue.

A run that read synthetic data (the store says so) is tagged ``planning/synthetic``
and says ``synthetic`` in its metadata (``defs.synthetic``).

A stored record whose envelope cannot be typed is left out of the build and
reported by the ``every_stored_event_readable`` check, a warning that does not
block publication: the data team retracts the record, and the warning goes.
"""

import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path

import dagster as dg

from events.contract.instants import Instants
from events.home import PlanningHome
from events.storage.backends import open_store
from projections.building import build as projection_build
from projections.building import event_cache
from projections.reading.named import CURRENT, check_name
from projections.reading.snapshots import publish_cycles, publish_operations
from projections.building.staging import stage_cycle
from projections.connection import connect
from projections.tables import DEAD_LETTERS, PANEL_TABLES, PanelTable
from pipelines.orchestration.defs.partitions import cycles
from pipelines.orchestration.defs.resources import BuildConfig, EvidenceConfig, PlanningHomeResource, SnapshotConfig
from pipelines.orchestration.defs.synthetic import label_run


DATA_VERSION_TAG = "dagster/data_version"  # how an observation carries the data version Dagster compares
ONE_RUN = dg.BackfillPolicy.single_run()  # a range of cycles is one run, each step working through them in turn
warnings.filterwarnings("ignore", message="Parameter `backfill_policy`", category=dg.BetaWarning)  # stable in use


def store_facts(home: PlanningHome) -> tuple[int, dict[str, dg.MetadataValue]]:
    """The store's high-water mark (its data version: it moves exactly when an event is stored, the
    builds' only input) and what an observation shows beside it."""
    with open_store(home.store) as store:
        mark, counts, by_sender = store.high_water_mark(), store.counts(), store.counts_by_sender()
    return mark, {
        "high_water_mark": dg.MetadataValue.int(mark),
        "events_stored": dg.MetadataValue.int(counts["events"]),
        "dead_letters": dg.MetadataValue.int(counts["dead_letters"]),
        "by_sender": sender_counts(by_sender),
    }


def sender_counts(by_sender: dict[str, dict[str, int]]) -> dg.MetadataValue:
    """Events and dead letters per sender, as a table in Dagster's UI ("unknown": stored before senders were recorded)."""
    senders = sorted(set(by_sender["events"]) | set(by_sender["dead_letters"]))
    rows = [f"| {name} | {by_sender['events'].get(name, 0):,} | {by_sender['dead_letters'].get(name, 0):,} |" for name in senders]
    return dg.MetadataValue.md("\n".join(["| sender | events | dead letters |", "| --- | ---: | ---: |", *rows]))


def store_observation(home: PlanningHome) -> dg.AssetObservation:
    """An observation of ``event_store`` as it is now, for a caller outside a run (``runs.build``)."""
    mark, metadata = store_facts(home)
    return dg.AssetObservation(asset_key="event_store", metadata=metadata, tags={DATA_VERSION_TAG: str(mark)})


# The store is written outside Dagster (`planning ingest`, the stream worker): Dagster observes it, never
# materializes it, so the catalog shows when it was last seen and at which mark, not "never materialized".
# The observations come from the sensor (every change), each `planning build`, and "Observe" in the UI.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.BetaWarning)  # observable source assets are stable in use, "beta" by name

    @dg.multi_observable_source_asset(
        specs=[dg.AssetSpec(
            "event_store",
            description="The append-only event store (system of record), written by `planning ingest` or the stream "
            "worker, outside Dagster. Observed, never materialized: its data version is its high-water mark.",
            group_name="store",
            kinds={"sqlite", "file"},
        )],
        name="observe_event_store",
        required_resource_keys={"planning"},
    )
    def event_store(context: dg.AssetExecutionContext) -> dg.ObserveResult:
        mark, metadata = store_facts(context.resources.planning.home)
        return dg.ObserveResult(data_version=dg.DataVersion(str(mark)), metadata=metadata)


UNTYPABLE_CHECK = "every_stored_event_readable"


def check_result(
    found: dict[str, list[str]], count: str, *, asset_key: str | None = None, check_name: str | None = None,
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR,
) -> dg.AssetCheckResult:
    """The result of a check over every cycle of a run (``found``: what each cycle offends with), the same for
    the blocking checks (``defs.checks``) and ``cycle_evidence``'s warning: passed when no cycle has anything;
    ``count`` names what is counted, ``first`` the first one and its cycle. It lives here because imports go
    assets <- checks: ``defs.checks`` can import it from here, not the other way round."""
    first = next((f"{cycle}: {items[0]}" for cycle, items in found.items() if items), "")
    return dg.AssetCheckResult(
        asset_key=asset_key, check_name=check_name, passed=not first, severity=severity,
        metadata={count: sum(map(len, found.values())), "first": first},
    )


@dg.asset(
    partitions_def=cycles,
    backfill_policy=ONE_RUN,
    deps=[event_store],
    group_name="store",
    kinds={"duckdb"},
    check_specs=[dg.AssetCheckSpec(
        UNTYPABLE_CHECK, asset="cycle_evidence", blocking=False,
        description="Every stored event of the cycle (and every retraction) has an envelope the tables can hold. "
        "One that has not (an older contract let it in) is left out of the build; a warning until it is retracted.",
    )],
    description="The cycle's events as known at (on, as_of), retractions applied, personal data left sealed "
    "(bar the responses' demographics, for inclusion monitoring): "
    "the private input of one build, never published.",
)
def cycle_evidence(
    context: dg.AssetExecutionContext, config: EvidenceConfig, planning: PlanningHomeResource, build_lock: dg.ResourceParam[Path]
) -> dg.MaterializeResult:
    instants = Instants.parse(config.on, config.as_of)
    projections_dir = planning.home.projections
    untypable: dict[str, list[str]] = {}
    with open_store(planning.home.store) as store, event_cache.cache_lock(projections_dir):
        position = store.high_water_mark()
        cache = event_cache.refresh(store, projections_dir, full=config.full, upto=position)
        for cycle in context.partition_keys:  # the cache is read once per cycle, the segments not at all
            staging = planning.build(cycle, context.run.run_id) / "staging.duckdb"
            counts = stage_cycle(store, staging, cycle, instants, cache=event_cache.cache_file(projections_dir), upto=position)
            context.add_asset_metadata(counts, partition_key=cycle)
            untypable[cycle] = untypable_event_ids(staging)
        synthetic = store.synthetic
    label_run(context, synthetic)
    for cycle, ids in untypable.items():
        if ids:
            context.log.warning(
                f"{len(ids)} stored event(s) of {cycle} have an envelope no table can hold and are left "
                f"out of the build; retract them (event_id {', '.join(ids[:5])}{' …' if len(ids) > 5 else ''})"
            )
    readable = check_result(untypable, "untypable_events", check_name=UNTYPABLE_CHECK, severity=dg.AssetCheckSeverity.WARN)
    return dg.MaterializeResult(
        metadata={"on": instants.on.isoformat(), "as_of": instants.as_of.isoformat(), "synthetic": synthetic, **cache},
        check_results=[readable],
    )


def untypable_event_ids(staging: Path) -> list[str]:
    with connect(staging, read_only=True) as db:
        return [str(event_id) for (event_id,) in db.execute("SELECT event_id FROM untypable_events ORDER BY position").fetchall()]


def column_schema(table: PanelTable) -> dict[str, dg.TableSchema]:
    """The table's columns with their types and meanings, for Dagster's UI."""
    columns = [dg.TableColumn(c.name, c.type, c.description) for c in table.columns]
    return {"dagster/column_schema": dg.TableSchema(columns=columns)}


def table_spec(table: PanelTable) -> dg.AssetSpec:
    return dg.AssetSpec(
        table.name, deps=[cycle_evidence], group_name=table.group, kinds={"duckdb"},
        description=table.description, metadata=column_schema(table),
    )


def table_check_specs(table: PanelTable) -> list[dg.AssetCheckSpec]:
    """The table's checks, each blocking (``projections/sql/checks/<table>__<check>.sql``, listed in its ``<table>.yml``)."""
    return [dg.AssetCheckSpec(check.name, asset=table.name, description=check.description, blocking=True)
            for check in table.checks]


def panel_tables_asset(tables: Mapping[str, PanelTable]) -> dg.AssetsDefinition:
    """Every Panel table as an asset of its own, built and checked in one step, as dbt's models are in Dagster.

    For each cycle of the run the step creates every table in the cycle's panel file through one connection,
    then runs every table's checks through one read-only connection: each check is a query over the run's own
    panel file that returns the offending rows, and passes when there are none. So a check that compares two
    tables (``TableCheck.reads``) runs once both are built. Each table keeps its materialization and row
    counts in Dagster's UI, each check its own name, description, blocking flag and result; a failed check
    fails the step once every result is recorded, and ``panel_snapshot`` does not run.
    """
    for table in tables.values():
        for check in table.checks:
            if not set(check.reads) <= set(tables):
                raise ValueError(f"check {check.name} of {table.name} reads {sorted(set(check.reads) - set(tables))}, "
                                 "which this step does not build; build them in the same step")

    @dg.multi_asset(
        name="panel_tables",
        specs=[table_spec(table) for table in tables.values()],
        check_specs=[spec for table in tables.values() for spec in table_check_specs(table)],
        partitions_def=cycles,
        backfill_policy=ONE_RUN,
    )
    def _tables(
        context: dg.AssetExecutionContext, planning: PlanningHomeResource, build_lock: dg.ResourceParam[Path]
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        builds = {cycle: planning.build(cycle, context.run.run_id) for cycle in context.partition_keys}
        for cycle, build in builds.items():
            for name, rows in projection_build.build_tables(build, tables).items():
                context.add_asset_metadata({"dagster/row_count": rows}, asset_key=name, partition_key=cycle)
        for name in tables:
            yield dg.MaterializeResult(asset_key=name)
        violations: dict[tuple[str, str], dict[str, list[str]]] = {}  # (table, check) -> cycle -> offending rows
        for cycle, build in builds.items():
            with connect(build / "panel.duckdb", read_only=True) as db:
                for table in tables.values():
                    for check in table.checks:
                        found = [str(row[0]) for row in db.execute(check.sql).fetchall()]
                        violations.setdefault((table.name, check.name), {})[cycle] = found
        for (table_name, check_name), found in violations.items():
            yield check_result(found, "violations", asset_key=table_name, check_name=check_name)

    return _tables


panel_tables = panel_tables_asset(PANEL_TABLES)
TABLE_KEYS = [dg.AssetKey(name) for name in PANEL_TABLES]


@dg.asset(
    partitions_def=cycles,
    backfill_policy=ONE_RUN,
    deps=TABLE_KEYS,
    group_name="publication",
    kinds={"duckdb"},
    description="Publishes the panel file of each cycle of the run as the cycle's current snapshot, or in the named "
    "snapshot its config gives (a what-if build), once every blocking check passed for every cycle of the run; all "
    "cycles of the run at once. Its `snapshot` metadata says which.",
)
def panel_snapshot(
    context: dg.AssetExecutionContext, config: SnapshotConfig, planning: PlanningHomeResource,
    build_lock: dg.ResourceParam[Path],
) -> dg.MaterializeResult:
    snapshot = check_name(config.snapshot) if config.snapshot is not None else None
    builds = {}
    for cycle in context.partition_keys:
        build = planning.build_path(cycle, context.run.run_id)  # built by the steps before: read, never made here
        info = projection_build.read_build_info(build / "panel.duckdb")
        builds[cycle] = (build, {**info, "run_id": context.run.run_id})
        context.add_asset_metadata({"file": str(build / "panel.duckdb"), "on": info["on_date"], "as_of": info["as_of"]},
                                   partition_key=cycle)
    publish_cycles(planning.home.projections, builds, snapshot)  # every cycle of the run at once
    synthetic = any(bool(info["synthetic"]) for _, info in builds.values())
    return dg.MaterializeResult(metadata={"snapshot": snapshot or CURRENT, "synthetic": synthetic})


@dg.asset(
    name=DEAD_LETTERS.name,
    deps=[event_store],
    group_name=DEAD_LETTERS.group,
    kinds={"duckdb"},
    description=DEAD_LETTERS.description + " For the data team; never in a Panel snapshot.",
    metadata=column_schema(DEAD_LETTERS),
)
def dead_letters(
    context: dg.AssetExecutionContext, config: BuildConfig, planning: PlanningHomeResource, build_lock: dg.ResourceParam[Path]
) -> dg.MaterializeResult:
    instants = Instants.parse(config.on, config.as_of)
    build = planning.build("_operations", context.run.run_id)
    with open_store(planning.home.store) as store:
        redactions = store.redaction_mark()  # read first: an erasure committed meanwhile leaves this copy behind, not ahead
        rows = projection_build.build_dead_letters(store, build / "ops.duckdb", instants.as_of)
        synthetic, by_sender = store.synthetic, store.counts_by_sender()
        replayed = sum(1 for letter in store.dead_letters() if letter["replayed_position"] is not None)
    label_run(context, synthetic)
    publish_operations(planning.home.projections, build,
                       {"as_of": instants.as_of.isoformat(), "run_id": context.run.run_id, "redactions": redactions})
    return dg.MaterializeResult(metadata={
        "dagster/row_count": rows, "synthetic": synthetic, "by_sender": sender_counts(by_sender),
        "replayed": dg.MetadataValue.int(replayed),  # dead letters a replay has stored since (`planning deadletters replay`)
    })
