"""Briefing packs as Dagster assets: one ``briefing_pack`` per cycle, after the snapshot is published.

``briefing_pack`` is partitioned by cycle (the same dynamic partitions,
``cycle``, as every projection asset: declared here by name, because importing
``pipelines.definitions`` would be circular). It depends on ``panel_snapshot``
and the Panel table assets, and writes the pack of the stage the cycle is in
(the first stage not signed off; or the stage named in its config) to
``$PLANNING_HOME/packs/<cycle>/<stage>.html`` and ``.pdf``, reading the
published snapshot only. Its metadata holds the paths and the (on, as_of) the
pack was built at.

Without Chromium the HTML is still written and the run succeeds; the missing
PDF is reported in the metadata (``pdf_error``) and the run's log.

(No ``from __future__ import annotations``: Dagster reads these annotations.)
"""

from typing import Optional

import dagster as dg

from events.home import PlanningHome
from projections.tables import PANEL_TABLES
from pipelines.resources import PlanningHomeResource

cycles = dg.DynamicPartitionsDefinition(name="cycle")


class PackConfig(dg.Config):
    stage: Optional[str] = None  # default: the stage the cycle is in
    synthetic: bool = False  # label every page and figure as synthetic (the demo's data)
    pdf: bool = True


@dg.asset(
    partitions_def=cycles,
    deps=[dg.AssetKey("panel_snapshot"), *(dg.AssetKey(name) for name in PANEL_TABLES)],
    group_name="publication",
    kinds={"html", "pdf"},
    description="The Planning Panel's briefing pack for the stage the cycle is in: one self-contained HTML file "
    "(inline CSS and SVG, opens offline) and its PDF, from the published snapshot.",
)
def briefing_pack(context: dg.AssetExecutionContext, config: PackConfig, planning: PlanningHomeResource) -> dg.MaterializeResult:
    from projections.packs import write_pack

    home = planning.home
    written = write_pack(
        home.projections, context.partition_key, config.stage, None,
        synthetic=config.synthetic, pdf=config.pdf, packs_root=packs_root(home),
    )
    if written.pdf_error:
        context.log.warning(f"the PDF of the {written.stage} pack was not written: {written.pdf_error}")
    metadata = {
        "stage": written.stage,
        "html": dg.MetadataValue.path(str(written.html)),
        "on": written.on.isoformat(),
        "as_of": written.as_of.isoformat(),
        "synthetic": config.synthetic,
    }
    if written.pdf:
        metadata["pdf"] = dg.MetadataValue.path(str(written.pdf))
    if written.pdf_error:
        metadata["pdf_error"] = written.pdf_error
    return dg.MaterializeResult(metadata=metadata)


build_packs = dg.define_asset_job(
    "build_packs",
    selection=dg.AssetSelection.assets(briefing_pack),
    executor_def=dg.in_process_executor,
    description="Write the briefing pack (HTML and PDF) of the stage each cycle is in, from the published snapshot.",
)

assets: list[dg.AssetsDefinition] = [briefing_pack]
jobs: list = [build_packs]


def packs_root(home: PlanningHome):
    return home.root / "packs"


class PackFailed(RuntimeError):
    pass


def write_current_pack(home: PlanningHome, cycle: str, *, synthetic: bool, stage: Optional[str] = None) -> dict:
    """Materialize ``briefing_pack`` for one cycle through Dagster (recorded in $PLANNING_HOME/dagster); its metadata."""
    import warnings

    from pipelines.builds import QUIET
    from pipelines.dagster_instance import use_planning_dagster_home

    use_planning_dagster_home(home)
    warnings.filterwarnings("ignore", module="dagster")
    from pipelines.definitions import defs

    with dg.DagsterInstance.get() as instance:
        if not instance.has_dynamic_partition(cycles.name, cycle):
            instance.add_dynamic_partitions(cycles.name, [cycle])
        result = defs.resolve_job_def("build_packs").execute_in_process(
            partition_key=cycle,
            instance=instance,
            run_config={
                "ops": {"briefing_pack": {"config": {"stage": stage, "synthetic": synthetic}}},
                "resources": {"planning": {"config": {"root": str(home.root)}}},
                **QUIET,
            },
            raise_on_error=False,
        )
    if not result.success:
        raise PackFailed(f"the briefing pack of {cycle} was not written (run {result.run_id}): see the run in `planning ui`")
    for event in result.all_events:
        if event.event_type_value == "ASSET_MATERIALIZATION":
            metadata = event.event_specific_data.materialization.metadata
            return {key: value.value for key, value in metadata.items()} | {"run_id": result.run_id}
    raise PackFailed(f"the briefing pack run of {cycle} materialized nothing (run {result.run_id})")
