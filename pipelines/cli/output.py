"""Printing query results as `table` (for people), `csv` or `json` (docs/cli.md).

Cells come from events, written by senders we do not control
(``projections.reading.cells``): `table` shows control characters as
``\\xNN`` escapes so no ANSI sequence reaches the terminal; `csv` is bound
for spreadsheets, so a formula-like text cell gets a leading apostrophe;
`json` keeps every value, with DEL and the C1 controls written as ``\\u``
escapes like the C0 ones (the same JSON, nothing a terminal would obey).

Results built from synthetic data carry the label (``label``): `table`
prints it above the column names; `csv` and `json` stay data a program can
read, so the label goes to standard error, where the person running the
command still sees it.

Output is capped at ``MAX_OUTPUT_BYTES``: what a command prints can be
read, and a runaway result cannot fill a disk or a terminal's memory;
:func:`write` says how many rows it wrote, and the caller says what was cut.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Any, NamedTuple, TextIO

from projections.reading.cells import one_line, spreadsheet_text, visible

MAX_CELL = 40  # `table` may truncate; csv and json never do
MAX_OUTPUT_BYTES = 64 * 1024 * 1024  # what one command prints, at most
_JSON_CONTROLS = re.compile("[\x7f-\x9f]")


class Printed(NamedTuple):
    rows: int  # how many rows were printed
    cut: bool  # True when more rows were given than fit in the output cap
    max_bytes: int


def cut_note(printed: Printed) -> str:
    """What to tell the reader when the output cap stopped the printing."""
    return f"output stopped at {printed.rows:,} rows / {printed.max_bytes / 1024 / 1024:g} MB (the most one command prints)"


def plain(value: Any) -> Any:
    """A JSON-ready value: dates as ISO strings, lists as arrays, nulls as null."""
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def write(
    columns: list[str], rows: Iterable[tuple[Any, ...]], fmt: str, out: TextIO | None = None,
    max_bytes: int = MAX_OUTPUT_BYTES, *, label: str | None = None,
) -> int:
    """Print ``rows`` in ``fmt``, stopping before ``max_bytes``; says how many were printed and whether any were cut.
    ``label`` (the synthetic label) heads a `table`, and goes to standard error beside `csv` or `json`."""
    out = out or sys.stdout
    if label is not None:
        print(one_line(label), file=out if fmt == "table" else sys.stderr)
    if fmt == "json":
        written, cut = _write_json(columns, rows, out, max_bytes)
    elif fmt == "csv":
        written, cut = _write_csv(columns, rows, out, max_bytes)
    else:
        written, cut = _write_table(columns, rows, out, max_bytes)
    return Printed(written, cut, max_bytes)


def _write_json(columns: list[str], rows: Iterable[tuple[Any, ...]], out: TextIO, max_bytes: int) -> tuple[int, bool]:
    written, size, cut = 0, 2, False
    out.write("[")
    for row in rows:
        text = _JSON_CONTROLS.sub(
            lambda m: f"\\u{ord(m.group()):04x}",
            json.dumps({c: plain(v) for c, v in zip(columns, row)}, ensure_ascii=False),
        )
        size += len(text.encode("utf-8")) + 2
        if size > max_bytes:
            cut = True
            break
        out.write((", " if written else "") + text)
        written += 1
    out.write("]\n")
    return written, cut


def _write_csv(columns: list[str], rows: Iterable[tuple[Any, ...]], out: TextIO, max_bytes: int) -> tuple[int, bool]:
    line = io.StringIO()
    writer = csv.writer(line)
    writer.writerow([spreadsheet_text(c) for c in columns])
    written, size, cut = 0, 0, False
    for row in _with_header(rows):
        if row is not None:
            writer.writerow([_csv_cell(v) for v in row])
        text = line.getvalue()
        line.seek(0)
        line.truncate()
        size += len(text.encode("utf-8"))
        if size > max_bytes:
            cut = True
            break
        out.write(text)
        written += row is not None
    return written, cut


def _with_header(rows: Iterable[tuple[Any, ...]]) -> Iterable[tuple[Any, ...] | None]:
    yield None  # the header row, already in the buffer
    yield from rows


def _csv_cell(value: Any) -> Any:
    value = plain(value)
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return visible(json.dumps(value, ensure_ascii=False))
    if isinstance(value, str):
        return spreadsheet_text(value)
    return value


def _text(value: Any) -> str:
    value = plain(value)
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.2f}"
    text = one_line(", ".join(str(v) for v in value) if isinstance(value, list) else str(value))
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def _write_table(columns: list[str], rows: Iterable[tuple[Any, ...]], out: TextIO, max_bytes: int) -> tuple[int, bool]:
    """Cells are at most MAX_CELL wide, so the rows that fit ``max_bytes`` are known before the widths."""
    names = [one_line(c) for c in columns]
    cells: list[list[str]] = []
    size, cut = 0, False
    for row in rows:
        texts = [_text(v) for v in row]
        size += sum(len(t.encode("utf-8")) + 2 for t in texts)
        if size > max_bytes:
            cut = True
            break
        cells.append(texts)
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(names)]
    out.write("  ".join(c.ljust(w) for c, w in zip(names, widths)).rstrip() + "\n")
    out.write("  ".join("-" * w for w in widths) + "\n")
    for texts in cells:
        out.write("  ".join(v.ljust(w) for v, w in zip(texts, widths)).rstrip() + "\n")
    out.write(f"({len(cells)} row{'s' if len(cells) != 1 else ''})\n")
    return len(cells), cut
