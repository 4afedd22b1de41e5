"""The Panel's tables (docs/tables.md): what each row is, and which stage it serves.

``group`` is the timetable stage whose evidence the table carries; Dagster
groups the assets by it. ``order_by`` is the order readers get rows in.
"""

from __future__ import annotations

from dataclasses import dataclass

from events.vocabulary import STAGES

_STAGE_ORDER = "list_position(" + str(list(STAGES)) + ", stage)"


@dataclass(frozen=True)
class PanelTable:
    name: str
    group: str
    description: str
    order_by: str


PANEL_TABLES: dict[str, PanelTable] = {
    t.name: t
    for t in (
        PanelTable(
            "stage_status", "timetable",
            "One row per cycle × stage: window, status at `on`, whether the gate holds, and its blockers.",
            f"cycle, {_STAGE_ORDER}",
        ),
        PanelTable(
            "consultation_coverage", "fieldwork",
            "One row per cycle × borough × channel with responses, plus an 'all' row per borough with its target.",
            "cycle, borough, channel = 'all' DESC, channel",
        ),
        PanelTable(
            "cdrp_audits", "analysis",
            "One row per cycle × borough (all 32): the latest CDRP audit, how many it superseded, its priorities.",
            "cycle, borough",
        ),
        PanelTable(
            "inclusion", "fieldwork",
            "One row per cycle × scope × dimension × group: who responds against who lives there, small cells suppressed.",
            "cycle, scope, list_position(['age_band', 'gender', 'ethnic_group', 'disability'], dimension), \"group\"",
        ),
        PanelTable(
            "group_activity", "fieldwork",
            "One row per cycle × consultative group: meetings, attendance, cost and cost per attendee.",
            "cycle, group_id",
        ),
        PanelTable(
            "survey_indicators", "analysis",
            "One row per cycle × wave × scope × indicator: weighted PAS estimates with 95% intervals, small bases suppressed.",
            "cycle, wave, scope, indicator",
        ),
        PanelTable(
            "theme_ranking", "analysis",
            "One row per cycle × scope × theme: consultation, survey and CDRP evidence combined and ranked.",
            "cycle, scope, rank",
        ),
        PanelTable(
            "feedback_log", "feedback",
            "One row per cycle × round × borough (all 32): whether and when what we heard was fed back, and on which themes.",
            "cycle, round, borough",
        ),
        PanelTable(
            "priority_traceability", "publication",
            "One row per adopted priority: the responses, survey weight and CDRP audits behind it, with their event ids.",
            "cycle, scope = 'LONDON' DESC, scope, rank",
        ),
    )
}

# The data team's table: never part of a Panel snapshot.
DEAD_LETTERS = PanelTable(
    "dead_letters", "operations",
    "Every rejected event: when it arrived, why (one reason per broken rule), and its raw bytes.",
    "received_at",
)

ALL_TABLES: dict[str, PanelTable] = {**PANEL_TABLES, DEAD_LETTERS.name: DEAD_LETTERS}
