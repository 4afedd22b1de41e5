"""The check that guards the evidence every Panel table is built from.

``full_rebuild_matches`` is blocking: when it fails, no Panel table is built
from the run's evidence, ``panel_snapshot`` does not run and readers keep the
previous snapshot. The Panel tables' own checks are SQL files beside each table
(``projections/sql/checks/<table>__<check>.sql``, listed in its ``<table>.yml``)
and run in the tables' step (``defs.assets.panel_tables_asset``).

A check runs once per run, whatever the number of cycles the run builds
(Dagster's check results are per run, not per partition): it checks every
cycle of the run, passes only when each passes, and its metadata names the
first offending cycle. So one cycle failing stops the publication of every
cycle of its run; ``runs.build`` then builds each cycle on its own, so that
those which pass are published.
"""

from pathlib import Path

import dagster as dg

from events.contract.instants import Instants
from events.storage.backends import Store, open_store
from events.storage.store import EventStore
from pipelines.orchestration.defs.assets import check_result
from pipelines.orchestration.defs.resources import PlanningHomeResource
from projections.connection import connect, sql_string
from projections.building import event_cache
from projections.building.staging import stage_cycle


def run_builds(context: dg.AssetCheckExecutionContext, planning: PlanningHomeResource) -> dict[str, Path]:
    """The build directory of each cycle the run builds (builds/<cycle>/<run_id>); a check only reads them."""
    return {cycle: planning.build_path(cycle, context.run.run_id) for cycle in context.partition_keys}


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
    builds = run_builds(context, planning)
    staged_at = {}  # each cycle's (on_date, as_of, store_position), as its staging recorded them
    for cycle, build in builds.items():
        with connect(build / "staging.duckdb", read_only=True) as db:
            staged_at[cycle] = db.execute("SELECT on_date, as_of, store_position FROM build_info").fetchone()
    with open_store(planning.home.store) as store:
        if isinstance(store, EventStore):  # every cycle of the run staged from the cache at one position
            (position,) = {position for _, _, position in staged_at.values()}
            differences = {"the cache": event_cache.cache_matches_store(store, planning.home.projections, builds, position)}
        else:
            differences = {cycle: _staged_again_differs(store, builds[cycle], cycle, Instants(on_date, as_of), position)
                           for cycle, (on_date, as_of, position) in staged_at.items()}
    return check_result(differences, "differences")


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
    with connect(left, read_only=True) as db:
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
