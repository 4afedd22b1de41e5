"""Asset checks that guard publication.

Each check is blocking: when it fails, ``panel_snapshot`` does not run and
readers keep the previous snapshot. A Panel table's checks are SQL files
beside the table (``projections/sql/checks/<table>__<check>.sql``, listed in
its ``<table>.yml``): each is a query over the run's own panel file that
returns the offending rows, and the check passes when there are none. A
check that compares its table with another (``TableCheck.reads``) depends on
that table's asset too, so it runs once both are built.
"""

from pathlib import Path

import dagster as dg

from events.contract.instants import Instants
from events.storage.backends import Store, open_store
from events.storage.store import EventStore
from pipelines.orchestration.defs.resources import PlanningHomeResource
from projections.connection import connect, sql_string
from projections.building import event_cache
from projections.building.staging import stage_cycle
from projections.tables import PANEL_TABLES, TableCheck


def run_dir(projections_dir: Path, run_id: str) -> Path:
    """The build directory of a run (builds/<cycle>/<run_id>)."""
    matches = list((projections_dir / "builds").glob(f"*/{run_id}"))
    if len(matches) != 1:
        raise RuntimeError(f"no build directory for run {run_id}")
    return matches[0]


def _check(spec: TableCheck) -> dg.AssetChecksDefinition:
    @dg.asset_check(asset=spec.table, name=spec.name, description=spec.description, blocking=True,
                    additional_deps=list(spec.reads))
    def _run(context: dg.AssetCheckExecutionContext, planning: PlanningHomeResource) -> dg.AssetCheckResult:
        panel = run_dir(planning.home.projections, context.run.run_id) / "panel.duckdb"
        with connect(panel) as db:
            violations = [row[0] for row in db.execute(spec.sql).fetchall()]
        return dg.AssetCheckResult(
            passed=not violations,
            metadata={"violations": len(violations), "first": violations[0] if violations else ""},
        )

    return _run


def panel_checks() -> list[dg.AssetChecksDefinition]:
    return [_check(spec) for table in PANEL_TABLES.values() for spec in table.checks] + [full_rebuild_matches]


@dg.asset_check(
    asset="cycle_evidence",
    name="full_rebuild_matches",
    blocking=True,
    description="The build's evidence is what a full rebuild from the store's segments would stage. On the embedded "
    "store: every segment the cycle reads was read whole into the event cache from bytes with the digest the store's "
    "index records, and the cache still holds exactly those rows (each position once; counts and digests per block "
    "of positions, kept when they were read). On PostgreSQL: the cycle staged again from the store equals it, table "
    "by table. Every Panel table is a pure function of the evidence.",
)
def full_rebuild_matches(context: dg.AssetCheckExecutionContext, planning: PlanningHomeResource) -> dg.AssetCheckResult:
    build = run_dir(planning.home.projections, context.run.run_id)
    with connect(build / "staging.duckdb") as db:
        cycle, on_date, as_of, position = db.execute("SELECT cycle, on_date, as_of, store_position FROM build_info").fetchone()
    with open_store(planning.home.store) as store:
        if isinstance(store, EventStore):
            differences = event_cache.cache_matches_store(store, planning.home.projections, cycle, position)
        else:
            differences = _staged_again_differs(store, build, cycle, Instants(on_date, as_of), position)
    return dg.AssetCheckResult(
        passed=not differences,
        metadata={"differences": len(differences), "first": differences[0] if differences else ""},
    )


def _staged_again_differs(store: Store, build: Path, cycle: str, instants: Instants, position: int) -> list[str]:
    """The staging tables that differ when the cycle is staged again straight from the store."""
    full = build / "full_staging.duckdb"
    try:
        stage_cycle(store, full, cycle, instants, cache=None, upto=position)
        return compare_databases(build / "staging.duckdb", full, skip={"build_info"})
    finally:
        full.unlink(missing_ok=True)


def compare_databases(left: Path, right: Path, skip: set[str]) -> list[str]:
    """Tables whose rows differ between two DuckDB files (as multisets)."""
    with connect(left) as db:
        db.execute(f"ATTACH {sql_string(right)} AS other (READ_ONLY)")
        tables = [t for (t,) in db.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = current_database()").fetchall()]
        differing = []
        for table in sorted(set(tables) - skip):
            (count,) = db.execute(
                f"SELECT count(*) FROM ((SELECT * FROM {table} EXCEPT ALL SELECT * FROM other.{table})"
                f" UNION ALL (SELECT * FROM other.{table} EXCEPT ALL SELECT * FROM {table}))"
            ).fetchone()
            if count:
                differing.append(f"{table}: {count} rows differ")
        return differing
