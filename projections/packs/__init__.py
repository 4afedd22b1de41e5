"""Briefing packs: one self-contained HTML file per stage of a cycle, and its PDF.

``write_pack`` reads the published snapshot only (``projections.reading.snapshots.open_reader``:
never the event store, never the dead letters), builds the stage's sections
(``content``), renders them as a committee paper (``document``, charts in
``svg``) and prints the PDF with headless Chromium (``pdf``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from events.contract.vocabulary import STAGES
from projections.packs import content, document
from projections.packs.content import PackError, Reader, current_stage, plan_title
from projections.packs.labels import STAGE_WHAT, STATUS_LABELS, stage_label, stage_number, window
from projections.reading.snapshots import open_reader

__all__ = ["PackError", "WrittenPack", "render_pack", "write_pack", "pack_dir"]


@dataclass(frozen=True)
class WrittenPack:
    cycle: str
    stage: str
    on: date
    as_of: datetime
    html: Path
    pdf: Path | None
    pdf_error: str | None = None
    synthetic: bool = False  # built from synthetic data: labelled on every page


def pack_dir(packs_root: Path, cycle: str) -> Path:
    return packs_root / cycle


def _reader(projections_dir: Path, snapshot: str | None = None) -> Reader:
    return Reader(open_reader(projections_dir, snapshot=snapshot))


def _cycle(r: Reader, cycle: str | None) -> str:
    published = r.cycles()
    if cycle is None:
        if not published:
            raise PackError("no cycle is published yet: run `planning build` first")
        return published[-1]
    if cycle not in published:
        raise PackError(f"cycle {cycle} is not in the published snapshot (published: {', '.join(published) or 'none'})")
    return cycle


def render_pack(
    projections_dir: Path, cycle: str | None, stage: str | None, *, snapshot: str | None = None
) -> tuple[str, str, str, date, datetime, bool]:
    """(html, cycle, stage, on, as_of, synthetic) of the pack, from the published snapshot (or the named
    ``snapshot``), which says whether its data is synthetic (``build_info.synthetic``): no caller can label
    or unlabel it."""
    r = _reader(projections_dir, snapshot)
    try:
        cycle = _cycle(r, cycle)
        stage = stage or current_stage(r, cycle)
        if stage not in STAGES:
            raise PackError(f"unknown stage {stage!r}; stages: {', '.join(STAGES)}")
        on, as_of = content.as_of_of(r, cycle)
        row = next((x for x in content.stage_rows(r, cycle) if x["stage"] == stage), None)
        subtitle = f"Cycle {cycle} · stage {stage_number(stage)} of {len(STAGES)}: {stage_label(stage)} ({STAGE_WHAT[stage]})"
        if row:
            subtitle += f" · window {window(row['opens_on'], row['due_on'])} · {STATUS_LABELS[row['status']].lower()}"
        pack = document.Pack(
            title=f"{plan_title(cycle)}: {stage_label(stage)}",
            subtitle=subtitle, cycle=cycle, stage=stage, on=on, as_of=as_of, synthetic=r.synthetic,
            sections=content.sections_for(r, cycle, stage),
            footer=f"{plan_title(cycle)} · {stage_label(stage)} briefing pack · on {on.isoformat()}"
                   + (" · SYNTHETIC DATA" if r.synthetic else ""),
        )
        return document.render(pack), cycle, stage, on, as_of, r.synthetic
    finally:
        r.db.close()


def write_pack(
    projections_dir: Path, cycle: str | None, stage: str | None, to: Path | None = None, *,
    pdf: bool = True, packs_root: Path | None = None, snapshot: str | None = None,
) -> WrittenPack:
    """Write ``<stage>.html`` (and ``<stage>.pdf``) into ``to`` (default ``packs_root/<cycle>``; a named
    snapshot's pack under ``packs_root/snapshots/<name>/``, never over the current one)."""
    from projections.packs.pdf import ChromiumError, print_pdf

    html, cycle, stage, on, as_of, synthetic = render_pack(projections_dir, cycle, stage, snapshot=snapshot)
    if to is None:
        if packs_root is None:
            raise PackError("say where to write the pack")
        to = pack_dir(packs_root if snapshot is None else packs_root / "snapshots" / snapshot, cycle)
    to.mkdir(parents=True, exist_ok=True)
    html_path = to / f"{stage}.html"
    temporary = to / f".{stage}.html.tmp"
    temporary.write_text(html, encoding="utf-8")
    os.replace(temporary, html_path)
    pdf_path, error = None, None
    if pdf:
        try:
            pdf_path = print_pdf(html_path, to / f"{stage}.pdf")
        except ChromiumError as failure:
            error = str(failure)
    return WrittenPack(cycle, stage, on, as_of, html_path, pdf_path, error, synthetic)
