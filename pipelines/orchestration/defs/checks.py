"""Asset checks that guard publication.

Each check is blocking: when it fails, ``panel_snapshot`` does not run and
readers keep the previous snapshot. Each check is a SQL query over the run's
own panel file that returns the offending rows; the check passes when there
are none.
"""

from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from events.store import EventStore
from pipelines.orchestration.defs.resources import PlanningHomeResource
from projections.staging import Instants, connect, stage_cycle


@dataclass(frozen=True)
class PanelCheck:
    table: str
    name: str
    description: str
    offending_rows: str  # SQL returning one row per violation


PANEL_CHECKS: tuple[PanelCheck, ...] = (
    PanelCheck(
        "stage_status", "every_stage_present", "The eight stages of the timetable, each exactly once.",
        "SELECT 'stages: ' || count(DISTINCT stage) || ' distinct of ' || count(*) FROM stage_status"
        " HAVING count(DISTINCT stage) <> 8 OR count(*) <> 8",
    ),
    PanelCheck(
        "consultation_coverage", "every_borough_present", "An 'all' row for each of the 32 boroughs.",
        "SELECT 'boroughs with an all row: ' || count(*) FROM consultation_coverage WHERE channel = 'all'"
        " HAVING count(DISTINCT borough) <> 32 OR count(*) <> 32",
    ),
    PanelCheck(
        "cdrp_audits", "every_borough_present", "One row for each of the 32 boroughs, received or not.",
        "SELECT 'boroughs: ' || count(*) FROM cdrp_audits HAVING count(DISTINCT borough) <> 32 OR count(*) <> 32",
    ),
    PanelCheck(
        "feedback_log", "every_borough_present", "Both rounds for each of the 32 boroughs.",
        "SELECT 'round ' || round || ': ' || count(*) || ' boroughs' FROM (SELECT 1 AS round UNION ALL SELECT 2) AS r"
        " LEFT JOIN feedback_log USING (round) GROUP BY round HAVING count(DISTINCT borough) <> 32",
    ),
    PanelCheck(
        "inclusion", "every_scope_present", "Every group of every dimension for the 32 boroughs and LONDON.",
        "SELECT 'cells: ' || count(*) FROM inclusion HAVING count(DISTINCT scope) <> 33 OR count(*) <> 33 * 16",
    ),
    PanelCheck(
        "inclusion", "no_small_cell_shown", "No unsuppressed cell under 10 respondents (zero included).",
        "SELECT scope || ' ' || dimension || '=' || \"group\" FROM inclusion WHERE NOT suppressed AND (respondents IS NULL OR respondents < 10)",
    ),
    PanelCheck(
        "inclusion", "no_lone_suppressed_cell",
        "No scope × dimension with exactly one suppressed cell (it could be recovered by subtraction).",
        "SELECT scope || ' ' || dimension FROM inclusion GROUP BY scope, dimension HAVING count(*) FILTER (WHERE suppressed) = 1",
    ),
    PanelCheck(
        "survey_indicators", "estimates_within_0_100", "Every shown estimate and interval lies within [0, 100], low ≤ estimate ≤ high.",
        "SELECT wave || ' ' || scope || ' ' || indicator FROM survey_indicators WHERE NOT suppressed AND NOT"
        " (ci_low BETWEEN 0 AND 100 AND ci_high BETWEEN 0 AND 100 AND ci_low <= weighted_pct AND weighted_pct <= ci_high)",
    ),
    PanelCheck(
        "survey_indicators", "no_small_base_shown", "No estimate shown on fewer than 30 answers.",
        "SELECT wave || ' ' || scope || ' ' || indicator FROM survey_indicators WHERE unweighted_n < 30 AND weighted_pct IS NOT NULL",
    ),
    PanelCheck(
        "theme_ranking", "every_scope_present", "Every theme for the 32 boroughs and LONDON, ranked 1..21.",
        "SELECT 'rows: ' || count(*) FROM theme_ranking HAVING count(*) <> 33 * 21 OR count(DISTINCT scope || '/' || rank) <> 33 * 21",
    ),
)


def run_dir(projections_dir: Path, run_id: str) -> Path:
    """The build directory of a run (builds/<cycle>/<run_id>)."""
    matches = list((projections_dir / "builds").glob(f"*/{run_id}"))
    if len(matches) != 1:
        raise RuntimeError(f"no build directory for run {run_id}")
    return matches[0]


def _check(spec: PanelCheck) -> dg.AssetChecksDefinition:
    @dg.asset_check(asset=spec.table, name=spec.name, description=spec.description, blocking=True)
    def _run(context: dg.AssetCheckExecutionContext, planning: PlanningHomeResource) -> dg.AssetCheckResult:
        panel = run_dir(planning.home.projections, context.run.run_id) / "panel.duckdb"
        with connect(panel) as db:
            violations = [row[0] for row in db.execute(spec.offending_rows).fetchall()]
        return dg.AssetCheckResult(
            passed=not violations,
            metadata={"violations": len(violations), "first": violations[0] if violations else ""},
        )

    return _run


def panel_checks() -> list[dg.AssetChecksDefinition]:
    return [_check(spec) for spec in PANEL_CHECKS] + [full_rebuild_matches]


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
        with EventStore(planning.home.store) as store:
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
        db.execute(f"ATTACH '{right}' AS other (READ_ONLY)")
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
