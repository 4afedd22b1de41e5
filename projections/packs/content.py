"""What each stage's pack says, read from the published snapshot.

Every pack opens with the timetable (each stage's window, status and blockers,
with borough names), then the sections the stage needs, then notes on the
data. Numbers come only from the Panel tables through the reader connection;
suppressed cells are shown as suppressed, and nothing here adds up, subtracts
or otherwise derives a number from a suppressed cell's neighbours.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime
from typing import Any

import duckdb

from events.contract.cycle import Cycle
from events.contract.vocabulary import BOROUGHS, CHANNELS, DEMOGRAPHIC_DIMENSIONS, INDICATORS, LONDON, STAGES
from projections.packs import svg
from projections.packs.document import Cell, Figure, Provenance, Section, Table
from projections.packs.labels import (
    BODY_LABELS, CHANNEL_LABELS, DIMENSION_LABELS, INDICATOR_LABELS, STAGE_WHAT, STATUS_LABELS, SUPPRESSED,
    SUPPRESSED_SURVEY, borough_name, count, day, group_label, instant, money, names, pct, ratio, readable_blockers,
    sentence, share, short_day, stage_label, theme_label, window,
)
from projections.reading.synthetic import holds_synthetic
from projections.tables import PANEL_TABLES

UNDER = 0.8  # a representation ratio below this is "not hearing from" (a convention of this pack, said in its notes)


class PackError(RuntimeError):
    """The pack cannot be written (e.g. its cycle is not in the published snapshot)."""


def previous_cycle(cycle: str) -> str:
    return str(Cycle.parse(cycle).previous)


def plan_title(cycle: str) -> str:
    """"Policing Plan 2027/28" for cycle 2027-28."""
    return f"Policing Plan {Cycle.parse(cycle).plan_years}"


class Reader:
    """Queries on the reader connection, rows as dicts; one Provenance per cycle from build_info.

    ``synthetic`` comes from the snapshot (``build_info.synthetic``), never from the caller: a pack
    built from synthetic data says so on every page and under every figure, whoever asked for it.
    """

    def __init__(self, db: duckdb.DuckDBPyConnection) -> None:
        self.db = db
        self.synthetic = holds_synthetic(db)
        self._provenance: dict[str, Provenance | None] = {}

    def rows(self, sql: str, *parameters: Any) -> list[dict[str, Any]]:
        cursor = self.db.execute(sql, list(parameters))
        columns = [d[0] for d in cursor.description]
        return [dict(zip(columns, row)) for row in cursor.fetchall()]

    def provenance(self, cycle: str) -> Provenance | None:
        if cycle not in self._provenance:
            found = self.rows("SELECT on_date, as_of FROM build_info WHERE cycle = ?", cycle)
            self._provenance[cycle] = (
                Provenance(cycle, found[0]["on_date"], found[0]["as_of"], self.synthetic) if found else None
            )
        return self._provenance[cycle]

    def cycles(self) -> list[str]:
        return [r["cycle"] for r in self.rows("SELECT cycle FROM build_info ORDER BY cycle")]


def stage_rows(r: Reader, cycle: str) -> list[dict[str, Any]]:
    rows = r.rows("SELECT * FROM stage_status WHERE cycle = ?", cycle)
    return sorted(rows, key=lambda row: STAGES.index(row["stage"]))


def current_stage(r: Reader, cycle: str) -> str:
    """The stage the cycle is in: the first not signed off (publication once every stage is)."""
    for row in stage_rows(r, cycle):
        if row["status"] != "signed_off":
            return row["stage"]
    return STAGES[-1]


# --- 1. the timetable (every pack opens with it) ------------------------------------------------


def timetable(r: Reader, cycle: str, stage: str) -> Section:
    p = r.provenance(cycle)
    rows = stage_rows(r, cycle)
    signed = [row for row in rows if row["status"] == "signed_off"]
    now = next((row for row in rows if row["stage"] == stage), None)
    summary = [
        f"On {day(p.on)}, {len(signed)} of {len(rows)} stages of the {cycle} cycle are signed off. "
        + (f"This pack is for {stage_label(stage)} ({STAGE_WHAT[stage]}): "
           f"its window runs {window(now['opens_on'], now['due_on'])} and it is {STATUS_LABELS[now['status']].lower()}."
           if now else "")
    ]
    overdue = [row for row in rows if row["status"] == "overdue"]
    if overdue:
        summary.append("Overdue: " + "; ".join(
            f"{stage_label(row['stage'])} (due {day(row['due_on'])})" for row in overdue) + ".")
    unmet = [row for row in signed if row["blockers"]]
    if unmet:
        summary.append("Signed off with their gate not met: " + "; ".join(
            f"{stage_label(row['stage'])} ({', '.join(readable_blockers(row['blockers']))})" for row in unmet) + ".")
    if now and now["status"] != "signed_off":
        summary.append(
            f"{stage_label(stage)} is ready to sign off." if now["ready"]
            else f"{stage_label(stage)} cannot be signed off yet: " + "; ".join(readable_blockers(now["blockers"])) + "."
        )
    gantt = svg.gantt(
        [svg.GanttRow(stage_label(row["stage"]), row["opens_on"], row["due_on"], row["status"],
                      row["signed_off_at"].date() if row["signed_off_at"] else None, bool(row["blockers"])) for row in rows],
        p.on, f"Timetable of the {cycle} cycle",
    )
    table_rows = []
    for row in rows:
        status = Cell(STATUS_LABELS[row["status"]], "bad" if row["status"] == "overdue" else "good" if row["status"] == "signed_off" else "")
        gate = "Ready" if row["ready"] else "; ".join(readable_blockers(row["blockers"]))
        signed_by = (f"{BODY_LABELS.get(row['signed_off_by'], row['signed_off_by'])}, {short_day(row['signed_off_at'].date())}"
                     if row["signed_off_by"] else "—")
        table_rows.append([Cell(stage_label(row["stage"]), "strong" if row["stage"] == stage else ""),
                           STAGE_WHAT[row["stage"]], window(row["opens_on"], row["due_on"]), status,
                           Cell(gate, "" if row["ready"] else "bad" if row["status"] in ("open", "overdue") else ""), signed_by])
    return Section("timetable", "The timetable", summary, [
        Figure(f"The {cycle} timetable: each stage's window and status on {day(p.on)}.", gantt, p, "stage_status", wide=True),
        Table(f"Stages of the {cycle} cycle, their windows, status and what still blocks them.",
              [("Stage", ""), ("What happens", ""), ("Window", ""), ("Status", ""), ("Gate (blockers)", ""), ("Signed off", "")],
              table_rows, p, "stage_status"),
    ])


# --- brief: last cycle ----------------------------------------------------------------------------


def last_cycle(r: Reader, cycle: str) -> list[Section]:
    before = previous_cycle(cycle)
    p = r.provenance(before)
    if p is None:
        return [Section("last-cycle", f"Last cycle ({before})", [
            f"The {before} cycle is not in the published snapshot, so this brief cannot show its priorities or its feedback."
        ])]
    priorities = r.rows("SELECT * FROM priority_traceability WHERE cycle = ? ORDER BY scope = 'LONDON' DESC, scope, rank", before)
    london = [x for x in priorities if x["scope"] == LONDON]
    local = [x for x in priorities if x["scope"] != LONDON]
    summary = [
        (f"In {before} the Panel adopted {len(london)} London priorities ("
         + ", ".join(f"{x['rank']}. {sentence(theme_label(x['theme']))}" for x in london) + ")"
         + (f" and {len(local)} borough priorities." if local else ".")) if priorities
        else f"No priorities were adopted in {before}."
    ]
    table = Table(
        f"Priorities adopted in {before}, with the evidence behind each.",
        [("Rank", "num"), ("Priority", ""), ("Scope", ""), ("Responses naming it", "num"), ("Survey weight naming it", "num"),
         ("CDRP audits ranking it", "num")],
        [[str(x["rank"]), theme_label(x["theme"]), borough_name(x["scope"]), count(x["supporting_responses"]),
          f"{x['supporting_survey_weight']:,.0f}" if x["supporting_survey_weight"] is not None else "—",
          count(len(x["cdrp_boroughs"] or []))] for x in priorities],
        p, "priority_traceability",
    )
    feedback = r.rows("SELECT * FROM feedback_log WHERE cycle = ? ORDER BY round, borough", before)
    fb_rows, fb_summary = [], []
    for round_ in (1, 2):
        members = [x for x in feedback if x["round"] == round_]
        reached = [x for x in members if x["published"]]
        waiting = [x["borough"] for x in members if not x["published"]]
        themes = Counter(t for x in reached for t in (x["themes"] or []))
        first = min((x["first_published_at"] for x in reached), default=None)
        fb_rows.append([f"Round {round_}", f"{len(reached)} of {len(members)}", names(waiting) or "none",
                        short_day(first.date()) if first else "—",
                        ", ".join(theme_label(t) for t, _ in themes.most_common(6)) or "—"])
        fb_summary.append(f"round {round_} reached {len(reached)} of {len(members)} boroughs"
                          + (f" (not {names(waiting)})" if waiting else ""))
    coverage = r.rows("SELECT * FROM consultation_coverage WHERE cycle = ? AND channel = 'all'", before)
    audits = r.rows("SELECT * FROM cdrp_audits WHERE cycle = ?", before)
    below = [x["borough"] for x in coverage if x["target"] is not None and x["responses"] < x["target"]]
    glance = [
        ["Consultation responses", count(sum(x["responses"] for x in coverage))],
        ["Boroughs at or above their target", f"{sum(1 for x in coverage if x['target'] is not None and x['responses'] >= x['target'])} of {len(coverage)}"],
        ["Boroughs below target", names(below) or "none"],
        ["CDRP audits received", f"{sum(1 for x in audits if x['received'])} of {len(audits)}"],
    ]
    return [
        Section("last-priorities", f"Last cycle's priorities ({before})", summary, [table]),
        Section("last-feedback", f"What we fed back last cycle ({before})", [
            "Feedback in " + before + ": " + "; ".join(fb_summary) + ".",
            "The consultation behind it, at a glance: " + f"{glance[0][1]} responses, {glance[1][1]} boroughs at target, "
            f"{glance[3][1]} CDRP audits received.",
        ], [
            Table(f"Feedback published to boroughs in {before}, by round.",
                  [("Round", ""), ("Boroughs reached", "num"), ("Still waiting", ""), ("First published", ""), ("Themes fed back most", "")],
                  fb_rows, p, "feedback_log"),
            Table(f"The {before} consultation at a glance.", [("", ""), ("", "num")], glance, p,
                  "consultation_coverage, cdrp_audits"),
        ]),
    ]


# --- programme approval: targets --------------------------------------------------------------------


def targets(r: Reader, cycle: str) -> list[Section]:
    p = r.provenance(cycle)
    before = previous_cycle(cycle)
    now = {x["borough"]: x for x in r.rows("SELECT * FROM consultation_coverage WHERE cycle = ? AND channel = 'all'", cycle)}
    last = {x["borough"]: x for x in r.rows("SELECT * FROM consultation_coverage WHERE cycle = ? AND channel = 'all'", before)}
    approved = any(x["target"] is not None for x in now.values())
    if approved:
        common, _ = Counter(x["target"] for x in now.values()).most_common(1)[0]
        own = [b for b, x in now.items() if x["target"] != common]
        summary = [
            f"A programme is approved: {sum(x['target'] for x in now.values()):,} responses in all, "
            f"{common:,} for most boroughs" + (f", with their own target for {names(own)}." if own else "."),
        ]
    else:
        summary = ["No consultation programme has been approved yet, so no borough has a target. "
                   + (f"Last cycle's targets and responses are shown to inform them." if last else "")]
    if last:
        short = [b for b, x in last.items() if x["target"] is not None and x["responses"] < x["target"]]
        summary.append(f"In {before}, {len(last) - len(short)} of {len(last)} boroughs reached their target"
                       + (f"; {names(short)} did not." if short else "."))
    tiles = {}
    for code in BOROUGHS:
        x = now.get(code)
        target = x["target"] if x else None
        tiles[code] = svg.Tile(svg.NAVY if target is not None else svg.LIGHT, count(target) if target is not None else "no target",
                               f"{borough_name(code)}: target {count(target)}")
    rows = []
    for code in sorted(BOROUGHS, key=borough_name):
        x, y = now.get(code), last.get(code)
        rows.append([borough_name(code), count(x["target"]) if x else "—", count(y["target"]) if y else "—",
                     count(y["responses"]) if y else "—", pct(y["pct_of_target"]) if y else "—"])
    return [Section("targets", "Targets by borough", summary, [
        Figure("Each borough's minimum number of consultation responses in the approved programme.",
               svg.tile_map(tiles, [(svg.NAVY, "target set"), (svg.LIGHT, "no target yet")], "Targets by borough"), p,
               "consultation_coverage"),
        Table(f"Targets by borough: this cycle's, and last cycle's ({before}) with what was achieved.",
              [("Borough", ""), (f"Target {cycle}", "num"), (f"Target {before}", "num"), (f"Responses {before}", "num"),
               (f"% of target {before}", "num")], rows, p, "consultation_coverage",
              note="" if last else f"The {before} cycle is not in the published snapshot."),
    ])]


# --- fieldwork: coverage, inclusion, groups -----------------------------------------------------------


def _pct_fill(value: float | None) -> str:
    if value is None:
        return svg.GREY
    return svg.GREEN if value >= 100 else svg.AMBER if value >= 75 else svg.RED


def coverage(r: Reader, cycle: str) -> list[Section]:
    p = r.provenance(cycle)
    totals = r.rows("SELECT * FROM consultation_coverage WHERE cycle = ? AND channel = 'all'", cycle)
    channels = r.rows("SELECT borough, channel, responses FROM consultation_coverage WHERE cycle = ? AND channel <> 'all'", cycle)
    responses = sum(x["responses"] for x in totals)
    with_target = [x for x in totals if x["target"] is not None]
    below = sorted([x for x in with_target if x["responses"] < x["target"]], key=lambda x: x["pct_of_target"] or 0)
    summary = [f"{responses:,} consultation responses from {sum(x['respondents'] for x in totals):,} respondents (counted per borough) so far."]
    if with_target:
        summary.append(
            f"{len(with_target) - len(below)} of {len(with_target)} boroughs have reached their target. "
            + ("Below target: " + "; ".join(f"{borough_name(x['borough'])} ({x['responses']:,} of {x['target']:,}, {x['pct_of_target']:.0f}%)"
                                            for x in below) + "." if below else "Every borough is at or above its target.")
        )
    else:
        summary.append("No programme is approved yet, so there are no targets to measure against.")
    by_channel = Counter()
    for x in channels:
        by_channel[x["channel"]] += x["responses"]
    if by_channel:
        top = by_channel.most_common(3)
        summary.append("Most responses came through " + ", ".join(
            f"{sentence(CHANNEL_LABELS[c])} ({n:,})" for c, n in top) + ".")
    ordered = sorted(totals, key=lambda x: (x["pct_of_target"] is None, x["pct_of_target"] or 0, borough_name(x["borough"])))
    bars = svg.target_bars([svg.TargetBar(borough_name(x["borough"]), x["responses"], x["target"]) for x in ordered],
                           "Responses against target by borough")
    tiles = {x["borough"]: svg.Tile(_pct_fill(x["pct_of_target"]),
                                    pct(x["pct_of_target"]) if x["pct_of_target"] is not None else count(x["responses"]),
                                    f"{borough_name(x['borough'])}: {x['responses']:,} responses"
                                    + (f", {x['pct_of_target']:.0f}% of target" if x["pct_of_target"] is not None else ""))
             for x in totals}
    table_rows = []
    for x in sorted(totals, key=lambda x: borough_name(x["borough"])):
        short = x["target"] is not None and x["responses"] < x["target"]
        table_rows.append([borough_name(x["borough"]), count(x["responses"]), count(x["respondents"]), count(x["target"]),
                           Cell(pct(x["pct_of_target"]), "num bad" if short else "num")])
    grid: dict[str, dict[str, int]] = {}
    for x in channels:
        grid.setdefault(x["borough"], {})[x["channel"]] = x["responses"]
    peak = max([n for b in grid.values() for n in b.values()] + [1])
    channel_rows = []
    for code in sorted(grid, key=borough_name):
        cells: list[Cell | str] = [borough_name(code)]
        for c in CHANNELS:
            n = grid[code].get(c)
            shade = f"background: rgba(63, 111, 181, {0.08 + 0.5 * (n or 0) / peak:.2f})" if n else ""
            cells.append(Cell(count(n) if n else "—", "num", shade))
        channel_rows.append(cells)
    return [
        Section("coverage", "Coverage against target", summary, [
            Figure("Responses received by each borough against its target, boroughs furthest from target first.",
                   bars, p, "consultation_coverage", wide=True),
            Figure("Per cent of target reached, by borough.",
                   svg.tile_map(tiles, [(svg.GREEN, "at or above target"), (svg.AMBER, "75–99%"), (svg.RED, "below 75%"),
                                        (svg.GREY, "no target")], "Per cent of target by borough"),
                   p, "consultation_coverage"),
            Table("Responses, respondents and target by borough.",
                  [("Borough", ""), ("Responses", "num"), ("Respondents", "num"), ("Target", "num"), ("% of target", "num")],
                  table_rows, p, "consultation_coverage"),
        ]),
        Section("channels", "Coverage by channel", [
            "Where the responses came from, borough by borough: a blank (—) is a channel that brought no response in that borough."
        ], [
            Table("Responses by borough and channel.",
                  [("Borough", "")] + [(CHANNEL_LABELS[c], "num") for c in CHANNELS], channel_rows, p,
                  "consultation_coverage", compact=True),
        ]),
    ]


def _ratio_fill(value: float | None, suppressed: bool) -> str:
    if suppressed or value is None:
        return svg.LIGHT
    return svg.RED if value < 0.6 else svg.AMBER if value < UNDER else svg.BLUE if value > 1.25 else "#b9c7b4"


def inclusion(r: Reader, cycle: str) -> list[Section]:
    p = r.provenance(cycle)
    rows = r.rows('SELECT * FROM inclusion WHERE cycle = ?', cycle)
    london = [x for x in rows if x["scope"] == LONDON]
    order = {d: list(groups) for d, groups in DEMOGRAPHIC_DIMENSIONS.items()}

    def key(x: dict[str, Any]) -> tuple[int, int]:
        return list(order).index(x["dimension"]), order[x["dimension"]].index(x["group"])

    london.sort(key=key)
    under = sorted([x for x in london if not x["suppressed"] and x["representation_ratio"] is not None
                    and x["representation_ratio"] < UNDER], key=lambda x: x["representation_ratio"])
    suppressed_cells = sum(1 for x in rows if x["suppressed"])
    summary = [
        "Who we are not hearing from: each group's share of respondents against its share of the population "
        f"(a ratio below {UNDER} means the group is heard from less than four-fifths as much as its size would suggest).",
        ("Across London, under-represented: " + ", ".join(
            f"{group_label(x['group'])} ({sentence(DIMENSION_LABELS[x['dimension']])}, {x['representation_ratio']:.2f})" for x in under) + ".")
        if under else "Across London, no group is below a ratio of 0.8.",
        f"{suppressed_cells:,} cells across London and the boroughs are suppressed (fewer than 10 respondents, or to protect "
        "another suppressed cell); they are shown as suppressed and left out of every ranking.",
    ]
    chart_groups = []
    for dimension in DEMOGRAPHIC_DIMENSIONS:
        members = [x for x in london if x["dimension"] == dimension]
        chart_groups.append((DIMENSION_LABELS[dimension], [
            svg.RatioRow(group_label(x["group"]), None if x["suppressed"] else x["representation_ratio"], bool(x["suppressed"]),
                         x["population_share"] is not None) for x in members]))
    blocks: list[Any] = [
        Figure("London: respondents' share of each group against the group's share of the population.",
               svg.ratio_chart(chart_groups, "Representation ratios, London"), p, "inclusion", wide=True),
    ]
    focus = under[0] if under else None
    if focus:
        tiles = {}
        for x in rows:
            if x["scope"] != LONDON and x["dimension"] == focus["dimension"] and x["group"] == focus["group"]:
                value = "suppressed" if x["suppressed"] else ratio(x["representation_ratio"]) if x["representation_ratio"] is not None else "no baseline"
                tiles[x["scope"]] = svg.Tile(_ratio_fill(x["representation_ratio"], x["suppressed"]), value,
                                             f"{borough_name(x['scope'])}: {value}")
        label = f"{group_label(focus['group'])} ({sentence(DIMENSION_LABELS[focus['dimension']])})"
        blocks.append(Figure(
            f"The group London hears from least, {label}: representation ratio by borough.",
            svg.tile_map(tiles, [(svg.RED, "below 0.6"), (svg.AMBER, "0.6–0.8"), ("#b9c7b4", "0.8–1.25"), (svg.BLUE, "above 1.25"),
                                 (svg.LIGHT, "suppressed")], f"Representation of {label} by borough"),
            p, "inclusion"))
    table_rows = []
    for x in london:
        if x["suppressed"]:
            cells = [Cell(SUPPRESSED, "suppressed")] * 2 + [Cell(share(x["population_share"]), "num"), Cell(SUPPRESSED, "suppressed")]
        else:
            low = x["representation_ratio"] is not None and x["representation_ratio"] < UNDER
            cells = [Cell(count(x["respondents"]), "num"), Cell(share(x["share"]), "num"), Cell(share(x["population_share"]), "num"),
                     Cell(ratio(x["representation_ratio"]), "num bad" if low else "num")]
        table_rows.append([DIMENSION_LABELS[x["dimension"]], group_label(x["group"]), *cells])
    blocks.append(Table("London: respondents by group against the population.",
                        [("Dimension", ""), ("Group", ""), ("Respondents", "num"), ("Share of respondents", "num"),
                         ("Share of population", "num"), ("Ratio", "num")], table_rows, p, "inclusion"))
    borough_rows = []
    for code in sorted(BOROUGHS, key=borough_name):
        members = sorted([x for x in rows if x["scope"] == code], key=key)
        low = [f"{group_label(x['group'])} {x['representation_ratio']:.2f}" for x in members
               if not x["suppressed"] and x["representation_ratio"] is not None and x["representation_ratio"] < UNDER]
        hidden = [group_label(x["group"]) for x in members if x["suppressed"]]
        borough_rows.append([borough_name(code), Cell("; ".join(low) or "none", "bad" if low else "muted"),
                             Cell(", ".join(hidden) or "none", "suppressed-groups" if hidden else "muted")])
    blocks.append(Table(f"Groups each borough is not hearing from (ratio below {UNDER}), and its suppressed cells.",
                        [("Borough", ""), ("Under-represented (ratio)", ""), ("Suppressed (<10, no number shown)", "")],
                        borough_rows, p, "inclusion", compact=True))
    return [Section("inclusion", "Inclusion: who we are not hearing from", summary, blocks)]


def groups(r: Reader, cycle: str) -> list[Section]:
    p = r.provenance(cycle)
    rows = r.rows("SELECT * FROM group_activity WHERE cycle = ? ORDER BY borough, group_id", cycle)
    meetings = sum(x["meetings"] for x in rows)
    attendance = sum(int(x["attendance"] or 0) for x in rows)
    cost = sum(x["cost_gbp"] or 0 for x in rows)
    summary = [
        f"{len(rows)} consultative groups and ward panels held {meetings:,} meetings with {attendance:,} attendances "
        f"at a cost of £{cost:,.0f}" + (f" (£{cost / attendance:,.2f} per attendee)." if attendance else ".")
    ] if rows else ["No meetings of consultative groups or ward panels are recorded yet."]
    return [Section("groups", "Consultative groups and ward panels", summary, [
        Table("Meetings, attendance and cost by group.",
              [("Borough", ""), ("Group", ""), ("Kind", ""), ("Meetings", "num"), ("Attendance", "num"), ("Cost", "num"),
               ("Cost per attendee", "num")],
              [[borough_name(x["borough"]), x["group_id"], (x["group_kind"] or "").replace("_", " "), count(x["meetings"]),
                count(int(x["attendance"]) if x["attendance"] is not None else None), money(x["cost_gbp"]), money(x["cost_per_attendee"])]
               for x in sorted(rows, key=lambda x: (borough_name(x["borough"]), x["group_id"]))],
              p, "group_activity", compact=True),
    ])]


# --- analysis: survey, audits, themes ------------------------------------------------------------------


def survey(r: Reader, cycle: str) -> list[Section]:
    p = r.provenance(cycle)
    rows = r.rows("SELECT * FROM survey_indicators WHERE cycle = ?", cycle)
    waves = sorted({x["wave"] for x in rows})
    if not waves:
        return [Section("survey", "Public Attitude Survey", ["No survey interviews are recorded for this cycle yet."])]
    latest = waves[-1]
    at = {(x["wave"], x["scope"], x["indicator"]): x for x in rows}
    london_latest = [at.get((latest, LONDON, i)) for i in INDICATORS]
    said = [f"{sentence(INDICATOR_LABELS[x['indicator']])}: {x['weighted_pct']:.0f}% ({x['ci_low']:.0f}–{x['ci_high']:.0f}%)"
            for x in london_latest if x and not x["suppressed"]]
    summary = [f"Survey waves {', '.join(waves)}. Across London in {latest} (weighted, with 95% intervals): " + "; ".join(said) + "."
               if said else f"Across London in {latest} every estimate is suppressed (fewer than 30 interviews)."]
    first = at.get((waves[0], LONDON, "good_job"))
    last = at.get((latest, LONDON, "good_job"))
    if len(waves) > 1 and first and last and not first["suppressed"] and not last["suppressed"]:
        overlap = first["ci_low"] <= last["ci_high"] and last["ci_low"] <= first["ci_high"]
        summary.append(f"'Police do a good job locally' moved from {first['weighted_pct']:.0f}% in {waves[0]} to "
                       f"{last['weighted_pct']:.0f}% in {latest}" + ("; the intervals overlap, so the change may be noise." if overlap else "."))
    estimates = []
    for indicator in INDICATORS:
        for k, wave in enumerate(waves):
            x = at.get((wave, LONDON, indicator))
            estimates.append(svg.Estimate(INDICATOR_LABELS[indicator], x and x["weighted_pct"], x and x["ci_low"], x and x["ci_high"],
                                          bool(x is None or x["suppressed"]), k))
    boroughs = [at.get((latest, code, "good_job")) for code in BOROUGHS]
    ranked = sorted([x for x in boroughs if x], key=lambda x: (x["suppressed"], -(x["weighted_pct"] or 0)))
    borough_estimates = [svg.Estimate(borough_name(x["scope"]), x["weighted_pct"], x["ci_low"], x["ci_high"], bool(x["suppressed"]))
                         for x in ranked]
    table_rows = []
    for code in [LONDON] + sorted(BOROUGHS, key=borough_name):
        cells: list[Cell | str] = [Cell(borough_name(code), "strong" if code == LONDON else "")]
        for indicator in INDICATORS:
            x = at.get((latest, code, indicator))
            if x is None:
                cells.append(Cell("—", "num muted"))
            elif x["suppressed"]:
                cells.append(Cell(SUPPRESSED_SURVEY, "suppressed"))
            else:
                cells.append(Cell(f"{x['weighted_pct']:.0f}%", "num"))
        table_rows.append(cells)
    return [Section("survey", "Public Attitude Survey indicators", summary, [
        Figure("London: each indicator by wave, weighted estimate with its 95% interval.",
               svg.interval_chart(estimates, "Survey indicators, London", waves, group_size=len(waves)), p, "survey_indicators", wide=True),
        Figure(f"'Police do a good job locally' by borough in {latest}, with 95% intervals.",
               svg.interval_chart(borough_estimates, f"Good job by borough, {latest}"), p, "survey_indicators", wide=True),
        Table(f"Weighted estimates by borough in {latest} (per cent agreeing).",
              [("Scope", "")] + [(INDICATOR_LABELS[i], "num") for i in INDICATORS], table_rows, p, "survey_indicators", compact=True,
              note="Estimates from fewer than 30 interviews are suppressed."),
    ])]


def audits(r: Reader, cycle: str) -> list[Section]:
    p = r.provenance(cycle)
    rows = r.rows("SELECT * FROM cdrp_audits WHERE cycle = ?", cycle)
    received = [x for x in rows if x["received"]]
    missing = [x["borough"] for x in rows if not x["received"]]
    superseded = [x for x in rows if (x["superseded_count"] or 0) > 0]
    themes = Counter(t for x in received for t in (x["top_priorities"] or [])[:1])
    summary = [
        f"CDRP audits received from {len(received)} of {len(rows)} boroughs" + (f"; missing: {names(missing)}." if missing else "."),
    ]
    if superseded:
        summary.append(f"{len(superseded)} boroughs resubmitted; the latest audit is used: {names([x['borough'] for x in superseded])}.")
    if themes:
        summary.append("Most often ranked first: " + ", ".join(f"{sentence(theme_label(t))} ({n})" for t, n in themes.most_common(4)) + ".")
    tiles = {x["borough"]: svg.Tile(svg.GREEN if x["received"] else svg.RED,
                                    ("received" + (f" (+{x['superseded_count']})" if x["superseded_count"] else "")) if x["received"] else "missing",
                                    f"{borough_name(x['borough'])}: {'received ' + (x['audit_ref'] or '') if x['received'] else 'missing'}")
             for x in rows}
    return [Section("audits", "CDRP audits: status and priorities", summary, [
        Figure("CDRP audit status by borough.",
               svg.tile_map(tiles, [(svg.GREEN, "received"), (svg.RED, "missing")], "CDRP audit status"), p, "cdrp_audits"),
        Table("CDRP audits by borough, with each audit's priorities in rank order.",
              [("Borough", ""), ("Received", ""), ("Audit", ""), ("Superseded", "num"), ("Priorities (rank order)", "")],
              [[borough_name(x["borough"]), Cell("yes" if x["received"] else "missing", "" if x["received"] else "bad"),
                x["audit_ref"] or "—", count(x["superseded_count"]),
                ", ".join(theme_label(t) for t in (x["top_priorities"] or [])) or "—"]
               for x in sorted(rows, key=lambda x: borough_name(x["borough"]))],
              p, "cdrp_audits", compact=True),
    ])]


def themes(r: Reader, cycle: str, *, adopted: set[str] | None = None) -> list[Section]:
    p = r.provenance(cycle)
    rows = r.rows("SELECT * FROM theme_ranking WHERE cycle = ? ORDER BY scope, rank", cycle)
    london = [x for x in rows if x["scope"] == LONDON]
    if not london:
        return [Section("themes", "Themes ranked by source", ["No theme ranking is available for this cycle yet."])]
    summary = [
        "Each theme scored by three sources: the share of consultation responses naming it, the weighted share of survey "
        "respondents naming it, and its place in the CDRP audits; the combined score is their mean.",
        "London's top five: " + ", ".join(f"{x['rank']}. {sentence(theme_label(x['theme']))} ({x['combined_score']:.2f})" for x in london[:5]) + ".",
    ]
    sources = ["Consultation", "Survey", "CDRP", "Combined"]
    chart = svg.source_bars(
        [svg.SourceRow(f"{x['rank']}. {theme_label(x['theme'])}",
                       (x["consultation_share"], x["survey_share"], x["cdrp_score"], x["combined_score"]),
                       bool(adopted and x["theme"] in adopted)) for x in london[:10]],
        sources, "Top ten themes in London by source")
    table_rows = [[str(x["rank"]), Cell(theme_label(x["theme"]), "strong" if adopted and x["theme"] in adopted else ""),
                   share(x["consultation_share"], 1), share(x["survey_share"], 1), f"{x['cdrp_score']:.2f}",
                   f"{x['combined_score']:.3f}"] for x in london]
    top3 = []
    for code in sorted(BOROUGHS, key=borough_name):
        mine = [x for x in rows if x["scope"] == code][:3]
        top3.append([borough_name(code)] + [theme_label(x["theme"]) for x in mine] + ["—"] * (3 - len(mine)))
    return [Section("themes", "Themes ranked by source", summary, [
        Figure("London's ten highest-ranked themes: each source's score and the combined score"
               + (" (adopted priorities in bold)." if adopted else "."), chart, p, "theme_ranking", wide=True),
        Table("Every theme in London, ranked.", [("Rank", "num"), ("Theme", ""), ("Consultation share", "num"),
                                                 ("Survey share", "num"), ("CDRP score", "num"), ("Combined", "num")],
              table_rows, p, "theme_ranking"),
        Table("Each borough's three highest-ranked themes.", [("Borough", ""), ("First", ""), ("Second", ""), ("Third", "")],
              top3, p, "theme_ranking", compact=True),
    ])]


# --- feedback -----------------------------------------------------------------------------------------------


def feedback(r: Reader, cycle: str, round_: int) -> list[Section]:
    p = r.provenance(cycle)
    rows = r.rows("SELECT * FROM feedback_log WHERE cycle = ? ORDER BY round, borough", cycle)
    mine = [x for x in rows if x["round"] == round_]
    reached = [x for x in mine if x["published"]]
    waiting = [x["borough"] for x in mine if not x["published"]]
    themes_fed = Counter(t for x in reached for t in (x["themes"] or []))
    first = min((x["first_published_at"] for x in reached), default=None)
    latest = max((x["first_published_at"] for x in reached), default=None)
    summary = [
        f"Round {round_} feedback has reached {len(reached)} of {len(mine)} boroughs"
        + (f" (first on {day(first.date())}, latest on {day(latest.date())})" if first else "") + ". "
        + (f"Still waiting: {names(waiting)}." if waiting else "No borough is still waiting."),
    ]
    if themes_fed:
        summary.append("Themes fed back most widely: " + ", ".join(
            f"{sentence(theme_label(t))} ({n} boroughs)" for t, n in themes_fed.most_common(5)) + ".")
    if round_ == 2:
        earlier = [x for x in rows if x["round"] == 1]
        summary.append(f"Round 1 reached {sum(1 for x in earlier if x['published'])} of {len(earlier)} boroughs.")
    stage_state = next((x["status"] for x in stage_rows(r, cycle) if x["stage"] == f"feedback_{round_}"), "open")
    late = stage_state == "overdue"
    waiting_fill = svg.RED if late else svg.AMBER if stage_state == "open" else svg.GREY
    tiles = {x["borough"]: svg.Tile(svg.GREEN if x["published"] else waiting_fill,
                                    short_day(x["first_published_at"].date()) if x["published"] else "waiting",
                                    f"{borough_name(x['borough'])}: " + (f"fed back {instant(x['first_published_at'])}" if x["published"] else "waiting"))
             for x in mine}
    return [Section(f"feedback-{round_}", f"Feedback, round {round_}: what was fed back where", summary, [
        Figure(f"Round {round_} feedback by borough: published (with its date) or still waiting.",
               svg.tile_map(tiles, [(svg.GREEN, "fed back"),
                                    (waiting_fill, "still waiting" + (" (overdue)" if late else " (stage not open yet)" if stage_state == "upcoming" else ""))],
                            f"Feedback round {round_}"), p, "feedback_log"),
        Table(f"Round {round_} feedback by borough and the themes it covered.",
              [("Borough", ""), ("Published", ""), ("First published", ""), ("Themes fed back", "")],
              [[borough_name(x["borough"]), Cell("yes" if x["published"] else "waiting", "" if x["published"] else "bad"),
                instant(x["first_published_at"]) if x["published"] else "—",
                ", ".join(theme_label(t) for t in (x["themes"] or [])) or "—"]
               for x in sorted(mine, key=lambda x: borough_name(x["borough"]))],
              p, "feedback_log", compact=True),
    ])]


# --- priorities and publication ------------------------------------------------------------------------------


def _priorities(r: Reader, cycle: str) -> list[dict[str, Any]]:
    return r.rows(
        "SELECT p.*, t.rank AS theme_rank, t.consultation_share, t.survey_share, t.cdrp_score, t.combined_score "
        "FROM priority_traceability p LEFT JOIN theme_ranking t ON t.cycle = p.cycle AND t.scope = p.scope AND t.theme = p.theme "
        "WHERE p.cycle = ? ORDER BY p.scope = 'LONDON' DESC, p.scope, p.rank", cycle)


def priorities(r: Reader, cycle: str) -> list[Section]:
    p = r.provenance(cycle)
    rows = _priorities(r, cycle)
    if not rows:
        return [Section("priorities", "Adopted priorities and their evidence", [
            "No priorities have been adopted yet. The theme ranking below is the evidence the Panel has to choose from."
        ])] + themes(r, cycle)
    london = [x for x in rows if x["scope"] == LONDON]
    local = [x for x in rows if x["scope"] != LONDON]
    summary = [
        f"The Panel has adopted {len(rows)} priorities: {len(london)} for London"
        + (" (" + ", ".join(f"{x['rank']}. {sentence(theme_label(x['theme']))}" for x in london) + ")" if london else "")
        + (f" and {len(local)} for single boroughs." if local else "."),
        "Each priority's evidence trail: the consultation responses in scope that name its theme, the survey weight naming it, "
        "the CDRP audits ranking it, and where the theme stands in the combined ranking for its scope.",
    ]
    off = [x for x in rows if x["theme_rank"] is not None and x["theme_rank"] > 5]
    if off:
        summary.append("Adopted although outside the top five of the combined ranking for their scope: " + "; ".join(
            f"{theme_label(x['theme'])} in {borough_name(x['scope'])} (ranked {x['theme_rank']})" for x in off) + ".")
    chart = svg.source_bars(
        [svg.SourceRow(f"{x['rank']}. {theme_label(x['theme'])}" + ("" if x["scope"] == LONDON else f" ({borough_name(x['scope'])})"),
                       (x["consultation_share"], x["survey_share"], x["cdrp_score"], x["combined_score"]))
         for x in rows], ["Consultation", "Survey", "CDRP", "Combined"], "Evidence behind each adopted priority")
    table_rows = [[str(x["rank"]), theme_label(x["theme"]), borough_name(x["scope"]), count(x["supporting_responses"]),
                   f"{x['supporting_survey_weight']:,.0f}" if x["supporting_survey_weight"] is not None else "—",
                   count(len(x["cdrp_boroughs"] or [])), count(x["evidence_events"]),
                   count(x["theme_rank"])] for x in rows]
    cdrp_rows = [[f"{x['rank']}. {theme_label(x['theme'])}", borough_name(x["scope"]), names(sorted(x["cdrp_boroughs"] or [])) or "none"]
                 for x in rows]
    return [Section("priorities", "Adopted priorities and their evidence", summary, [
        Table("Adopted priorities with the evidence behind each.",
              [("Rank", "num"), ("Priority", ""), ("Scope", ""), ("Responses naming it", "num"), ("Survey weight", "num"),
               ("CDRP audits", "num"), ("Evidence events", "num"), ("Place in ranking", "num")], table_rows, p,
              "priority_traceability, theme_ranking"),
        Figure("Each adopted priority's theme: its score from each source and combined, in its own scope.", chart, p,
               "priority_traceability, theme_ranking", wide=True),
        Table("The boroughs whose latest CDRP audit ranks each priority's theme.", [("Priority", ""), ("Scope", ""), ("CDRP audits ranking it", "")],
              cdrp_rows, p, "priority_traceability", compact=True),
    ])] + themes(r, cycle, adopted={x["theme"] for x in london})


def traceability(r: Reader, cycle: str) -> list[Section]:
    p = r.provenance(cycle)
    rows = _priorities(r, cycle)
    status = {x["stage"]: x for x in stage_rows(r, cycle)}
    publication = status.get("publication")
    published = publication is not None and "plan_not_published" not in (publication["blockers"] or [])
    (distinct,) = r.rows("SELECT count(DISTINCT event_id) AS n FROM priority_evidence WHERE cycle = ?", cycle)
    summary = [
        (f"The plan is published." if published else "The plan is not published yet.")
        + f" It rests on {len(rows)} adopted priorities, traced to {distinct['n']:,} distinct evidence events "
        "(consultation responses, survey interviews and CDRP audits).",
        "Each priority's evidence events are listed by event id in the priority_evidence table, by scope and rank: "
        + evidence_command(cycle, rows) + f", and planning export --cycle {cycle} holds them all.",
    ] if rows else ["No priorities have been adopted, so there is nothing to trace yet."]
    table_rows = [[f"{x['rank']}. {theme_label(x['theme'])}", borough_name(x["scope"]), count(x["supporting_responses"]),
                   f"{x['supporting_survey_weight']:,.0f}" if x["supporting_survey_weight"] is not None else "—",
                   names(sorted(x["cdrp_boroughs"] or [])) or "none", count(x["evidence_events"])]
                  for x in rows]
    sections = [Section("traceability", "Traceability: from evidence to plan", summary, [
        Table("Each adopted priority traced to its evidence.",
              [("Priority", ""), ("Scope", ""), ("Responses", "num"), ("Survey weight", "num"), ("CDRP audits ranking it", ""),
               ("Evidence events", "num")], table_rows, p, "priority_traceability, priority_evidence", compact=True),
    ])]
    return sections + feedback(r, cycle, 2)


def evidence_command(cycle: str, rows: list[dict[str, Any]]) -> str:
    """How to list one priority's evidence, shown on a London priority (a borough's would print its code)."""
    london = next((x for x in rows if x["scope"] == LONDON), None)
    if london is None:
        return (f"planning query priority_evidence --cycle {cycle} --scope (the borough's code) --rank (the priority's rank) "
                "prints a priority's (the evidence_query of its row in priority_traceability)")
    return (f"planning query priority_evidence --cycle {cycle} --scope LONDON --rank {london['rank']} prints those of "
            f"{theme_label(london['theme']).lower()} in London; another priority's take its own scope and rank "
            "(the evidence_query of its row in priority_traceability)")


def sources(sections: list[Section]) -> list[str]:
    """The Panel tables the sections' figures and tables draw on, in the order they first appear."""
    named = [name for s in sections for b in s.blocks if isinstance(b, (Table, Figure)) for name in b.source.split(", ")]
    return [name for name in dict.fromkeys(named) if name in PANEL_TABLES]


