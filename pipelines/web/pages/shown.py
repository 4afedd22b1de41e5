"""How a value is written on a page, and in the download of that page: one text for both.

A Panel table's download (csv, xlsx) holds exactly what its page shows, so both take each cell
from :func:`cell`: a float to ``DECIMALS`` places, a list joined with "; ", a time in UTC as
ISO-8601, a boolean as true/false, null as an empty cell, text with its control characters
escaped (``projections.reading.cells.visible``); a list of more than ``LIST_SHOWN`` items shows
its first ones and how many there are. Full precision and whole lists are `planning export`'s job.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any

from projections.packs.labels import day, instant, pct
from projections.reading.cells import visible

DECIMALS = 4
LIST_SHOWN = 10  # a longer list in a cell shows its first items and its length
NOT_SHOWN = "not shown"

__all__ = ["cell", "day", "instant", "pct", "NOT_SHOWN"]


def cell(value: Any) -> str | int | float | None:
    """A table cell as shown: a number stays a number (floats rounded), everything else is text; None is empty."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return round(value, DECIMALS)
    if isinstance(value, int):
        return value
    if isinstance(value, datetime):
        utc = value.astimezone(timezone.utc) if value.tzinfo else value
        return utc.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        items = "; ".join(str(cell(item)) for item in value[:LIST_SHOWN])
        return visible(items if len(value) <= LIST_SHOWN else f"{items}; … ({len(value):,} in all)")
    return visible(str(value))
