"""The stage dashboard: the timetable as a Panel member reads it."""

from __future__ import annotations

from collections import defaultdict
from datetime import date

from events.home import PlanningHome
from events.contract.vocabulary import BOROUGH_NAMES
from projections.building.timetable import default_windows
from projections.reading.snapshots import open_reader
from projections.reading.synthetic import LABEL, holds_synthetic

STATUS = {"signed_off": "signed off", "open": "open", "overdue": "OVERDUE", "upcoming": "upcoming"}


def summarise_blockers(blockers: list[str]) -> str:
    """'below_target:E09000003', 'below_target:E09000005' -> 'below target: Barnet, Bexley'."""
    by_code: dict[str, list[str]] = defaultdict(list)
    for blocker in blockers:
        code, _, borough = blocker.partition(":")
        by_code[code].append(BOROUGH_NAMES.get(borough, borough))
    parts = []
    for code, boroughs in by_code.items():
        label = code.replace("_", " ")
        named = [b for b in boroughs if b]
        if not named:
            parts.append(label)
        elif len(named) <= 3:
            parts.append(f"{label}: {', '.join(named)}")
        else:
            parts.append(f"{label}: {len(named)} boroughs")
    return "; ".join(parts)


def stage_on(cycle: str, day: date) -> str:
    """The stage current on ``day``: the last whose window has opened by then (the first before any has).

    Not the first stage still to be signed off, which after a sign-off is a
    stage whose window may be months away, with nothing in it yet.
    """
    windows = default_windows(cycle)
    if not windows:
        raise ValueError(f"{cycle} has no timetable")
    opened = [stage for stage, _, opens_on, _ in windows if opens_on <= day]
    return opened[-1] if opened else windows[0][0]


def print_dashboard(home: PlanningHome, cycle: str) -> None:
    db = open_reader(home.projections)
    (on_date,) = db.execute("SELECT on_date FROM build_info WHERE cycle = ?", [cycle]).fetchone()
    label = f"   [{LABEL}]" if holds_synthetic(db) else ""  # the snapshot's to say
    print(f"Policing plan cycle {cycle}: stage dashboard on {on_date:%d %B %Y}{label}")
    print(f"{'stage':<19} {'window':<27} {'status':<11} gate")
    rows = db.execute(
        "SELECT stage, opens_on, due_on, status, ready, blockers, signed_off_by FROM stage_status"
        " WHERE cycle = ? ORDER BY opens_on", [cycle]
    ).fetchall()
    for stage, opens_on, due_on, status, ready, blockers, body in rows:
        window = f"{opens_on:%d %b %Y} – {due_on:%d %b %Y}"
        gate = "ready" if ready else "waiting on " + summarise_blockers(blockers)
        if body:
            gate += f" (signed off by {body.replace('_', ' ')})"
        print(f"{stage:<19} {window:<27} {STATUS[status]:<11} {gate}")
    responses, at_target, audits = db.execute(
        "SELECT sum(responses), count(*) FILTER (WHERE responses >= target),"
        " (SELECT count(*) FILTER (WHERE received) FROM cdrp_audits WHERE cycle = ?)"
        " FROM consultation_coverage WHERE cycle = ? AND channel = 'all'", [cycle, cycle]
    ).fetchone()
    print(f"\nconsultation: {responses:,} responses; {at_target} of 32 boroughs at target; "
          f"CDRP audits received from {audits} of 32 boroughs")
