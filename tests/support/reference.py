"""An independent, brute-force reference of every Panel table in docs/tables.md.

Plain Python over plain event dicts, written from the contract (docs/tables.md
and docs/decisions.md) without reading the pipeline's SQL, so
that the property tests in ``test_projections_reference.py`` compare two
independent readings of the same contract. Only the stdlib is used; the
vocabularies are copied from docs/events.md, in its order.

Input: every event as sent (``event_id``, ``event_type``, ``occurred_at`` as
ISO-8601 text or datetime, ``cycle``, ``payload``) plus ``recorded_at``
(datetime or ISO text, UTC) and ``position`` (int, arrival order).

Binding decisions (docs/decisions.md)
------------------------------------
- ``on`` is a calendar date judged in UTC: an event is in when its
  ``occurred_at`` is before the next UTC midnight. ``as_of`` is a datetime: an
  event is in when ``recorded_at <= as_of`` (a bare-date as_of is the end of
  that day; callers pass a datetime).
- "Later supersedes" (audits, profiles, programmes, priorities, cycle windows,
  sign-offs, a group's latest meeting) = later ``occurred_at``, ties broken by
  later ``position``.
- Retractions leave their target out of every table; the target is looked up
  across all cycles; a retraction that is itself (effectively) retracted no
  longer removes its target. "Effectively" is recursive: in a chain
  R3 -> R2 -> R1 -> E, R3 cancels R2, so R1 stands and E is out. Event ids
  are compared as UUIDs (upper or lower case, the forms the contract
  accepts) and shown in canonical 8-4-4-4-12 lower
  case. Retractions are events like any other: one that
  occurred after ``on`` or was recorded after ``as_of`` has no effect.
- Fieldwork gate without a programme: blocker ``programme_not_approved``
  instead of below_target codes. Blockers: previous stage's
  ``<stage>_not_signed_off`` first, then the stage's own conditions, boroughs
  in code order. The latest sign-off is shown. ``top_priorities`` is null
  when no audit; ``superseded_count`` = earlier live audits of the borough.
  ``pct_of_target`` is unrounded, null when the target is null or 0.

Erasure
-------
Respondent identity is the ``respondent_ref``. An erased respondent's
responses still count (as the same anonymous respondent) in coverage, theme
and traceability figures, but their demographics are gone: they are "not
stated" in ``inclusion``. Erasure deletes keys, so ANY
``respondent.erasure_requested`` in the input (any cycle, whatever ``on``,
``as_of`` or retractions say) removes that ref's demographics.

Choices where docs/tables.md is ambiguous (what a Planning Panel member would
expect)
-----------------------------------------------------------------------------
General
  * Only events whose ``cycle`` is the built cycle feed a table (profiles
    included: "its cycle is the cycle it is recorded for"); retractions and
    erasures act across cycles.
  * Scopes are the 32 boroughs in code order, then ``LONDON``; ``LONDON``
    pools the boroughs' events (it is not a mean of borough figures), except
    ``cdrp_score``, which the spec defines as a mean.
  * "PAS interviews" are all ``survey.response_recorded`` events: docs/events.md
    defines that event as one interview of the Public Attitude Survey, so its
    free-text ``survey`` field is not used as a filter. (First draft filtered
    on ``survey == "PAS"``; reported as a contract gap: ``survey`` is free
    text, so another survey sent as this event would be mixed into the PAS
    figures.)

stage_status
  * Windows: defaults from the spec for cycle P-(P+1) (Y = P-1); each
    stage's window is overridden by the latest ``cycle.opened`` that lists
    that stage (docs/decisions.md: later supersedes "cycle windows", so a window, not a
    whole ``cycle.opened``, is what is superseded: a later ``cycle.opened``
    that does not list a stage leaves an earlier override of it in force).
  * ``signed_off_at`` is the latest sign-off's ``occurred_at``.
  * Fieldwork target per borough: the latest programme's per-borough target,
    else its default; compared with the number of responses (not respondents).

consultation_coverage
  * Borough × channel rows only where ≥ 1 response; ``target`` and
    ``pct_of_target`` null on those rows.

inclusion
  * A respondent is in a borough's scope when they have ≥ 1 live response in
    that borough (in LONDON when they have ≥ 1 anywhere).
  * A respondent's group in a dimension is the value stated in their LATEST
    (occurred_at, position) response in the scope that states that dimension;
    responses that leave it out do not "unstate" it. Each respondent counts in
    at most one group per dimension.
  * ``share`` = group respondents / respondents in the scope who stated the
    dimension (null when none stated; such cells are suppressed anyway).
  * ``population_share``: from the latest ``borough.profile_recorded`` of each
    borough (in cycle, live). Null when there is no profile, when the profile
    lacks the dimension, or when the dimension's groups sum to 0. A group
    missing from a profile that has the dimension counts as population 0
    (share 0.0). LONDON sums, per dimension, over the boroughs whose latest
    profile has the dimension (null when none has).
  * ``representation_ratio`` = share / population_share; null when either is
    null or population_share is 0 (and when the cell is suppressed).
  * Suppression: primary when respondents < 10 (zero included); secondary,
    when exactly one cell of a scope × dimension is suppressed, the
    unsuppressed cell with the fewest respondents, ties broken by the
    ALPHABETICALLY first group name (e.g. ``no`` before ``yes``, ``other``
    before ``white``), like ``theme_ranking``'s "ties broken by theme name".
    One pass only. Suppressed cells: respondents, share, representation_ratio
    null, ``suppressed`` true; ``population_share`` stays visible.

survey_indicators
  * Per wave × scope × indicator with ≥ 1 answer (an indicator absent from
    ``indicators`` is not an answer). p = Σw·y/Σw; n_eff = (Σw)²/Σw²;
    ci = p ± 1.96·√(p(1−p)/n_eff) clipped to [0, 1]; ``weighted_pct``,
    ``ci_low``, ``ci_high`` are percentages (×100, unrounded).
  * ``unweighted_n`` = interviews answering; suppressed when < 30, then
    weighted_pct/ci_low/ci_high null; ``effective_n`` stays visible.

theme_ranking
  * consultation_share = responses in scope naming the theme / responses in
    scope (all of a response's themes count, whatever their rank).
  * survey_share = Σ weight of PAS interviews in scope naming it in
    ``priorities`` / Σ weight of all PAS interviews in scope (all waves).
  * cdrp_score: borough: (6 − rank)/5 when its latest audit ranks the theme,
    else 0; LONDON: mean of the borough scores over boroughs with a received
    audit.
  * A source "has data" in a scope when: consultation ≥ 1 response; survey
    ≥ 1 PAS interview; cdrp ≥ 1 received audit. A source without data shows
    NULL (not 0) and is left out of combined_score = mean of the sources with
    data; combined_score is null when no source has data.
  * rank 1..21 within a scope: combined_score descending (null last), ties by
    theme name ascending. A row for every theme × (32 boroughs + LONDON).

feedback_log
  * A ``feedback.published`` of round r covers a borough when it lists it or
    says ``"all"``. ``published`` = covered by ≥ 1; ``first_published_at`` =
    earliest ``occurred_at`` of those events; ``themes`` = the union of their
    themes, sorted alphabetically; null (and first_published_at null) when
    not published.

priority_traceability
  * From the latest ``priorities.adopted``; one row per priority. Scope
    LONDON = all boroughs. supporting_responses = live responses in scope
    naming the theme (any rank); supporting_survey_weight = Σ weight of PAS
    interviews in scope naming it (0.0 when none); cdrp_boroughs = boroughs
    in scope whose latest audit ranks it, sorted (empty list when none);
    supporting_interviews = how many of those interviews; evidence_events =
    responses + interviews + latest audits counted; evidence_query = the
    command ``planning query priority_evidence --cycle C --scope S --rank N``.

priority_evidence
  * One row per priority of priority_traceability × event of its evidence:
    (cycle, scope, rank, kind, event_id), kind consultation_response,
    survey_interview or cdrp_audit, the event id canonical. So a priority's
    rows of each kind are exactly as many as its row in priority_traceability
    counts.

group_activity
  * Per group_id over the cycle's live meetings: group_kind and borough of the
    latest meeting; meetings = count; attendance = Σ; cost_gbp = Σ;
    cost_per_attendee = Σcost / Σattendance, null when attendance is 0.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

UTC = timezone.utc

BOROUGHS: tuple[str, ...] = tuple(f"E090000{n:02d}" for n in range(2, 34))
LONDON = "LONDON"
SCOPES: tuple[str, ...] = (*BOROUGHS, LONDON)
THEMES: tuple[str, ...] = (
    "anti_social_behaviour", "burglary", "robbery", "vehicle_crime", "violence",
    "knife_crime", "gun_crime", "domestic_abuse", "sexual_offences", "hate_crime",
    "drugs", "youth_crime", "road_safety", "fraud", "terrorism",
    "police_visibility", "response_times", "community_engagement",
    "trust_confidence", "stop_and_search", "other",
)
DIMENSIONS: dict[str, tuple[str, ...]] = {
    "age_band": ("16-24", "25-34", "35-44", "45-54", "55-64", "65+"),
    "gender": ("female", "male", "other"),
    "ethnic_group": ("asian", "black", "mixed", "white", "other"),
    "disability": ("yes", "no"),
}
STAGES: tuple[str, ...] = (
    "brief", "programme_approval", "fieldwork", "analysis",
    "feedback_1", "priorities", "feedback_2", "publication",
)
INDICATORS: tuple[str, ...] = (
    "good_job", "trust", "listens", "relied_on", "treats_fairly",
    "deals_with_matters", "informed",
)
SUPPRESS_BELOW = 10
SURVEY_MIN_N = 30
Z95 = 1.96

TABLES: tuple[str, ...] = (
    "stage_status", "consultation_coverage", "cdrp_audits", "inclusion", "survey_indicators",
    "theme_ranking", "feedback_log", "priority_traceability", "priority_evidence", "group_activity",
)
COLUMNS: dict[str, tuple[str, ...]] = {
    "stage_status": ("cycle", "stage", "opens_on", "due_on", "status", "ready", "blockers", "signed_off_by", "signed_off_at"),
    "consultation_coverage": ("cycle", "borough", "channel", "responses", "respondents", "target", "pct_of_target"),
    "inclusion": ("cycle", "scope", "dimension", "group", "respondents", "share", "population_share",
                  "representation_ratio", "suppressed"),
    "survey_indicators": ("cycle", "wave", "scope", "indicator", "weighted_pct", "ci_low", "ci_high", "unweighted_n",
                          "effective_n", "suppressed"),
    "cdrp_audits": ("cycle", "borough", "received", "audit_ref", "superseded_count", "top_priorities"),
    "theme_ranking": ("cycle", "scope", "theme", "consultation_share", "survey_share", "cdrp_score", "combined_score",
                      "rank"),
    "feedback_log": ("cycle", "round", "borough", "published", "first_published_at", "themes"),
    "priority_traceability": ("cycle", "rank", "theme", "scope", "supporting_responses", "supporting_interviews",
                              "supporting_survey_weight", "cdrp_boroughs", "evidence_events", "evidence_query"),
    "priority_evidence": ("cycle", "scope", "rank", "kind", "event_id"),
    "group_activity": ("cycle", "group_id", "group_kind", "borough", "meetings", "attendance", "cost_gbp",
                       "cost_per_attendee"),
}
# The columns that identify a row (for matching rows between two sides).
KEYS: dict[str, tuple[str, ...]] = {
    "stage_status": ("cycle", "stage"),
    "consultation_coverage": ("cycle", "borough", "channel"),
    "inclusion": ("cycle", "scope", "dimension", "group"),
    "survey_indicators": ("cycle", "wave", "scope", "indicator"),
    "cdrp_audits": ("cycle", "borough"),
    "theme_ranking": ("cycle", "scope", "theme"),
    "feedback_log": ("cycle", "round", "borough"),
    "priority_traceability": ("cycle", "scope", "theme"),
    "priority_evidence": ("cycle", "scope", "rank", "event_id"),
    "group_activity": ("cycle", "group_id"),
}


# --- time -----------------------------------------------------------------------


def to_utc(value: Any) -> datetime:
    """ISO-8601 text (``Z`` or an offset; naive = UTC) or a datetime, as an aware UTC datetime."""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _date(value: Any) -> date:
    return value if isinstance(value, date) and not isinstance(value, datetime) else date.fromisoformat(value)


def _latest(events: list[dict]) -> dict | None:
    """The event that supersedes the others: later occurred_at, then later arrival."""
    return max(events, key=lambda e: (to_utc(e["occurred_at"]), e["position"]), default=None)


def default_windows(cycle: str) -> dict[str, tuple[date, date]]:
    plan_year = int(cycle[:4])
    y = plan_year - 1
    return {
        "brief": (date(y, 3, 1), date(y, 3, 31)),
        "programme_approval": (date(y, 4, 1), date(y, 5, 31)),
        "fieldwork": (date(y, 6, 1), date(y, 8, 31)),
        "analysis": (date(y, 9, 1), date(y, 9, 30)),
        "feedback_1": (date(y, 10, 1), date(y, 10, 31)),
        "priorities": (date(y, 11, 1), date(y, 11, 30)),
        "feedback_2": (date(plan_year, 2, 1), date(plan_year, 3, 31)),
        "publication": (date(plan_year, 5, 1), date(plan_year, 6, 30)),
    }


# --- the evidence at (on, as_of) ------------------------------------------------------


def canonical_id(value: Any) -> str:
    """A UUID as the contract accepts it (8-4-4-4-12, either case; older stores may hold braces, ``urn:uuid:``
    or no hyphens) as 8-4-4-4-12 lower case."""
    text = str(value).strip().lower()
    if text.startswith("urn:uuid:"):
        text = text[len("urn:uuid:"):]
    digits = text.replace("{", "").replace("}", "").replace("-", "")
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


def live_events(events: list[dict], on: date, as_of: datetime) -> list[dict]:
    """Events inside the (on, as_of) cut that no effective retraction removes (all cycles)."""
    end_of_on = datetime.combine(on + timedelta(days=1), time(0), tzinfo=UTC)
    as_of = to_utc(as_of)
    visible = [e for e in events if to_utc(e["occurred_at"]) < end_of_on and to_utc(e["recorded_at"]) <= as_of]
    retractions: dict[str, list[str]] = defaultdict(list)
    for e in visible:
        if e["event_type"] == "event.retracted":
            retractions[canonical_id(e["payload"]["target_event_id"])].append(canonical_id(e["event_id"]))

    memo: dict[str, bool] = {}

    def removed(event_id: str, path: frozenset[str] = frozenset()) -> bool:
        if event_id in memo:
            return memo[event_id]
        if event_id in path:  # a retraction cycle: treat as not removing
            return False
        result = any(not removed(r, path | {event_id}) for r in retractions.get(event_id, ()))
        memo[event_id] = result
        return result

    return [e for e in visible if not removed(canonical_id(e["event_id"]))]


def reference_tables(events: list[dict], cycle: str, on: date, as_of: datetime) -> dict[str, list[dict]]:
    live = [e for e in live_events(events, on, as_of) if e["cycle"] == cycle]
    by_type: dict[str, list[dict]] = defaultdict(list)
    for e in live:
        by_type[e["event_type"]].append(e)
    erased = {e["payload"]["respondent_ref"] for e in events if e["event_type"] == "respondent.erasure_requested"}

    responses = by_type["consultation.response_received"]
    interviews = by_type["survey.response_recorded"]  # every one is a PAS interview (docs/events.md)
    audits_by_borough: dict[str, list[dict]] = defaultdict(list)
    for e in by_type["cdrp.audit_submitted"]:
        audits_by_borough[e["payload"]["borough"]].append(e)
    latest_audit = {b: _latest(a) for b, a in audits_by_borough.items()}
    programme = _latest(by_type["programme.approved"])

    def target(borough: str) -> int | None:
        if programme is None:
            return None
        for t in programme["payload"].get("targets", []):
            if t["borough"] == borough:
                return t["min_responses"]
        return programme["payload"]["default_min_responses"]

    def covered(round_: int) -> dict[str, list[dict]]:
        out: dict[str, list[dict]] = defaultdict(list)
        for e in by_type["feedback.published"]:
            if e["payload"]["round"] != round_:
                continue
            boroughs = e["payload"]["boroughs"]
            for b in BOROUGHS if boroughs == "all" else set(boroughs):
                out[b].append(e)
        return out

    feedback = {1: covered(1), 2: covered(2)}

    def in_scope(borough: str, scope: str) -> bool:
        return scope == LONDON or borough == scope

    tables: dict[str, list[dict]] = {}

    # --- stage_status ---------------------------------------------------------------
    windows = default_windows(cycle)
    opened = _latest(by_type["cycle.opened"])
    for stage in STAGES:
        override = _latest([e for e in by_type["cycle.opened"]
                            if any(w["stage"] == stage for w in e["payload"].get("timetable", []))])
        if override is not None:
            (w,) = [w for w in override["payload"]["timetable"] if w["stage"] == stage]
            windows[stage] = (_date(w["opens_on"]), _date(w["due_on"]))
    sign_offs: dict[str, dict] = {}
    for stage in STAGES:
        s = _latest([e for e in by_type["stage.signed_off"] if e["payload"]["stage"] == stage])
        if s is not None:
            sign_offs[stage] = s
    response_count = defaultdict(int)
    for e in responses:
        response_count[e["payload"]["borough"]] += 1

    def own_blockers(stage: str) -> list[str]:
        if stage == "brief":
            return [] if opened is not None else ["cycle_not_opened"]
        if stage == "programme_approval":
            return [] if programme is not None else ["programme_not_approved"]
        if stage == "fieldwork":
            if programme is None:
                return ["programme_not_approved"]
            return [f"below_target:{b}" for b in BOROUGHS if response_count[b] < target(b)]
        if stage == "analysis":
            return [f"audit_missing:{b}" for b in BOROUGHS if b not in latest_audit]
        if stage in ("feedback_1", "feedback_2"):
            return [f"feedback_missing:{b}" for b in BOROUGHS if b not in feedback[int(stage[-1])]]
        if stage == "priorities":
            return [] if by_type["priorities.adopted"] else ["priorities_not_adopted"]
        if stage == "publication":
            return [] if by_type["plan.published"] else ["plan_not_published"]
        raise AssertionError(stage)

    rows = []
    for i, stage in enumerate(STAGES):
        opens_on, due_on = windows[stage]
        s = sign_offs.get(stage)
        if s is not None:
            status = "signed_off"
        elif on < opens_on:
            status = "upcoming"
        elif on > due_on:
            status = "overdue"
        else:
            status = "open"
        blockers = []
        if i > 0 and STAGES[i - 1] not in sign_offs:
            blockers.append(f"{STAGES[i - 1]}_not_signed_off")
        blockers += own_blockers(stage)
        rows.append({
            "cycle": cycle, "stage": stage, "opens_on": opens_on, "due_on": due_on, "status": status,
            "ready": not blockers, "blockers": blockers,
            "signed_off_by": s["payload"]["body"] if s else None,
            "signed_off_at": to_utc(s["occurred_at"]) if s else None,
        })
    tables["stage_status"] = rows

    # --- consultation_coverage --------------------------------------------------------
    rows = []
    per_channel: dict[tuple[str, str], list[dict]] = defaultdict(list)
    per_borough: dict[str, list[dict]] = defaultdict(list)
    for e in responses:
        per_channel[(e["payload"]["borough"], e["payload"]["channel"])].append(e)
        per_borough[e["payload"]["borough"]].append(e)
    for (borough, channel), group in per_channel.items():
        rows.append({
            "cycle": cycle, "borough": borough, "channel": channel, "responses": len(group),
            "respondents": len({e["payload"]["respondent"]["respondent_ref"] for e in group}),
            "target": None, "pct_of_target": None,
        })
    for borough in BOROUGHS:
        group = per_borough[borough]
        t = target(borough)
        rows.append({
            "cycle": cycle, "borough": borough, "channel": "all", "responses": len(group),
            "respondents": len({e["payload"]["respondent"]["respondent_ref"] for e in group}),
            "target": t, "pct_of_target": None if not t else 100 * len(group) / t,
        })
    tables["consultation_coverage"] = rows

    # --- cdrp_audits ------------------------------------------------------------------
    rows = []
    for borough in BOROUGHS:
        a = latest_audit.get(borough)
        rows.append({
            "cycle": cycle, "borough": borough, "received": a is not None,
            "audit_ref": a["payload"]["audit_ref"] if a else None,
            "superseded_count": len(audits_by_borough[borough]) - 1 if a else 0,
            "top_priorities": [p["theme"] for p in sorted(a["payload"]["priorities"], key=lambda p: p["rank"])] if a else None,
        })
    tables["cdrp_audits"] = rows

    # --- inclusion ----------------------------------------------------------------------
    profiles = {}
    for borough in BOROUGHS:
        p = _latest([e for e in by_type["borough.profile_recorded"] if e["payload"]["borough"] == borough])
        if p is not None:
            profiles[borough] = p["payload"].get("groups") or {}

    def population_share(scope: str, dimension: str, group: str) -> float | None:
        counts = [profiles[b].get(dimension) for b in BOROUGHS if in_scope(b, scope) and b in profiles]
        counts = [c for c in counts if c is not None]
        if not counts:
            return None
        total = sum(sum(c.values()) for c in counts)
        if total == 0:
            return None
        return sum(c.get(group, 0) for c in counts) / total

    ordered = sorted(responses, key=lambda e: (to_utc(e["occurred_at"]), e["position"]))
    rows = []
    for scope in SCOPES:
        scoped = [e for e in ordered if in_scope(e["payload"]["borough"], scope)]
        for dimension, groups in DIMENSIONS.items():
            stated: dict[str, str] = {}  # ref -> group, from the latest response stating it
            for e in scoped:
                respondent = e["payload"]["respondent"]
                ref = respondent["respondent_ref"]
                if ref not in erased and respondent.get(dimension) is not None:
                    stated[ref] = respondent[dimension]
            total = len(stated)
            counts = {g: sum(1 for v in stated.values() if v == g) for g in groups}
            suppressed = {g for g in groups if counts[g] < SUPPRESS_BELOW}
            if len(suppressed) == 1:
                rest = [g for g in groups if g not in suppressed]
                suppressed.add(min(rest, key=lambda g: (counts[g], g)))
            for g in groups:
                pop = population_share(scope, dimension, g)
                share = counts[g] / total if total else None
                hidden = g in suppressed
                rows.append({
                    "cycle": cycle, "scope": scope, "dimension": dimension, "group": g,
                    "respondents": None if hidden else counts[g],
                    "share": None if hidden else share,
                    "population_share": pop,
                    "representation_ratio": None if hidden or share is None or not pop else share / pop,
                    "suppressed": hidden,
                })
    tables["inclusion"] = rows

    # --- survey_indicators ------------------------------------------------------------------
    rows = []
    waves = sorted({e["payload"]["wave"] for e in interviews})
    for wave in waves:
        for scope in SCOPES:
            scoped = [e for e in interviews if e["payload"]["wave"] == wave and in_scope(e["payload"]["borough"], scope)]
            for indicator in INDICATORS:
                answers = [(e["payload"]["weight"], e["payload"]["indicators"][indicator]) for e in scoped
                           if indicator in e["payload"].get("indicators", {})]
                if not answers:
                    continue
                sw = math.fsum(w for w, _ in answers)
                sw2 = math.fsum(w * w for w, _ in answers)
                p = math.fsum(w for w, y in answers if y) / sw
                n_eff = sw * sw / sw2
                half = Z95 * math.sqrt(p * (1 - p) / n_eff)
                hidden = len(answers) < SURVEY_MIN_N
                rows.append({
                    "cycle": cycle, "wave": wave, "scope": scope, "indicator": indicator,
                    "weighted_pct": None if hidden else 100 * p,
                    "ci_low": None if hidden else 100 * max(0.0, p - half),
                    "ci_high": None if hidden else 100 * min(1.0, p + half),
                    "unweighted_n": len(answers), "effective_n": n_eff, "suppressed": hidden,
                })
    tables["survey_indicators"] = rows

    # --- theme_ranking ------------------------------------------------------------------------
    def borough_cdrp(borough: str, theme: str) -> float:
        for p in latest_audit[borough]["payload"]["priorities"]:
            if p["theme"] == theme:
                return (6 - p["rank"]) / 5
        return 0.0

    rows = []
    for scope in SCOPES:
        scoped_r = [e for e in responses if in_scope(e["payload"]["borough"], scope)]
        scoped_i = [e for e in interviews if in_scope(e["payload"]["borough"], scope)]
        audited = [b for b in BOROUGHS if in_scope(b, scope) and b in latest_audit]
        total_w = math.fsum(e["payload"]["weight"] for e in scoped_i)
        scope_rows = []
        for theme in THEMES:
            c = (sum(1 for e in scoped_r if any(t["theme"] == theme for t in e["payload"]["themes"])) / len(scoped_r)
                 if scoped_r else None)
            s = (math.fsum(e["payload"]["weight"] for e in scoped_i if theme in e["payload"].get("priorities", [])) / total_w
                 if scoped_i else None)
            d = math.fsum(borough_cdrp(b, theme) for b in audited) / len(audited) if audited else None
            present = [x for x in (c, s, d) if x is not None]
            combined = math.fsum(present) / len(present) if present else None
            scope_rows.append({
                "cycle": cycle, "scope": scope, "theme": theme, "consultation_share": c, "survey_share": s,
                "cdrp_score": d, "combined_score": combined,
            })
        scope_rows.sort(key=lambda r: (r["combined_score"] is None, -(r["combined_score"] or 0.0), r["theme"]))
        for rank, r in enumerate(scope_rows, start=1):
            r["rank"] = rank
        rows += scope_rows
    tables["theme_ranking"] = rows

    # --- feedback_log -----------------------------------------------------------------------------
    rows = []
    for round_ in (1, 2):
        for borough in BOROUGHS:
            covering = feedback[round_].get(borough, [])
            rows.append({
                "cycle": cycle, "round": round_, "borough": borough, "published": bool(covering),
                "first_published_at": min(to_utc(e["occurred_at"]) for e in covering) if covering else None,
                "themes": sorted({t for e in covering for t in e["payload"].get("themes", [])}) if covering else None,
            })
    tables["feedback_log"] = rows

    # --- priority_traceability ---------------------------------------------------------------------
    rows, evidence = [], []
    adoption = _latest(by_type["priorities.adopted"])
    for p in adoption["payload"]["priorities"] if adoption else []:
        theme, scope = p["theme"], p["scope"]
        rs = [e for e in responses if in_scope(e["payload"]["borough"], scope)
              and any(t["theme"] == theme for t in e["payload"]["themes"])]
        ivs = [e for e in interviews if in_scope(e["payload"]["borough"], scope) and theme in e["payload"].get("priorities", [])]
        aus = [latest_audit[b] for b in BOROUGHS if in_scope(b, scope) and b in latest_audit
               and any(x["theme"] == theme for x in latest_audit[b]["payload"]["priorities"])]
        rows.append({
            "cycle": cycle, "rank": p["rank"], "theme": theme, "scope": scope,
            "supporting_responses": len(rs),
            "supporting_interviews": len(ivs),
            "supporting_survey_weight": math.fsum(e["payload"]["weight"] for e in ivs),
            "cdrp_boroughs": sorted(a["payload"]["borough"] for a in aus),
            "evidence_events": len(rs) + len(ivs) + len(aus),
            "evidence_query": f"planning query priority_evidence --cycle {cycle} --scope {scope} --rank {p['rank']}",
        })
        for kind, events in (("consultation_response", rs), ("survey_interview", ivs), ("cdrp_audit", aus)):
            evidence.extend({"cycle": cycle, "scope": scope, "rank": p["rank"], "kind": kind,
                             "event_id": canonical_id(e["event_id"])} for e in events)
    tables["priority_traceability"] = rows
    tables["priority_evidence"] = evidence

    # --- group_activity ----------------------------------------------------------------------------
    rows = []
    meetings: dict[str, list[dict]] = defaultdict(list)
    for e in by_type["group.meeting_held"]:
        meetings[e["payload"]["group_id"]].append(e)
    for group_id, held in meetings.items():
        last = _latest(held)
        attendance = sum(e["payload"]["attendance"] for e in held)
        cost = math.fsum(e["payload"]["cost_gbp"] for e in held)
        rows.append({
            "cycle": cycle, "group_id": group_id, "group_kind": last["payload"]["group_kind"],
            "borough": last["payload"]["borough"], "meetings": len(held), "attendance": attendance,
            "cost_gbp": cost, "cost_per_attendee": cost / attendance if attendance else None,
        })
    tables["group_activity"] = rows

    for name, table in tables.items():
        for row in table:
            assert tuple(row) == COLUMNS[name], (name, tuple(row))
    return tables
