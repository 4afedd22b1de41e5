"""`planning export`: a cycle's Panel tables as files others can open, with the columns explained.

Every Panel table (``projections.tables.PANEL_TABLES``; never ``dead_letters``)
of one cycle, read from the published snapshot through
``projections.reading.snapshots.open_reader``, is written as CSV, Parquet or one xlsx
workbook, beside a ``README.md`` that documents every column. Each table and
column is described once, in its schema file beside its SQL
(``projections/sql/<table>.yml``); the README and the xlsx README sheet read
the descriptions from there. Tables built from synthetic data say so at the
top of the README and of the README sheet (``build_info.synthetic``).

Formats:

* ``csv``: one file per table, UTF-8, a header row; null is an empty field,
  lists are JSON arrays, dates and times ISO-8601 (times in UTC), booleans
  ``true``/``false``.
* ``parquet``: one file per table with the snapshot's own column types
  (lists stay lists), written by DuckDB's own ``COPY … (FORMAT parquet)`` from
  a private in-memory database that holds only the exported rows.
* ``xlsx``: one workbook, a ``README`` sheet (the build and every column's
  meaning) and one sheet per table. Lists are joined with ``; ``; a list
  longer than a spreadsheet cell can hold (32,767 characters, e.g. the evidence
  ids of a priority) is written one item per row on its own sheet, and the cell
  says where.

What the files may hold (``projections.reading.cells``): a CSV or xlsx file
is opened in a spreadsheet, so a text cell that a spreadsheet would run as a
formula (``=``, ``+``, ``-``, ``@``, TAB, CR) is neutralised, in CSV by a
leading apostrophe and in xlsx by writing the cell as text with Excel's own
quote prefix, and control characters are written as ``\\xNN`` escapes
(xlsx cannot hold them at all). Numbers stay numbers. Parquet is a data
format and carries every value intact.

The export never overwrites a file silently: if a file it would write
already exists, it refuses before writing anything, unless ``overwrite`` is
given. A target it cannot write (a file, ``/dev/null``, ``/proc``, a
read-only or full disk) is refused with :class:`CannotWriteExport`, and no
half-written file is left behind.
"""

from __future__ import annotations

import csv
import errno
import io
import json
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import duckdb

from projections.connection import connect
from projections.reading.cells import is_formula_like, spreadsheet_text, visible
from projections.reading.snapshots import open_reader
from projections.reading.synthetic import EXPLANATION, LABEL, NOTE
from projections.tables import PANEL_TABLES

FORMATS = ("csv", "parquet", "xlsx")
XLSX_CELL_LIMIT = 32_767

BUILD_INFO_DOCS: dict[str, str] = {
    "on_date": "`on`: the calendar date the timetable was read at; events after the end of that day (UTC) are left out.",
    "as_of": "`as_of`: the knowledge cutoff; events recorded later are left out.",
    "built_at": "When the build ran.",
    "store_position": "How many events the store held when the build read it.",
    "synthetic": "`true` when the events behind these tables are synthetic (generated for demonstration and testing).",
}


class ExportError(RuntimeError):
    pass


class CannotWriteExport(ExportError):
    """The target cannot be written: not a directory, a file would be overwritten, or the disk refused."""


@dataclass
class TableData:
    name: str
    columns: list[str]
    types: list[str]
    rows: list[tuple[Any, ...]]


@dataclass
class ExportResult:
    cycle: str
    format: str
    directory: Path
    files: list[Path] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)

    @property
    def readme(self) -> Path:
        return self.directory / "README.md"


