"""Words and numbers as a Panel member reads them: stage and theme names, borough names, formats.

Suppressed cells are shown by :data:`SUPPRESSED` (or :data:`SUPPRESSED_SURVEY`)
and never as a number: formatting helpers take the row's ``suppressed`` flag and
return the marker instead of the value.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timezone

from events.contract.vocabulary import BOROUGH_NAMES, BOROUGHS, LONDON, STAGES

SUPPRESSED = "suppressed (<10)"
SUPPRESSED_SURVEY = "suppressed (n<30)"

STAGE_LABELS: dict[str, str] = {
    "brief": "Brief",
    "programme_approval": "Programme approval",
    "fieldwork": "Fieldwork",
    "analysis": "Analysis",
    "feedback_1": "Feedback, stage 1",
    "priorities": "Priorities",
    "feedback_2": "Feedback, stage 2",
    "publication": "Publication",
}
STAGE_WHAT: dict[str, str] = {  # docs/tables.md, "The timetable"
    "brief": "Planning Panel is given the consultation brief",
    "programme_approval": "Committee approves the consultation programme",
    "fieldwork": "The consultation programme is carried out",
    "analysis": "Analysis of results and of the CDRP audits",
    "feedback_1": "CSMB and committee receive the analysis; first feedback to boroughs",
    "priorities": "Planning Panel develops the policing priorities",
    "feedback_2": "Second feedback to boroughs",
    "publication": "Publication of the plan",
}
STATUS_LABELS = {"signed_off": "Signed off", "open": "Open", "overdue": "Overdue", "upcoming": "Upcoming"}
BODY_LABELS = {
    "planning_panel": "Planning Panel", "consultation_committee": "Consultation Committee",
    "csmb": "CSMB", "authority": "the Authority",
}
INDICATOR_LABELS = {
    "good_job": "Police do a good job locally",
    "trust": "Trust the police",
    "listens": "Police listen to local concerns",
    "relied_on": "Police can be relied on",
    "treats_fairly": "Police treat everyone fairly",
    "deals_with_matters": "Police deal with what matters locally",
    "informed": "Feel informed about local policing",
}
CHANNEL_LABELS = {
    "consultative_group": "Consultative group", "ward_panel": "Ward panel", "public_meeting": "Public meeting",
    "online_survey": "Online survey", "focus_group": "Focus group", "written_submission": "Written submission",
    "civic_forum": "Civic forum", "youth_engagement": "Youth engagement", "cdrp_consultation": "CDRP consultation",
}
DIMENSION_LABELS = {"age_band": "Age", "gender": "Gender", "ethnic_group": "Ethnic group", "disability": "Disability"}
GROUP_LABELS = {
    "16-24": "16–24", "25-34": "25–34", "35-44": "35–44", "45-54": "45–54", "55-64": "55–64", "65+": "65 and over",
    "female": "Female", "male": "Male", "other": "Other", "asian": "Asian", "black": "Black", "mixed": "Mixed",
    "white": "White", "yes": "Disabled", "no": "Not disabled",
}
THEME_LABELS = {
    "anti_social_behaviour": "Anti-social behaviour", "knife_crime": "Knife crime", "gun_crime": "Gun crime",
    "domestic_abuse": "Domestic abuse", "sexual_offences": "Sexual offences", "hate_crime": "Hate crime",
    "youth_crime": "Youth crime", "road_safety": "Road safety", "police_visibility": "Police visibility",
    "response_times": "Response times", "community_engagement": "Community engagement",
    "trust_confidence": "Trust and confidence", "stop_and_search": "Stop and search", "vehicle_crime": "Vehicle crime",
}

# Three-letter tile labels for the London tile map (a common convention for London's boroughs).
BOROUGH_ABBREVIATIONS: dict[str, str] = dict(zip(BOROUGHS, (
    "BDG", "BNT", "BXL", "BRT", "BRM", "CMD", "CRD", "EAL", "ENF", "GRN", "HCK", "HMS", "HGY", "HRW", "HAV",
    "HDN", "HNS", "ISL", "KNS", "KTN", "LAM", "LSH", "MRT", "NWM", "RDB", "RCH", "SWK", "STN", "TOW", "WTH",
    "WND", "WSM",
)))

# The tile map: one fixed (column, row) per borough, roughly where it lies (8 columns x 7 rows).
# The City of London (own force, not a borough here) keeps its place at (4, 3), empty.
TILE_POSITIONS: dict[str, tuple[int, int]] = {
    "E09000010": (4, 0),                                                       # Enfield
    "E09000015": (2, 1), "E09000003": (3, 1), "E09000014": (4, 1), "E09000031": (5, 1),  # Harrow, Barnet, Haringey, Waltham Forest
    "E09000017": (1, 2), "E09000005": (2, 2), "E09000007": (3, 2), "E09000019": (4, 2),  # Hillingdon, Brent, Camden, Islington
    "E09000012": (5, 2), "E09000026": (6, 2), "E09000016": (7, 2),             # Hackney, Redbridge, Havering
    "E09000009": (1, 3), "E09000020": (2, 3), "E09000033": (3, 3),             # Ealing, Kensington and Chelsea, Westminster
    "E09000030": (5, 3), "E09000025": (6, 3), "E09000002": (7, 3),             # Tower Hamlets, Newham, Barking and Dagenham
    "E09000018": (0, 4), "E09000013": (1, 4), "E09000032": (2, 4), "E09000022": (3, 4),  # Hounslow, Hammersmith and Fulham, Wandsworth, Lambeth
    "E09000028": (4, 4), "E09000023": (5, 4), "E09000011": (6, 4), "E09000004": (7, 4),  # Southwark, Lewisham, Greenwich, Bexley
    "E09000027": (1, 5), "E09000021": (2, 5), "E09000024": (3, 5), "E09000008": (4, 5),  # Richmond, Kingston, Merton, Croydon
    "E09000006": (5, 5),                                                       # Bromley
    "E09000029": (3, 6),                                                       # Sutton
}
CITY_TILE = (4, 3)


def sentence(label: str) -> str:
    """A label inside a sentence: lower case, but acronyms (CDRP, CSMB) kept."""
    return " ".join(w if w.isupper() and len(w) > 1 else w.lower() for w in label.split(" "))


def borough_name(code: str | None) -> str:
    if code is None:
        return "—"
    if code == LONDON:
        return "London"
    return BOROUGH_NAMES.get(code, code)


def theme_label(theme: str) -> str:
    return THEME_LABELS.get(theme, theme.replace("_", " ").capitalize())


def stage_label(stage: str) -> str:
    return STAGE_LABELS.get(stage, stage)


def stage_number(stage: str) -> int:
    return STAGES.index(stage) + 1


def group_label(group: str) -> str:
    return GROUP_LABELS.get(group, group)


def names(codes: list[str], *, every: int = 32) -> str:
    """Borough names in a sentence: 'Barnet and Brent'; all 32 as 'all 32 boroughs'."""
    if len(codes) >= every:
        return f"all {every} boroughs"
    spelled = [borough_name(c) for c in codes]
    if len(spelled) <= 1:
        return "".join(spelled)
    return ", ".join(spelled[:-1]) + " and " + spelled[-1]


def readable_blockers(blockers: list[str] | None) -> list[str]:
    """['below_target:E09000003', 'below_target:E09000005', 'plan_not_published'] ->
    ['below target: Barnet and Brent', 'plan not published']."""
    by_code: dict[str, list[str]] = defaultdict(list)
    for blocker in blockers or []:
        code, _, borough = blocker.partition(":")
        by_code[code].append(borough)
    parts = []
    for code, boroughs in by_code.items():
        stage_code = code.removesuffix("_not_signed_off")
        if stage_code != code and stage_code in STAGE_LABELS:
            label = f"{stage_label(stage_code)} not signed off"
        else:
            label = {
                "cycle_not_opened": "cycle not opened", "programme_not_approved": "programme not approved",
                "below_target": "below target", "audit_missing": "CDRP audit missing",
                "feedback_missing": "feedback not yet published", "priorities_not_adopted": "priorities not adopted",
                "plan_not_published": "plan not published",
            }.get(code, code.replace("_", " "))
        named = [b for b in boroughs if b]
        parts.append(f"{label}: {names(named)}" if named else label)
    return parts


# --- numbers and dates ------------------------------------------------------------------


def count(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def pct(value: float | None, digits: int = 0) -> str:
    return "—" if value is None else f"{value:.{digits}f}%"


def share(value: float | None, digits: int = 0) -> str:
    """A 0–1 share as a percentage."""
    return "—" if value is None else f"{100 * value:.{digits}f}%"


def ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def money(value: float | None) -> str:
    return "—" if value is None else f"£{value:,.2f}"


def day(value: date | None) -> str:
    return "—" if value is None else f"{value.day} {value:%B %Y}"


def short_day(value: date | None) -> str:
    return "—" if value is None else f"{value.day} {value:%b %Y}"


def window(opens: date, due: date) -> str:
    if opens.year == due.year:
        if opens.month == due.month:
            return f"{opens.day}–{due.day} {due:%B %Y}"
        return f"{opens.day} {opens:%B} – {due.day} {due:%B %Y}"
    return f"{day(opens)} – {day(due)}"


def instant(value: datetime | None) -> str:
    if value is None:
        return "—"
    utc = value.astimezone(timezone.utc) if value.tzinfo else value
    return f"{utc.day} {utc:%b %Y %H:%M} UTC"
