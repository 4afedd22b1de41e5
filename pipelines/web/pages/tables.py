"""The Panel's tables on the site: every one, filtered with a GET form, and downloaded as shown.

A table page reads one cycle of one Panel table (``projections.tables.PANEL_TABLES``; never
``dead_letters``) from the chosen snapshot, in the table's own order, filtered on whichever of
``FILTERS`` the table has. Its download (csv or xlsx, ``Content-Disposition: attachment``) holds
the same rows and columns, each cell as the page shows it (``shown.cell``): a spreadsheet cell that
would run as a formula is neutralised as `planning export` does (``projections.reading.cells``).
A filter value the table does not hold is refused with 400, naming the field and what it may be.
A page shows at most ``PAGE_ROWS`` rows and says how many it left out (``priority_evidence`` holds
hundreds of thousands a cycle at national scale); its download holds every row the filters keep.

A table page and a download read the asked cycle's file only, and what they show is kept per published
snapshot and query (``pipelines.web.pages.kept``): the page's header, the reader's own, is rendered per request.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from functools import partial
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from projections.packs.labels import borough_name, stage_label, theme_label
from projections.reading.cells import is_formula_like, spreadsheet_text
from projections.tables import PANEL_TABLES, PanelTable
from pipelines.web.audience import Page
from pipelines.web.pages import shown
from pipelines.web.pages.snapshot import Provenance, Refused, Snapshot, reading, reading_asked_cycle
from pipelines.web.pages.view import Content, Download, answering, asked, content, kept_content, kept_page, page

# The columns a table may be filtered on, in the order the form shows them.
FILTERS = ("borough", "scope", "rank", "kind", "theme", "wave", "channel", "dimension", "indicator", "round", "stage",
           "group_kind")
PAGE_ROWS = 1_000  # more than a reader scrolls; the rest are filtered to or downloaded
DOWNLOADS = {"csv": "text/csv; charset=utf-8",
             "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


@dataclass(frozen=True)
class Filter:
    column: str
    chosen: str | None
    choices: list[tuple[str, str]]  # (value, label)


@dataclass
class Shown:
    """One cycle of one table, filtered, as its page shows it."""

    table: PanelTable
    cycle: str
    filters: list[Filter]
    columns: list[str]
    rows: list[list[Any]]  # cells as shown.cell gives them
    provenance: Provenance
    synthetic: bool

    def on_page(self) -> list[list[Any]]:
        return self.rows[:PAGE_ROWS]

    @property
    def left_off(self) -> int:
        return max(0, len(self.rows) - PAGE_ROWS)


def table_of(name: str) -> PanelTable:
    if name not in PANEL_TABLES:
        raise Refused(404, f"there is no Panel table called {name!r}; the tables are {', '.join(PANEL_TABLES)}")
    return PANEL_TABLES[name]


def label(column: str, value: Any) -> str:
    if column in ("borough", "scope"):
        return f"{borough_name(value)} ({value})" if value != "LONDON" else "London"
    if column == "theme":
        return theme_label(value)
    if column == "stage":
        return stage_label(value)
    return str(value)


def shown_table(request: Request, snapshot: Snapshot, table: PanelTable) -> Shown:
    cycle = snapshot.cycle(request.query_params.get("cycle") or None)
    names = [column.name for column in table.columns]
    filters, where, values = [], ["cycle = ?"], [cycle]
    for column in (c for c in FILTERS if c in names):
        present = [r["value"] for r in snapshot.rows(
            f'SELECT DISTINCT "{column}" AS value FROM {table.name} WHERE cycle = ? AND "{column}" IS NOT NULL ORDER BY 1',
            cycle)]
        chosen = request.query_params.get(column) or None
        if chosen is not None:
            if chosen not in {str(v) for v in present}:
                raise Refused(400, f"{column}: {chosen!r} is not in {table.name} for cycle {cycle}; "
                                         f"choose one of {', '.join(str(v) for v in present)}, or leave it empty for all")
            where.append(f'CAST("{column}" AS VARCHAR) = ?')
            values.append(chosen)
        filters.append(Filter(column, chosen, [(str(v), label(column, v)) for v in present]))
    cursor = snapshot.db.execute(
        f"SELECT {', '.join(chr(34) + n + chr(34) for n in names)} FROM {table.name} WHERE {' AND '.join(where)} "
        f"ORDER BY {table.order_by}", values)
    rows = [[shown.cell(value) for value in row] for row in cursor.fetchall()]
    return Shown(table, cycle, filters, names, rows, snapshot.provenance(cycle, table.name), snapshot.synthetic)


def index(request: Request) -> Response:
    with reading(request) as snapshot:
        return page(request, "panel/tables.html", {
            "synthetic": snapshot.synthetic, "snapshot": snapshot.name, "tables": list(PANEL_TABLES.values()),
            "cycle": snapshot.cycle(None)})


def table_page(request: Request) -> Response:
    table = table_of(request.path_params["table"])
    return kept_page(request, "/panel/tables", partial(_table_content, request, table))


def _table_content(request: Request, table: PanelTable) -> Content:
    with reading_asked_cycle(request) as snapshot:
        view = shown_table(request, snapshot, table)
        return content(request, "panel/table_content.html", f"{table.name}, cycle {view.cycle}", {
            "view": view, "synthetic": view.synthetic, "snapshot": snapshot.name, "cycles": snapshot.cycles(),
            "query": {key: value for key, value in request.query_params.items() if value}})


def download(request: Request) -> Response:
    table = table_of(request.path_params["table"])
    kind = request.path_params["format"]
    if kind not in DOWNLOADS:
        raise Refused(404, f"a table downloads as {' or '.join(DOWNLOADS)}, not {kind!r}")
    made = kept_content(request).made(("download", asked(request)), partial(_download, request, table, kind))
    assert isinstance(made, Download)
    return Response(made.body, media_type=DOWNLOADS[kind],
                    headers={"Content-Disposition": f'attachment; filename="{made.filename}"'})


def _download(request: Request, table: PanelTable, kind: str) -> Download:
    with reading_asked_cycle(request) as snapshot:
        view = shown_table(request, snapshot, table)
    body = as_csv(view) if kind == "csv" else as_xlsx(view)
    return Download(body, "-".join([table.name, view.cycle, *(f.chosen for f in view.filters if f.chosen)]) + f".{kind}")


def as_csv(view: Shown) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(view.columns)
    writer.writerows([[spreadsheet_text(v) if isinstance(v, str) else "" if v is None else v for v in row]
                      for row in view.rows])
    return out.getvalue().encode("utf-8")


def as_xlsx(view: Shown) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    sheet = book.active
    sheet.title = view.table.name[:31]
    p = view.provenance
    about = [f"{view.table.name}, cycle {p.cycle}; built at on = {p.on.isoformat()}, as_of = {shown.cell(p.as_of)}"
             + "".join(f"; {f.column} = {f.chosen}" for f in view.filters if f.chosen)]
    if view.synthetic:
        about.append("SYNTHETIC DATA: generated for demonstration and testing; it describes no real person.")
    for line in about:
        sheet.append([line])
    sheet.append(view.columns)
    for cell in sheet[sheet.max_row]:
        cell.font = Font(bold=True)
    for row in view.rows:
        sheet.append(row)
        for cell in sheet[sheet.max_row]:
            if isinstance(cell.value, str):
                cell.data_type = "s"  # text is never a formula
                cell.quotePrefix = is_formula_like(cell.value)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


ROUTES: list[Page] = [
    Page("/panel/tables", answering(index), audience="panel", name="tables"),
    Page("/panel/tables/{table}.{format}", answering(download), audience="panel", name="table_download"),
    Page("/panel/tables/{table}", answering(table_page), audience="panel", name="table"),
]