def table_note(name: str) -> str:
    """What one row of a Panel table is, from its schema file (projections/sql/<table>.yml)."""
    return f"{name}: " + PANEL_TABLES[name].description.replace("`", "")


def notes(r: Reader, cycle: str, synthetic: bool, tables: list[str]) -> Section:
    p = r.provenance(cycle)
    lines = [
        f"Every number comes from the Panel tables of the published snapshot, built at on = {day(p.on)} (events after the end "
        f"of that day, UTC, are left out) and as_of = {instant(p.as_of)} (events recorded later are left out). "
        "Retracted events are left out everywhere; LONDON rows aggregate the 32 boroughs.",
        "Disclosure control: an inclusion cell with fewer than 10 respondents is suppressed, and where exactly one cell of a "
        "borough's dimension would be suppressed, the next smallest is suppressed too. A survey estimate from fewer than 30 "
        "interviews is suppressed. Suppressed cells are shown as 'suppressed' and never as a number; no total in this pack "
        "lets one be worked out.",
        f"'Not hearing from' is this pack's reading of a representation ratio below {UNDER}; the ratio itself is the Panel table's.",
        f"The tables are also available as files: planning export --cycle {cycle} --format csv|parquet|xlsx.",
        *(["Each figure and table names its source, a Panel table. What one row of each is:"] if tables else []),
        *[table_note(name) for name in tables],
    ]
    if synthetic:
        lines.insert(0, "SYNTHETIC DATA: the events behind this pack were generated for demonstration and testing. "
                        "They describe no real consultation, survey, audit or person.")
    return Section("notes", "Notes on the data", lines)


# --- the packs ------------------------------------------------------------------------------------------------------


def sections_for(r: Reader, cycle: str, stage: str) -> list[Section]:
    opening = [timetable(r, cycle, stage)]
    body: list[Section]
    if stage == "brief":
        body = last_cycle(r, cycle)
    elif stage == "programme_approval":
        body = targets(r, cycle)
    elif stage == "fieldwork":
        body = coverage(r, cycle) + inclusion(r, cycle) + groups(r, cycle)
    elif stage == "analysis":
        body = survey(r, cycle) + audits(r, cycle) + themes(r, cycle)
    elif stage == "feedback_1":
        body = feedback(r, cycle, 1)
    elif stage == "priorities":
        body = priorities(r, cycle)
    elif stage == "feedback_2":
        body = feedback(r, cycle, 2)
    elif stage == "publication":
        body = traceability(r, cycle)
    else:
        raise PackError(f"unknown stage {stage!r}; stages: {', '.join(STAGES)}")
    return opening + body + [notes(r, cycle, r.synthetic, sources(opening + body))]


def as_of_of(r: Reader, cycle: str) -> tuple[date, datetime]:
    p = r.provenance(cycle)
    return p.on, p.as_of