def read_cycle(
    projections_dir: Path, cycle: str, snapshot: str | None = None
) -> tuple[dict[str, Any], dict[str, TableData]]:
    """The cycle's build_info and every Panel table, from the published snapshot (or the named ``snapshot``)."""
    db = open_reader(projections_dir, snapshot=snapshot)
    try:
        info_cursor = db.execute("SELECT * FROM build_info WHERE cycle = ?", [cycle])
        info_row = info_cursor.fetchone()
        if info_row is None:
            known = [r[0] for r in db.execute("SELECT cycle FROM build_info ORDER BY cycle").fetchall()]
            raise ExportError(f"cycle {cycle} is not in the published snapshot (published: {', '.join(known) or 'none'})")
        info = dict(zip([d[0] for d in info_cursor.description], info_row))
        tables = {}
        for name, table in PANEL_TABLES.items():
            described = db.execute(f"DESCRIBE {name}").fetchall()
            cursor = db.execute(f"SELECT * FROM {name} WHERE cycle = ? ORDER BY {table.order_by}", [cycle])
            tables[name] = TableData(name, [c[0] for c in described], [c[1] for c in described], cursor.fetchall())
        return info, tables
    finally:
        db.close()


def export_cycle(
    projections_dir: Path, cycle: str, fmt: str, directory: Path, *, overwrite: bool = False, snapshot: str | None = None
) -> ExportResult:
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    info, tables = read_cycle(projections_dir, cycle, snapshot)
    result = ExportResult(cycle, fmt, directory, rows={n: len(t.rows) for n, t in tables.items()})
    planned = export_files(cycle, fmt, directory, tables)
    _check_target(directory, planned + [result.readme], overwrite)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        if fmt == "csv":
            result.files = [_write_csv(directory / f"{name}.csv", table) for name, table in tables.items()]
        elif fmt == "parquet":
            result.files = _write_parquet(directory, tables)
        else:
            result.files = [_write_xlsx(directory / f"panel-{cycle}.xlsx", cycle, info, tables)]
        _replace_atomically(result.readme, lambda out: out.write(readme_text(cycle, fmt, info, tables, result.files).encode("utf-8")))
    except OSError as error:
        raise CannotWriteExport(f"cannot write to {directory}: {_reason(error)}; nothing half-written was left there") from None
    return result


def export_files(cycle: str, fmt: str, directory: Path, tables: dict[str, TableData]) -> list[Path]:
    """The data files an export writes (the README aside)."""
    if fmt == "xlsx":
        return [directory / f"panel-{cycle}.xlsx"]
    return [directory / f"{name}.{fmt}" for name in tables]


def _check_target(directory: Path, files: list[Path], overwrite: bool) -> None:
    """Refuse, before writing anything, a target that is not a directory or files that would be overwritten."""
    if directory.exists() and not directory.is_dir():
        raise CannotWriteExport(f"{directory} is not a directory; choose a directory for --to (it is created if missing)")
    existing = [f for f in files if f.exists() or f.is_symlink()]
    if existing and not overwrite:
        names = ", ".join(f.name for f in existing)
        raise CannotWriteExport(
            f"{directory} already holds {names}; remove them or choose another directory "
            "(or pass --overwrite to replace them)"
        )
    unfit = [f for f in existing if not f.is_file() or f.is_symlink()]
    if unfit:
        raise CannotWriteExport(f"{unfit[0]} is not a regular file, so it is not replaced; remove it or choose another directory")


def _reason(error: OSError) -> str:
    if error.errno == errno.ENOSPC:
        return "the disk is full"
    if error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return "it is read-only or not ours to write"
    return error.strerror or str(error)


