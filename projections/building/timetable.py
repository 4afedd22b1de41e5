"""The default planning timetable (docs/tables.md, "The timetable").

For cycle ``P-(P+1)`` (plan year P), with Y = P - 1, stages run from the
brief in March of Y to publication in May–June of P. ``cycle.opened`` may
override any window; that merge happens in SQL (stage_status.sql).

A cycle whose text names no cycle, or whose years the calendar cannot hold
(year 0 or 1, as an older contract let in), has no default timetable: its
build goes on with none, and stops no other.
"""

from __future__ import annotations

from datetime import date

from events.contract.cycle import Cycle
from events.contract.vocabulary import STAGES

# stage -> ((year offset, month, day) opens, (year offset, month, day) due); offset 0 = Y, 1 = P
_WINDOWS: dict[str, tuple[tuple[int, int, int], tuple[int, int, int]]] = {
    "brief": ((0, 3, 1), (0, 3, 31)),
    "programme_approval": ((0, 4, 1), (0, 5, 31)),
    "fieldwork": ((0, 6, 1), (0, 8, 31)),
    "analysis": ((0, 9, 1), (0, 9, 30)),
    "feedback_1": ((0, 10, 1), (0, 10, 31)),
    "priorities": ((0, 11, 1), (0, 11, 30)),
    "feedback_2": ((1, 2, 1), (1, 3, 31)),
    "publication": ((1, 5, 1), (1, 6, 30)),
}


def default_windows(cycle: str) -> list[tuple[str, int, date, date]]:
    """(stage, order, opens_on, due_on) for every stage, in timetable order; none for a cycle without a timetable."""
    try:
        y = Cycle.parse(cycle).start_year
        rows = []
        for order, stage in enumerate(STAGES, start=1):
            (o_off, o_m, o_d), (d_off, d_m, d_d) = _WINDOWS[stage]
            rows.append((stage, order, date(y + o_off, o_m, o_d), date(y + d_off, d_m, d_d)))
    except ValueError:  # not YYYY-YY, or a year before 1 or after 9999
        return []
    return rows
