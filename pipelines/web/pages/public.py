"""The public's pages, no sign-in: "You said, we did" for every borough and cycle.

Only aggregates and published material, read from the current snapshot's Panel tables and never
recomputed: what people raised (``theme_ranking``, ``consultation_coverage``), how the borough
rates its police (``survey_indicators``: a suppressed estimate stays "not shown", exactly as the
Panel sees it), what was fed back and when (``feedback_log``), the priorities adopted for London
and the borough (``priority_traceability``: ranks and themes, never the evidence ids), and where
the cycle stands (``stage_status``). Nothing from ``inclusion`` (demographics), dead letters,
senders or comments appears here.

A cycle whose fieldwork stage is not signed off is still being counted: its page says so and
shows no consultation or survey figures (docs/decisions.md, "The public pages").

Each page is rendered once per published snapshot for readers who are not signed in, and kept
until the next publish (``pipelines.web.pages.published``).
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from events.contract.vocabulary import BOROUGH_NAMES, BOROUGHS, LONDON, STAGES
from projections.packs.labels import (
    INDICATOR_LABELS, STAGE_WHAT, STATUS_LABELS, stage_label, theme_label, window,
)
from pipelines.web.audience import Page
from pipelines.web.pages.snapshot import Refused, Snapshot, reading, reading_cycle
from pipelines.web.pages.view import answering, page

TOP_THEMES = 5
FIELDWORK = "fieldwork"


def slug(name: str) -> str:
    """'Kingston upon Thames' -> 'kingston-upon-thames': a borough's address on the site."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


BOROUGH_SLUGS: dict[str, str] = {slug(BOROUGH_NAMES[code]): code for code in BOROUGHS}


def borough_of(name: str) -> str:
    """The GSS code of the borough at ``/boroughs/<name>``; 404 for a name that is not one of the 32."""
    code = BOROUGH_SLUGS.get(name)
    if code is None:
        raise Refused(404, f"there is no London borough called {name!r}: the index at /boroughs lists all 32")
    return code


def in_fieldwork(stages: list[dict[str, Any]]) -> bool:
    """Whether the cycle's responses are still being counted: its fieldwork stage is not signed off."""
    return not any(row["stage"] == FIELDWORK and row["status"] == "signed_off" for row in stages)


def current_stage(stages: list[dict[str, Any]]) -> str:
    """The first stage not signed off (publication once every stage is)."""
    return next((row["stage"] for row in stages if row["status"] != "signed_off"), STAGES[-1])


def start(request: Request) -> Response:
    """What the site is; it opens before anything is published, too."""
    try:
        with reading(request, public=True) as snapshot:
            latest = snapshot.cycles()[-1] if snapshot.cycles() else None
            synthetic = snapshot.synthetic
    except Refused:
        latest, synthetic = None, False
    return page(request, "public/start.html", {"synthetic": synthetic, "latest": latest})


def boroughs(request: Request) -> Response:
    with reading(request, public=True) as snapshot:
        listed = sorted((BOROUGH_NAMES[code], slug(BOROUGH_NAMES[code])) for code in BOROUGHS)
        return page(request, "public/boroughs.html",
                      {"synthetic": snapshot.synthetic, "boroughs": listed, "cycles": snapshot.cycles()})


def borough(request: Request) -> Response:
    code = borough_of(request.path_params["borough"])
    with reading_cycle(request, request.path_params.get("cycle")) as snapshot:
        cycle = snapshot.cycle(request.path_params.get("cycle"))
        return page(request, "public/borough.html", borough_page(snapshot, code, cycle))


def borough_page(snapshot: Snapshot, code: str, cycle: str) -> dict[str, Any]:
    """Everything the borough's page for ``cycle`` shows, from the Panel tables as published."""
    stages = sorted(snapshot.rows("SELECT stage, opens_on, due_on, status FROM stage_status WHERE cycle = ?", cycle),
                    key=lambda row: STAGES.index(row["stage"]))
    counting = in_fieldwork(stages)
    facts: dict[str, Any] = {
        "synthetic": snapshot.synthetic, "cycle": cycle, "cycles": snapshot.cycles(), "code": code,
        "name": BOROUGH_NAMES[code], "slug": slug(BOROUGH_NAMES[code]), "counting": counting,
        "stage": current_stage(stages),
        "stages": [{"label": stage_label(row["stage"]), "what": STAGE_WHAT[row["stage"]],
                    "window": window(row["opens_on"], row["due_on"]), "status": STATUS_LABELS[row["status"]]}
                   for row in stages],
        "stage_label": stage_label, "theme_label": theme_label,
        "timetable_source": snapshot.provenance(cycle, "stage_status"),
        "feedback": snapshot.rows(
            "SELECT round, published, first_published_at, themes FROM feedback_log WHERE cycle = ? AND borough = ? "
            "ORDER BY round", cycle, code),
        "feedback_source": snapshot.provenance(cycle, "feedback_log"),
        "priorities": {
            scope: snapshot.rows("SELECT rank, theme FROM priority_traceability WHERE cycle = ? AND scope = ? ORDER BY rank",
                                 cycle, scope)
            for scope in (LONDON, code)
        },
        "priorities_source": snapshot.provenance(cycle, "priority_traceability"),
    }
    if not counting:
        facts.update(raised(snapshot, code, cycle))
    return facts


def raised(snapshot: Snapshot, code: str, cycle: str) -> dict[str, Any]:
    """What people in the borough raised, and the survey's estimates, once the fieldwork is counted."""
    coverage = snapshot.rows(
        "SELECT responses, respondents FROM consultation_coverage WHERE cycle = ? AND borough = ? AND channel = 'all'",
        cycle, code)
    waves = snapshot.rows("SELECT DISTINCT wave FROM survey_indicators WHERE cycle = ? AND scope = ? ORDER BY wave",
                          cycle, code)
    wave = waves[-1]["wave"] if waves else None
    return {
        "coverage": coverage[0] if coverage else None,
        "coverage_source": snapshot.provenance(cycle, "consultation_coverage"),
        "themes": snapshot.rows(
            "SELECT rank, theme, consultation_share FROM theme_ranking WHERE cycle = ? AND scope = ? ORDER BY rank LIMIT ?",
            cycle, code, TOP_THEMES),
        "themes_source": snapshot.provenance(cycle, "theme_ranking"),
        "wave": wave,
        "survey": [
            {**row, "label": INDICATOR_LABELS.get(row["indicator"], row["indicator"])}
            for row in snapshot.rows(
                "SELECT indicator, weighted_pct, ci_low, ci_high, unweighted_n, suppressed FROM survey_indicators "
                "WHERE cycle = ? AND scope = ? AND wave = ? ORDER BY indicator", cycle, code, wave)
        ],
        "survey_source": snapshot.provenance(cycle, "survey_indicators"),
    }


ROUTES: list[Page] = [
    Page("/", answering(start, once_per_snapshot=True), audience="public", name="start"),
    Page("/boroughs", answering(boroughs, once_per_snapshot=True), audience="public", name="boroughs"),
    Page("/boroughs/{borough}", answering(borough, once_per_snapshot=True), audience="public", name="borough"),
    Page("/boroughs/{borough}/{cycle}", answering(borough, once_per_snapshot=True), audience="public",
         name="borough_cycle"),
]
