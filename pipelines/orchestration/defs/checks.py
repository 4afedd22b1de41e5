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
from events.storage.backends import open_store
from pipelines.orchestration.defs.resources import PlanningHomeResource
from projections.connection import connect, sql_string
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
    description="Staging the cycle straight from the store's segments (a full rebuild) gives exactly the "
    "incremental evidence: every staging table equal, row for row. Every Panel table is a pure function of it.",
)
def full_rebuild_matches(context: dg.AssetCheckExecutionContext, planning: PlanningHomeResource) -> dg.AssetCheckResult:
    build = run_dir(planning.home.projections, context.run.run_id)
    full = build / "full_staging.duckdb"
    with connect(build / "staging.duckdb") as db:
        cycle, on_date, as_of, position = db.execute("SELECT cycle, on_date, as_of, store_position FROM build_info").fetchone()
    try:
        with open_store(planning.home.store) as store:
            stage_cycle(store, full, cycle, Instants(on_date, as_of), cache=None, upto=position)
        differences = compare_databases(build / "staging.duckdb", full, skip={"build_info"})
    finally:
        full.unlink(missing_ok=True)
    return dg.AssetCheckResult(
        passed=not differences,
        metadata={"tables_differing": len(differences), "first": differences[0] if differences else ""},
    )


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
