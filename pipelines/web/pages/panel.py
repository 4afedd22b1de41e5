"""The Panel's own pages besides the tables: the stage dashboard, the briefing packs, the snapshot
picker and the SQL page.

The dashboard is the pack's own timetable section (``projections.packs.content.timetable``): the
same chart and the same stage table, so the site and the paper never disagree. It reads the asked
cycle's file only, and its content is kept per published snapshot (``pipelines.web.pages.kept``). A pack is served as
a download, HTML or PDF, exactly as `planning pack` writes it (docs/decisions.md, "The Panel's
pages"). The SQL page runs ``projections.reading.panel_sql.run_panel_sql``, the hardened path of
`planning sql`, with its own limits.
"""

from __future__ import annotations

import asyncio
import tempfile
from functools import partial
from pathlib import Path
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import Response

from events.contract.vocabulary import STAGES
from projections.packs import PackError, render_pack
from projections.packs.content import Reader, current_stage, timetable
from projections.packs.document import Figure, Table
from projections.packs.labels import STAGE_WHAT, stage_label
from projections.reading.panel_sql import (
    DEFAULT_LIMIT, DEFAULT_TIMEOUT, MAX_RESULT_BYTES, PanelSqlError, run_panel_sql, truncation_note,
)
from projections.reading.snapshots import UnknownSnapshot, listed_snapshots
from pipelines.web.audience import Page
from pipelines.web.pages import shown
from pipelines.web.pages.snapshot import Refused, chosen_snapshot, home_of, reading, reading_asked_cycle, snapshot_names
from pipelines.web.pages.view import Content, answering, content, in_page_thread, kept_page, page

MAX_SQL_LENGTH = 20_000  # characters of one query typed into the page


def dashboard(request: Request) -> Response:
    return kept_page(request, "/panel", partial(_dashboard_content, request))


def _dashboard_content(request: Request) -> Content:
    with reading_asked_cycle(request) as snapshot:
        cycle = snapshot.cycle(request.query_params.get("cycle") or None)
        reader = Reader(snapshot.db)
        stage = current_stage(reader, cycle)
        section = timetable(reader, cycle, stage)
        figure = next(block for block in section.blocks if isinstance(block, Figure))
        table = next(block for block in section.blocks if isinstance(block, Table))
        return content(request, "panel/dashboard_content.html", f"Stage dashboard, cycle {cycle}", {
            "synthetic": snapshot.synthetic, "snapshot": snapshot.name, "names": snapshot_names(request),
            "cycle": cycle, "cycles": snapshot.cycles(), "stage": stage_label(stage),
            "summary": [line.replace("This pack is for", "The cycle is at") for line in section.summary],
            "figure": figure, "table": table, "provenance": snapshot.provenance(cycle, "stage_status")})


def packs(request: Request) -> Response:
    with reading(request) as snapshot:
        cycle = snapshot.cycle(request.query_params.get("cycle") or None)
        stage = current_stage(Reader(snapshot.db), cycle)
        return page(request, "panel/packs.html", {
            "synthetic": snapshot.synthetic, "snapshot": snapshot.name, "cycle": cycle, "cycles": snapshot.cycles(),
            "current": stage, "stages": [(s, stage_label(s), STAGE_WHAT[s]) for s in STAGES]})


async def pack(request: Request) -> Response:
    cycle, stage, kind = (request.path_params[k] for k in ("cycle", "stage", "format"))
    if stage not in STAGES or kind not in ("html", "pdf"):
        raise Refused(404, f"a pack is <stage>.html or <stage>.pdf, for a stage of {', '.join(STAGES)}")
    name = chosen_snapshot(request)
    try:
        html, cycle, stage, _, _, _ = await asyncio.to_thread(render_pack, home_of(request).projections, cycle, stage,
                                                              snapshot=name)
    except UnknownSnapshot as unknown:
        raise Refused(404, str(unknown)) from None
    except PackError as error:
        raise Refused(404, str(error)) from None
    filename = f"{cycle}-{stage}.{kind}"
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    if kind == "html":
        return Response(html.encode("utf-8"), media_type="text/html; charset=utf-8", headers=headers)
    return Response(await asyncio.to_thread(_printed, html, stage), media_type="application/pdf", headers=headers)


def _printed(html: str, stage: str) -> bytes:
    from projections.packs.pdf import ChromiumError, print_pdf

    with tempfile.TemporaryDirectory(prefix="planning-pack-") as folder:
        source = Path(folder) / f"{stage}.html"
        source.write_text(html, encoding="utf-8")
        try:
            return print_pdf(source, Path(folder) / f"{stage}.pdf").read_bytes()
        except ChromiumError as failure:
            raise Refused(503, f"the PDF could not be printed ({failure}); the HTML pack is there meanwhile") from None


def snapshots(request: Request) -> Response:
    with reading(request) as snapshot:
        synthetic = snapshot.synthetic
    return page(request, "panel/snapshots.html", {
        "synthetic": synthetic, "snapshot": chosen_snapshot(request),
        "listed": listed_snapshots(home_of(request).projections)})


async def sql(request: Request) -> Response:
    context = {"query": "", "limit": 1_000, "result": None, "error": None, "note": None,
               "most": DEFAULT_LIMIT, "timeout": DEFAULT_TIMEOUT, "megabytes": MAX_RESULT_BYTES // (1024 * 1024)}
    status = 200
    if request.method == "POST":
        form = parse_qs((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
        context["query"] = (form.get("query") or [""])[0]
        status, context = await _run(request, context, (form.get("limit") or ["1000"])[0])
    return await in_page_thread(request, _sql_page, request, context, status)


def _sql_page(request: Request, context: dict, status: int) -> Response:
    with reading(request) as snapshot:
        context |= {"synthetic": snapshot.synthetic, "snapshot": snapshot.name}
    return page(request, "panel/sql.html", context, status_code=status)


async def _run(request: Request, context: dict, limit_text: str) -> tuple[int, dict]:
    query = context["query"]
    if not query.strip():
        return 400, context | {"error": "query: type a SELECT over the Panel tables"}
    if len(query) > MAX_SQL_LENGTH:
        return 400, context | {"error": f"query: at most {MAX_SQL_LENGTH:,} characters"}
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= DEFAULT_LIMIT:
        return 400, context | {"error": f"limit: a whole number of rows from 1 to {DEFAULT_LIMIT:,}"}
    limit = int(limit_text)
    try:
        result = await in_page_thread(request, partial(run_panel_sql, home_of(request).projections, query, limit=limit,
                                                       timeout=DEFAULT_TIMEOUT, snapshot=chosen_snapshot(request)))
    except UnknownSnapshot as unknown:
        raise Refused(404, str(unknown)) from None
    except PanelSqlError as refused:
        return 400, context | {"limit": limit, "error": str(refused)}
    rows = [[shown.cell(value) for value in row] for row in result.rows]
    note = truncation_note(result, limit)
    return 200, context | {"limit": limit, "result": {"columns": result.columns, "rows": rows},
                           "note": note.replace("with --limit N", "with the row limit") if note else None}


ROUTES: list[Page] = [
    Page("/panel", answering(dashboard), audience="panel", name="dashboard"),
    Page("/panel/packs", answering(packs), audience="panel", name="packs"),
    Page("/panel/packs/{cycle}/{stage}.{format}", answering(pack), audience="panel", name="pack"),
    Page("/panel/snapshots", answering(snapshots), audience="panel", name="snapshots"),
    Page("/panel/sql", answering(sql), audience="panel", methods=("GET", "POST"), name="sql"),
]