def _replace_atomically(path: Path, write: Any) -> Path:
    """Write ``path`` through a temporary file renamed over it, and remove the temporary file if writing fails."""
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        with open(temporary, "wb") as out:
            write(out)
        temporary.replace(path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


# --- csv -------------------------------------------------------------------------


def _csv_value(value: Any) -> str:
    if isinstance(value, str):
        return spreadsheet_text(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return _utc(value).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return visible(json.dumps([_json_item(v) for v in value], ensure_ascii=False))
    return str(value)


def _json_item(value: Any) -> Any:
    return value.isoformat() if isinstance(value, (date, datetime)) else value


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc) if moment.tzinfo else moment


def _write_csv(path: Path, table: TableData) -> Path:
    def write(out: Any) -> None:
        text = io.TextIOWrapper(out, encoding="utf-8", newline="")
        writer = csv.writer(text)
        writer.writerow(table.columns)
        writer.writerows([_csv_value(v) for v in row] for row in table.rows)
        text.flush()
        text.detach()

    return _replace_atomically(path, write)


# --- parquet -----------------------------------------------------------------------


def _write_parquet(directory: Path, tables: dict[str, TableData]) -> list[Path]:
    """A private in-memory DuckDB holds just these rows, and COPY writes them; the snapshot is never opened for writing."""
    files = []
    with connect() as db:
        db.execute("SET TimeZone = 'UTC'")
        for name, table in tables.items():
            columns = ", ".join(f'"{c}" {t}' for c, t in zip(table.columns, table.types))
            db.execute(f'CREATE TABLE "{name}" ({columns})')
            row_marks = "(" + ", ".join("?" for _ in table.columns) + ")"
            for start in range(0, len(table.rows), 256):  # batches of rows per statement: executemany is slow
                batch = table.rows[start:start + 256]
                db.execute(
                    f'INSERT INTO "{name}" VALUES ' + ", ".join(row_marks for _ in batch),
                    [value for row in batch for value in row],
                )
            path = directory / f"{name}.parquet"
            temporary = directory / f".{name}.parquet.tmp"
            try:
                db.execute(f"COPY \"{name}\" TO '{_sql_string(temporary)}' (FORMAT parquet)")
                temporary.replace(path)
            except (duckdb.Error, OSError) as error:
                temporary.unlink(missing_ok=True)
                if isinstance(error, OSError):
                    raise
                raise OSError(errno.EIO, f"writing {path.name} failed ({error})") from None
            files.append(path)
    return files


def _sql_string(path: Path) -> str:
    return str(path).replace("'", "''")


# --- xlsx --------------------------------------------------------------------------


def _xlsx_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return _utc(value).replace(tzinfo=None)  # spreadsheets have no time zones: UTC, as the README sheet says
    if isinstance(value, (list, tuple)):
        return visible("; ".join(str(_json_item(v)) for v in value))
    if isinstance(value, str):
        return visible(value)
    return value


def _append(sheet: Any, values: list[Any]) -> None:
    """One row; every text cell is text (never a formula), and a formula-like one carries Excel's quote prefix."""
    sheet.append(values)
    for cell in sheet[sheet.max_row]:
        if isinstance(cell.value, str):
            cell.data_type = "s"
            if is_formula_like(cell.value):
                cell.quotePrefix = True


def _write_xlsx(path: Path, cycle: str, info: dict[str, Any], tables: dict[str, TableData]) -> Path:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font

    bold = Font(bold=True)
    book = Workbook()
    about = book.active
    about.title = "README"
    about.append([f"Planning Panel tables for cycle {cycle}" + (f" ({LABEL})" if info.get("synthetic") else "")])
    about["A1"].font = Font(bold=True, size=14)
    about.append([NOTE] if info.get("synthetic") else [])
    if info.get("synthetic"):
        about["A2"].font = Font(bold=True, color="B3261E")
    about.append(["Built at", "value", "meaning"])
    for key, meaning in BUILD_INFO_DOCS.items():
        _append(about, [key, _xlsx_value(info.get(key)), meaning])
    about.append(["", "", "Times are UTC. Lists are joined with '; '. A blank cell is null."])
    about.append([])
    about.append(["table", "column", "type", "meaning"])
    header_row = about.max_row
    for cell in about[header_row]:
        cell.font = bold
    for cell in about[3]:
        cell.font = bold
    for name, table in tables.items():
        for column, kind in zip(table.columns, table.types):
            _append(about, [name, column, kind, PANEL_TABLES[name].column(column).description])
    about.column_dimensions["A"].width = 24
    about.column_dimensions["B"].width = 26
    about.column_dimensions["C"].width = 26
    about.column_dimensions["D"].width = 110
    for row in about.iter_rows(min_row=header_row + 1):
        row[3].alignment = Alignment(wrap_text=True, vertical="top")

    for name, table in tables.items():
        sheet = book.create_sheet(name[:31])
        sheet.append(table.columns)
        for cell in sheet[1]:
            cell.font = bold
        sheet.freeze_panes = "A2"
        list_columns = [i for i, t in enumerate(table.types) if t.endswith("[]")]
        overflow = {
            i for i in list_columns
            if any(row[i] is not None and len(_xlsx_value(row[i])) > XLSX_CELL_LIMIT for row in table.rows)
        }
        keys = [i for i, t in enumerate(table.types) if not t.endswith("[]")]
        for row in table.rows:
            values = []
            for i, value in enumerate(row):
                if i in overflow and value is not None:
                    values.append(f"{len(value):,} items: see sheet '{table.columns[i][:31]}'")
                else:
                    values.append(_xlsx_value(value))
            _append(sheet, values)
        for column_index, column in enumerate(table.columns, start=1):
            sheet.column_dimensions[sheet.cell(1, column_index).column_letter].width = max(12, min(40, len(column) + 4))
        for i in sorted(overflow):
            long_sheet = book.create_sheet(table.columns[i][:31])
            long_sheet.append([table.columns[k] for k in keys] + [table.columns[i]])
            for cell in long_sheet[1]:
                cell.font = bold
            for row in table.rows:
                for item in row[i] or []:
                    _append(long_sheet, [_xlsx_value(row[k]) for k in keys] + [_xlsx_value(item)])
    return _replace_atomically(path, book.save)


# --- README --------------------------------------------------------------------------


def readme_text(cycle: str, fmt: str, info: dict[str, Any], tables: dict[str, TableData], files: list[Path]) -> str:
    def show(value: Any) -> str:
        return _csv_value(value) or "—"

    lines = [
        f"# Planning Panel tables, cycle {cycle}" + (f" ({LABEL})" if info.get("synthetic") else ""),
        "",
        *([f"**{LABEL}.** These tables are built from synthetic data: {EXPLANATION}.", ""] if info.get("synthetic") else []),
        f"Exported as {fmt} from the published snapshot of the policing-plan evidence pipeline.",
        "Read with `planning query TABLE --cycle " + cycle + "`; these files are a copy, not the system of record.",
        "",
        "## Built at",
        "",
        "| | value | meaning |",
        "| --- | --- | --- |",
        *[f"| `{key}` | {show(info.get(key))} | {meaning} |" for key, meaning in BUILD_INFO_DOCS.items()],
        "",
        "## Files",
        "",
        *[f"- `{f.name}`" for f in files],
        "",
        "## Conventions",
        "",
        "- Every table carries `cycle`; `LONDON` rows aggregate the 32 boroughs; boroughs are ONS GSS codes.",
        "- A null is " + {"csv": "an empty field", "parquet": "a Parquet null", "xlsx": "a blank cell"}[fmt] + ".",
        "- Lists are " + {"csv": "JSON arrays", "parquet": "Parquet lists", "xlsx": "joined with `; ` (a list too long for a cell is on its own sheet, one item per row)"}[fmt] + ".",
        "- Times are UTC; dates are ISO-8601 (YYYY-MM-DD).",
        "- Small cells stay suppressed: a suppressed cell's numbers are null and `suppressed` is true. Do not try to recover them.",
        "- The data team's dead letters are never exported with the Panel's tables.",
        "",
        "## Tables and their columns",
    ]
    for name, table in tables.items():
        lines += [
            "",
            f"### `{name}` ({len(table.rows):,} rows)",
            "",
            PANEL_TABLES[name].description,
            "",
            "| column | type | meaning |",
            "| --- | --- | --- |",
            *[f"| `{c}` | {t} | {PANEL_TABLES[name].column(c).description} |" for c, t in zip(table.columns, table.types)],
        ]
    return "\n".join(lines) + "\n"
