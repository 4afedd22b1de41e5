"""Briefing packs as Dagster assets: one ``briefing_pack`` per cycle, after the snapshot is published.

``briefing_pack`` is partitioned by cycle, as every projection asset. It
depends on ``panel_snapshot`` and the Panel table assets, and writes the pack of the stage the cycle is in
(the first stage not signed off; or the stage named in its config) to
``$PLANNING_HOME/packs/<cycle>/<stage>.html`` and ``.pdf``, reading the
published snapshot only. Its metadata holds the paths, the (on, as_of) the
pack was built at and whether its data is synthetic (the snapshot says so, not
the config; a synthetic pack's run is tagged too).

Packs are written on demand, not by every build (a PDF takes Chromium
seconds). A pack `planning pack` writes in its place is recorded as a
materialization of the cycle's partition too (``runs.record_pack``), so a
partition shown as missing is a cycle with no pack, never a pack written
outside Dagster.

Without Chromium the HTML is still written and the run succeeds; the missing
PDF is reported in the metadata (``pdf_error``) and the run's log.

(No ``from __future__ import annotations``: Dagster reads these annotations.)
"""

from typing import Optional

import dagster as dg

from projections.packs import write_pack
from pipelines.orchestration.defs.assets import TABLE_KEYS, panel_snapshot
from pipelines.orchestration.defs.partitions import cycles
from pipelines.orchestration.defs.resources import PlanningHomeResource
from pipelines.orchestration.defs.synthetic import label_run


class PackConfig(dg.Config):
    stage: Optional[str] = None  # default: the stage the cycle is in
    pdf: bool = True


@dg.asset(
    partitions_def=cycles,
    deps=[panel_snapshot, *TABLE_KEYS],
    group_name="publication",
    kinds={"html", "pdf"},
    description="The Planning Panel's briefing pack for the stage the cycle is in: one self-contained HTML file "
    "(inline CSS and SVG, opens offline) and its PDF, from the published snapshot, in $PLANNING_HOME/packs/<cycle>. "
    "Written on demand (the build_packs job, `planning pack`, the demo), and recorded here whoever wrote it: "
    "a cycle shown as missing has no pack yet (`planning pack --cycle CYCLE` writes it).",
)
def briefing_pack(context: dg.AssetExecutionContext, config: PackConfig, planning: PlanningHomeResource) -> dg.MaterializeResult:
    home = planning.home
    written = write_pack(
        home.projections, context.partition_key, config.stage, None,
        pdf=config.pdf, packs_root=home.packs,
    )
    label_run(context, written.synthetic)
    if written.pdf_error:
        context.log.warning(f"the PDF of the {written.stage} pack was not written: {written.pdf_error}")
    metadata = {
        "stage": written.stage,
        "html": dg.MetadataValue.path(str(written.html)),
        "on": written.on.isoformat(),
        "as_of": written.as_of.isoformat(),
        "synthetic": written.synthetic,  # from the snapshot, as the pack's pages say
    }
    if written.pdf:
        metadata["pdf"] = dg.MetadataValue.path(str(written.pdf))
    if written.pdf_error:
        metadata["pdf_error"] = written.pdf_error
    return dg.MaterializeResult(metadata=metadata)
