"""A deterministic generator of a realistic, SYNTHETIC planning cycle.

Everything here is invented. The shape follows the real process
(docs/events.md, docs/tables.md): the 32 London boroughs with their
Census 2021 populations and approximate ethnic mix, a consultation of a few
thousand responses across the nine channels, ~100 Public Attitude Survey (PAS)
interviews per borough per quarter, one CDRP audit per borough, monthly
consultative groups, and the timetable's sign-offs. Every event says
``"synthetic": true`` (and its ``source`` starts with ``synthetic:``) so that
no one can mistake it for real data: the store then holds synthetic data only,
and everything built from it is labelled.

Determinism: the same ``seed`` gives the same events, byte for byte, and the
random stream does not depend on ``today``. A cycle is always generated whole
and then cut at ``today``, so an event keeps its ``event_id`` and body whatever
day it is generated on: generating again later only adds events.

Main entry points: :func:`generate_cycle` (event dicts of one cycle),
:func:`generate_demo_lines` / :func:`write_demo_file` (two cycles as JSON
Lines, with realistic faults: re-sent duplicates and a dozen bad lines).
"""

from __future__ import annotations

import json
import random
import uuid
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from itertools import accumulate
from math import ceil
from pathlib import Path
from typing import Any, NamedTuple

from events.contract import vocabulary as v
from events.contract.cycle import Cycle

# --- boroughs ----------------------------------------------------------------

BOROUGHS: tuple[str, ...] = v.BOROUGHS
"""ONS GSS codes of the 32 London boroughs, E09000002..E09000033 (no City of London)."""

# code, name, Census 2021 usual residents (rounded to 100), inner London?,
# approximate Census 2021 ethnic shares in % in the order of v.ETHNIC_GROUPS
# (asian, black, mixed, white, other). Rounded; good enough for a demo.
_BOROUGH_DATA: tuple[tuple[str, str, int, bool, tuple[float, float, float, float, float]], ...] = (
    ("E09000002", "Barking and Dagenham", 218_900, False, (25.9, 21.4, 4.3, 44.9, 3.5)),
    ("E09000003", "Barnet", 389_300, False, (19.3, 7.9, 5.4, 57.7, 9.7)),
    ("E09000004", "Bexley", 246_500, False, (10.0, 12.0, 3.6, 71.9, 2.5)),
    ("E09000005", "Brent", 339_800, False, (34.1, 17.5, 5.1, 35.1, 8.2)),
    ("E09000006", "Bromley", 330_000, False, (7.4, 8.7, 5.2, 76.5, 2.2)),
    ("E09000007", "Camden", 210_100, True, (18.1, 9.0, 7.0, 59.5, 6.4)),
    ("E09000008", "Croydon", 390_700, False, (17.5, 22.6, 7.6, 48.4, 3.9)),
    ("E09000009", "Ealing", 367_100, False, (30.3, 10.8, 5.6, 43.4, 9.9)),
    ("E09000010", "Enfield", 330_000, False, (11.5, 17.5, 5.8, 52.1, 13.1)),
    ("E09000011", "Greenwich", 289_100, True, (15.6, 19.9, 5.7, 55.7, 3.1)),
    ("E09000012", "Hackney", 259_200, True, (10.4, 21.1, 6.7, 53.1, 8.7)),
    ("E09000013", "Hammersmith and Fulham", 183_200, True, (11.4, 11.7, 6.9, 63.2, 6.8)),
    ("E09000014", "Haringey", 264_200, True, (8.7, 17.6, 7.0, 57.0, 9.7)),
    ("E09000015", "Harrow", 261_200, False, (45.2, 7.3, 3.6, 36.1, 7.8)),
    ("E09000016", "Havering", 262_000, False, (10.7, 8.2, 3.5, 75.3, 2.3)),
    ("E09000017", "Hillingdon", 305_900, False, (33.3, 7.9, 4.4, 48.2, 6.2)),
    ("E09000018", "Hounslow", 288_200, False, (36.7, 7.5, 4.6, 43.1, 8.1)),
    ("E09000019", "Islington", 216_600, True, (9.7, 12.7, 7.3, 63.5, 6.8)),
    ("E09000020", "Kensington and Chelsea", 143_400, True, (12.6, 7.3, 6.8, 63.2, 10.1)),
    ("E09000021", "Kingston upon Thames", 168_100, False, (19.6, 3.0, 4.7, 68.4, 4.3)),
    ("E09000022", "Lambeth", 317_600, True, (7.2, 24.0, 8.1, 54.7, 5.9)),
    ("E09000023", "Lewisham", 300_600, True, (8.7, 26.8, 9.1, 51.5, 3.9)),
    ("E09000024", "Merton", 215_200, False, (17.9, 11.7, 5.7, 60.0, 4.7)),
    ("E09000025", "Newham", 351_100, True, (42.2, 17.5, 4.1, 30.8, 5.4)),
    ("E09000026", "Redbridge", 310_300, False, (47.3, 8.9, 4.0, 34.8, 5.0)),
    ("E09000027", "Richmond upon Thames", 195_200, False, (9.5, 2.0, 5.3, 80.5, 2.7)),
    ("E09000028", "Southwark", 307_700, True, (9.9, 25.1, 7.4, 51.4, 6.2)),
    ("E09000029", "Sutton", 209_600, False, (15.8, 5.7, 4.9, 71.0, 2.6)),
    ("E09000030", "Tower Hamlets", 310_300, True, (44.4, 7.3, 4.1, 39.4, 4.8)),
    ("E09000031", "Waltham Forest", 278_400, False, (21.0, 15.1, 6.0, 52.8, 5.1)),
    ("E09000032", "Wandsworth", 327_500, True, (11.0, 10.6, 6.6, 67.8, 4.0)),
    ("E09000033", "Westminster", 204_300, True, (17.3, 7.6, 6.0, 55.2, 13.9)),
)
assert tuple(row[0] for row in _BOROUGH_DATA) == BOROUGHS

BOROUGH_NAMES: dict[str, str] = {code: name for code, name, *_ in _BOROUGH_DATA}
"""GSS code -> borough name, in ONS (code) order."""

BOROUGH_SLUGS: dict[str, str] = {code: name.lower().replace(" ", "-") for code, name in BOROUGH_NAMES.items()}
"""GSS code -> lower-case hyphenated name, used in group ids and audit refs."""

# Real ward names (2022 boundaries) for the few ward panels the demo carries.
_WARDS: tuple[tuple[str, str], ...] = (
    ("E09000012", "Dalston"),
    ("E09000022", "Brixton Acre Lane"),
    ("E09000008", "Thornton Heath"),
    ("E09000030", "Bow East"),
    ("E09000028", "Peckham"),
    ("E09000010", "Edmonton Green"),
    ("E09000014", "Northumberland Park"),
    ("E09000005", "Harlesden and Kensal Green"),
    ("E09000009", "Southall Broadway"),
    ("E09000025", "Forest Gate North"),
    ("E09000007", "Kentish Town South"),
    ("E09000023", "Catford South"),
)

# --- vocabularies and base rates ---------------------------------------------

THEMES = v.THEMES
CHANNELS = v.CHANNELS
AGE_BANDS = v.AGE_BANDS
GENDERS = v.GENDERS
ETHNIC_GROUPS = v.ETHNIC_GROUPS
INDICATORS = v.INDICATORS

# How often Londoners name each theme (relative), before borough character.
_THEME_BASE: dict[str, float] = {
    "anti_social_behaviour": 10, "burglary": 7, "robbery": 6, "vehicle_crime": 5, "violence": 9,
    "knife_crime": 9, "gun_crime": 2, "domestic_abuse": 5, "sexual_offences": 4, "hate_crime": 2.5,
    "drugs": 7, "youth_crime": 5, "road_safety": 4, "fraud": 4, "terrorism": 1.5,
    "police_visibility": 9, "response_times": 5, "community_engagement": 3, "trust_confidence": 4,
    "stop_and_search": 2.5, "other": 1.5,
}
_INNER_THEMES = {"knife_crime": 1.35, "robbery": 1.3, "drugs": 1.3, "stop_and_search": 1.3, "violence": 1.15}
_OUTER_THEMES = {"burglary": 1.3, "vehicle_crime": 1.35, "anti_social_behaviour": 1.2, "road_safety": 1.25}
_YOUTH_THEMES = {"youth_crime": 3.0, "knife_crime": 2.0, "stop_and_search": 3.0, "trust_confidence": 1.5}

# Channel mix of consultation responses: the online survey dominates.
_CHANNEL_WEIGHTS: dict[str, float] = {
    "online_survey": 46, "ward_panel": 9, "public_meeting": 8, "consultative_group": 7,
    "youth_engagement": 7, "written_submission": 6, "cdrp_consultation": 6, "civic_forum": 6,
    "focus_group": 5,
}
_REGULAR_CHANNELS: dict[str, float] = {
    "consultative_group": 4, "ward_panel": 3, "public_meeting": 2, "civic_forum": 1, "online_survey": 1,
}
# Consultation respondents skew old: 16-24 is under-represented (the programme's priority group).
_RESPONDENT_AGE = (0.04, 0.13, 0.18, 0.21, 0.21, 0.23)
_YOUTH_AGE = (0.85, 0.15, 0, 0, 0, 0)
_REGULAR_AGE = (0.0, 0.02, 0.08, 0.2, 0.3, 0.4)
_RESPONDENT_GENDER = (0.53, 0.455, 0.015)
_RESPONDENT_ETHNIC_SKEW = (0.9, 0.85, 1.0, 1.25, 0.8)  # white over-represented
_NOT_STATED = 0.15

# PAS: base share answering "yes", per indicator (v.INDICATORS order).
_INDICATOR_BASE = (0.52, 0.74, 0.58, 0.66, 0.70, 0.60, 0.38)
_INDICATOR_ANSWERED = 0.9

# Recorded crime, per 1,000 residents a year (London-ish).
_CRIME_RATES: dict[str, float] = {
    "violence": 31.0, "anti_social_behaviour": 24.0, "domestic_abuse": 10.5, "vehicle_crime": 9.5,
    "burglary": 6.8, "drugs": 4.8, "fraud": 3.9, "robbery": 3.6, "sexual_offences": 2.9,
    "hate_crime": 1.7, "knife_crime": 1.6, "gun_crime": 0.15,
}
_INNER_CRIME = {"robbery": 1.4, "violence": 1.2, "drugs": 1.3, "knife_crime": 1.3}
_OUTER_CRIME = {"burglary": 1.1, "vehicle_crime": 1.2}

_THEME_TEXT: dict[str, str] = {
    "anti_social_behaviour": "anti-social behaviour", "burglary": "burglary", "robbery": "street robbery",
    "vehicle_crime": "car crime", "violence": "violence", "knife_crime": "knife crime",
    "gun_crime": "gun crime", "domestic_abuse": "domestic abuse", "sexual_offences": "sexual offences",
    "hate_crime": "hate crime", "drugs": "drug dealing", "youth_crime": "youth crime",
    "road_safety": "dangerous driving", "fraud": "fraud and scams", "terrorism": "terrorism",
    "police_visibility": "the lack of visible policing", "response_times": "slow response times",
    "community_engagement": "how little the police talk to residents",
    "trust_confidence": "trust in the police", "stop_and_search": "the way stop and search is used",
    "other": "other local problems",
}
_PLACES = (
    "the station", "the high street", "the park", "our estate", "the bus garage", "the shopping centre",
    "the school gates", "the canal path", "the market", "the leisure centre",
)
_ONE_THEME_COMMENTS = (
    "I would like to see more done about {a} around {place}.",
    "{A} has got noticeably worse near {place} in the last year.",
    "We rarely see officers on foot any more and {a} is a real worry for older residents.",
    "When I reported {a} it took weeks to hear anything back.",
    "Young people in {borough} need more support; {a} is a symptom of that.",
    "Street lighting near {place} is poor and {a} is a problem after dark.",
)
_TWO_THEME_COMMENTS = (
    "Please make {a} and {b} the priorities for {borough}.",
    "Thank you for asking. My main concern is {a}, followed by {b}.",
    "{A} and {b} are linked around {place}; please tackle both together.",
)
_ORGANISATIONS = (
    ("residents_association", "{name} Federation of Tenants and Residents Associations"),
    ("business", "{name} Town Centre Business Improvement District"),
    ("charity", "{name} Victim Support Volunteers"),
    ("faith_group", "{name} Interfaith Forum"),
    ("youth_organisation", "{name} Youth Council"),
    ("neighbourhood_watch", "{name} Neighbourhood Watch Association"),
)

RETRACTION_REASON = "entered twice by mistake"
_REGULARS_PER_BOROUGH = 3  # active citizens who respond every cycle
_ERASURE_EPOCH = 2000  # first consultation year of the erasure chain, see _erasure_targets


# --- public API --------------------------------------------------------------


@dataclass(frozen=True)
class DemoScale:
    """Volumes of the synthetic world.

    ``scale`` multiplies the two high-volume streams (consultation responses and
    PAS interviews) for benchmarks; the programme's targets follow the
    consultation volume, so the coverage picture (a couple of boroughs below
    target) holds at any scale.
    """

    pas_per_borough_per_quarter: int = 100
    consultation_responses: int = 4000
    default_min_responses: int = 50
    target_boroughs: int = 8  # boroughs with a higher, programme-set target
    below_target_boroughs: int = 2  # of those, how many fall short
    late_audits: int = 2  # CDRP audits arriving in December rather than Aug-Sep
    meetings_per_group: int = 11  # consultative group meetings a year (no August meeting)
    ward_panels: int = 6
    retractions: int = 2  # responses keyed twice, the copy then retracted
    duplicate_rate: float = 0.01  # share of demo lines re-sent
    scale: float = 1.0

    def __post_init__(self) -> None:
        if not self.scale > 0:
            raise ValueError("scale must be > 0")
        if not 0 <= self.below_target_boroughs <= self.target_boroughs <= len(BOROUGHS):
            raise ValueError("need 0 <= below_target_boroughs <= target_boroughs <= 32")
        if not 0 <= self.late_audits < len(BOROUGHS):
            raise ValueError("late_audits must be 0..31")
        if not 0 <= self.ward_panels <= len(_WARDS):
            raise ValueError(f"ward_panels must be 0..{len(_WARDS)}")
        if not 0 <= self.meetings_per_group <= 12:
            raise ValueError("meetings_per_group must be 0..12")
        if not 0 <= self.duplicate_rate < 1:
            raise ValueError("duplicate_rate must be in [0, 1)")


def generate_cycle(
    cycle: str,
    today: date,
    seed: int = 2027,
    scale: DemoScale = DemoScale(),
    *,
    not_after: datetime | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield the events of ``cycle`` known by ``today``, in ``occurred_at`` order.

    Only events whose ``occurred_at`` is at or before the end of ``today`` (UTC)
    are yielded; ``not_after`` (an aware datetime) moves that cutoff, e.g. to
    "now", so a demo generated for the real today holds nothing the contract's
    "not in the future" rule would reject.
    """
    cutoff = _cutoff(today, not_after)
    for event in _build_cycle(cycle, seed, scale):
        if event["occurred_at"] <= cutoff:
            yield event


class DemoLine(NamedTuple):
    """One line of the demo file: ``kind`` is "event", "duplicate" or "bad";
    ``label`` is the event type, or for a bad line the rule it breaks;
    ``event`` is the event the line carries (for a bad line, the good event it
    was copied from), which says when the line can be delivered
    (``pipelines.demo.deliveries``)."""

    kind: str
    label: str
    line: str
    event: dict[str, Any] | None = None


BAD_LINE_RULES: tuple[str, ...] = (
    "malformed_json", "json_array", "empty_line", "unknown_event_type", "theme_not_in_vocabulary",
    "duplicate_themes", "non_contiguous_ranks", "city_of_london", "occurred_at_in_future",
    "unknown_payload_field", "bad_cycle", "negative_weight", "event_id_not_uuid",
)
"""The rules of docs/events.md the demo's bad lines break, one line per rule."""


def demo_lines(
    today: date,
    seed: int = 2027,
    scale: DemoScale = DemoScale(),
    *,
    not_after: datetime | None = None,
) -> list[DemoLine]:
    """The demo file as labelled lines: the previous and the current cycle in
    arrival order, ~1% re-sent duplicates and one bad line per :data:`BAD_LINE_RULES`."""
    today = _as_date(today)
    current = Cycle.from_date(today)
    events = [
        *generate_cycle(str(current.previous), today, seed, scale, not_after=not_after),
        *generate_cycle(str(current), today, seed, scale, not_after=not_after),
    ]
    events.sort(key=_occurred_at)  # stable: ties keep generation order
    good = [DemoLine("event", e["event_type"], _dumps(e), e) for e in events]

    rng = random.Random(f"{seed}:demo-faults:{today.isoformat()}")
    n = len(good)
    resent: dict[int, list[DemoLine]] = {}
    for i in sorted(rng.sample(range(n), round(n * scale.duplicate_rate))):
        later = min(i + rng.randint(1, 500), n - 1)  # the sender retries a little later
        resent.setdefault(later, []).append(good[i]._replace(kind="duplicate"))
    bad = _bad_lines(rng, events, today)
    bad_at = dict(zip(rng.sample(range(n + 1), len(bad)), bad))

    out: list[DemoLine] = []
    for i, line in enumerate(good):
        if i in bad_at:
            out.append(bad_at[i])
        out.append(line)
        out.extend(resent.get(i, ()))
    if n in bad_at:
        out.append(bad_at[n])
    return out


def generate_demo_lines(
    today: date,
    seed: int = 2027,
    scale: DemoScale = DemoScale(),
    *,
    not_after: datetime | None = None,
) -> Iterator[str]:
    """JSON Lines (without line terminators) of the previous and the current
    cycle as known by ``today``, with duplicates and bad lines mixed in."""
    for item in demo_lines(today, seed, scale, not_after=not_after):
        yield item.line


def write_demo_file(
    path: Path,
    today: date,
    seed: int = 2027,
    scale: DemoScale = DemoScale(),
    *,
    not_after: datetime | None = None,
) -> dict[str, int]:
    """Write the demo JSON Lines file; return counts.

    Keys: every event type (distinct good events of that type, zero included),
    ``bad_lines`` and ``duplicate_lines``; together they add up to the lines written.
    """
    items = demo_lines(today, seed, scale, not_after=not_after)
    counts: dict[str, int] = dict.fromkeys(_EVENT_TYPES, 0)
    counts["bad_lines"] = counts["duplicate_lines"] = 0
    for item in items:
        if item.kind == "event":
            counts[item.label] += 1
        else:
            counts[f"{item.kind}_lines"] += 1
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as out:
        for item in items:
            out.write(item.line)
            out.write("\n")
    return counts


_EVENT_TYPES: tuple[str, ...] = (
    "cycle.opened", "stage.signed_off", "programme.approved", "borough.profile_recorded",
    "consultation.response_received", "survey.response_recorded", "cdrp.audit_submitted",
    "group.meeting_held", "feedback.published", "priorities.adopted", "plan.published",
    "event.retracted", "respondent.erasure_requested",
)


# --- small helpers -------------------------------------------------------------


def _as_date(today: date) -> date:
    return today.date() if isinstance(today, datetime) else today


def _cutoff(today: date, not_after: datetime | None) -> str:
    end_of_day = f"{_as_date(today).isoformat()}T23:59:59Z"
    if not_after is None:
        return end_of_day
    if not_after.tzinfo is None:
        raise ValueError("not_after must be timezone-aware")
    limit = not_after.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return min(limit, end_of_day)


def _occurred_at(event: dict[str, Any]) -> str:
    return event["occurred_at"]


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


_DAY_ISO: dict[int, str] = {}


def _ts(day: int, seconds: int) -> str:
    """Timestamp string for a proleptic ordinal ``day`` and seconds after midnight (UTC).

    Fixed width, so string order is time order.
    """
    iso = _DAY_ISO.get(day)
    if iso is None:
        iso = _DAY_ISO[day] = date.fromordinal(day).isoformat()
    seconds = min(max(seconds, 0), 86_399)
    return f"{iso}T{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}Z"


def _on(year: int, month: int, day: int, hour: int, minute: int = 0) -> str:
    return _ts(date(year, month, day).toordinal(), hour * 3600 + minute * 60)


def _cum(weights: Sequence[float]) -> list[float]:
    return list(accumulate(weights))


def _pick(rng: random.Random, items: Sequence[Any], cum: Sequence[float]) -> Any:
    """One item, drawn with the cumulative weights ``cum``."""
    return items[min(bisect_right(cum, rng.random() * cum[-1]), len(items) - 1)]


def _pick_distinct(rng: random.Random, items: Sequence[str], cum: Sequence[float], k: int) -> list[str]:
    """``k`` distinct items, in draw order (weighted sampling without replacement)."""
    out: list[str] = []
    while len(out) < k:
        item = _pick(rng, items, cum)
        if item not in out:
            out.append(item)
    return out


def _ranked(themes: Sequence[str]) -> list[dict[str, Any]]:
    return [{"theme": t, "rank": r} for r, t in enumerate(themes, start=1)]


def _clip(x: float, low: float, high: float) -> float:
    return low if x < low else high if x > high else x


# --- the borough world (shared by every cycle of a seed) ------------------------


@dataclass(frozen=True)
class _Borough:
    index: int
    code: str
    name: str
    slug: str
    population: int
    inner: bool
    ethnic_share: tuple[float, ...]
    profile_groups: dict[str, dict[str, int]]
    theme_weights: tuple[float, ...]
    indicator_p: tuple[float, ...]
    propensity: float  # how readily the borough responds to the consultation
    attendance_mean: float
    respondent_ethnic_cum: tuple[float, ...]
    adult_age_cum: tuple[float, ...]
    regulars: tuple[tuple[str, str, str, str], ...]  # (age, gender, ethnic, disability) per regular


@lru_cache(maxsize=8)
def _world(seed: int) -> tuple[_Borough, ...]:
    """Borough character: stable across cycles, so a borough looks like itself every year."""
    rng = random.Random(f"{seed}:boroughs")
    out = []
    for index, (code, name, population, inner, ethnic_pct) in enumerate(_BOROUGH_DATA):
        # Share of all residents in each 16+ band (the rest are under 16).
        age_share = (
            (0.11, 0.24, 0.17, 0.12, 0.09, 0.09) if inner else (0.105, 0.15, 0.15, 0.13, 0.11, 0.15)
        )
        age_counts = {band: round(population * s * rng.uniform(0.9, 1.1), -2) for band, s in zip(AGE_BANDS, age_share)}
        adults = sum(age_counts.values())
        other_gender = round(adults * rng.uniform(0.003, 0.007))
        female = round(adults * rng.uniform(0.50, 0.52))
        disabled = round(adults * rng.uniform(0.12, 0.18))
        total_pct = sum(ethnic_pct)
        ethnic_share = tuple(p / total_pct for p in ethnic_pct)
        groups = {
            "age_band": {k: int(c) for k, c in age_counts.items()},
            "gender": {"female": int(female), "male": int(adults - female - other_gender), "other": int(other_gender)},
            "ethnic_group": {g: int(round(adults * s, -1)) for g, s in zip(ETHNIC_GROUPS, ethnic_share)},
            "disability": {"yes": int(disabled), "no": int(adults - disabled)},
        }
        tilt = _INNER_THEMES if inner else _OUTER_THEMES
        theme_weights = tuple(
            _THEME_BASE[t] * tilt.get(t, 1.0) * rng.gammavariate(3.0, 1 / 3) for t in THEMES
        )
        common = rng.gauss(0, 0.05)
        indicator_p = tuple(_clip(p + common + rng.gauss(0, 0.03), 0.15, 0.92) for p in _INDICATOR_BASE)
        respondent_ethnic = [s * k for s, k in zip(ethnic_share, _RESPONDENT_ETHNIC_SKEW)]
        regular_rng = random.Random(f"{seed}:regulars:{code}")
        regulars = tuple(
            (
                _pick(regular_rng, AGE_BANDS, _cum(_REGULAR_AGE)),
                _pick(regular_rng, GENDERS, _cum(_RESPONDENT_GENDER)),
                _pick(regular_rng, ETHNIC_GROUPS, _cum(respondent_ethnic)),
                "yes" if regular_rng.random() < 0.2 else "no",
            )
            for _ in range(_REGULARS_PER_BOROUGH)
        )
        out.append(
            _Borough(
                index=index,
                code=code,
                name=name,
                slug=BOROUGH_SLUGS[code],
                population=population,
                inner=inner,
                ethnic_share=ethnic_share,
                profile_groups=groups,
                theme_weights=theme_weights,
                indicator_p=indicator_p,
                propensity=rng.uniform(0.75, 1.3),
                attendance_mean=rng.uniform(18, 55),
                respondent_ethnic_cum=tuple(_cum(respondent_ethnic)),
                adult_age_cum=tuple(_cum([age_counts[b] for b in AGE_BANDS])),
                regulars=regulars,
            )
        )
    return tuple(out)


def _regular_ref(borough_index: int, i: int) -> str:
    """Respondent ref of a regular (the same person every cycle): "r-12-01"."""
    return f"r-{borough_index + 2:02d}-{i + 1:02d}"


@lru_cache(maxsize=64)
def _erasure_targets(seed: int, year: int) -> tuple[frozenset[tuple[int, int]], tuple[int, int] | None]:
    """(regulars erased in earlier cycles, the regular whose erasure this cycle requests).

    Each cycle's erasure targets a regular respondent, who has responses in
    earlier cycles too, so erasure has to reach across cycles. An erased person
    never responds again. Computed as one chain from a fixed epoch so every
    cycle of a seed agrees on it.
    """
    erased: list[tuple[int, int]] = []
    target = None
    for y in range(_ERASURE_EPOCH, year + 1):
        r = random.Random(f"{seed}:erasure:{y}")
        candidates = [(b, i) for b in range(len(BOROUGHS)) for i in range(_REGULARS_PER_BOROUGH) if (b, i) not in erased]
        if not candidates:
            break
        chosen = candidates[r.randrange(len(candidates))]
        if y == year:
            target = chosen
        else:
            erased.append(chosen)
    return frozenset(erased), target


# --- one cycle -----------------------------------------------------------------


class _Builder:
    """Builds every event of one cycle, in a fixed order of random draws."""

    def __init__(self, cycle: str, seed: int, scale: DemoScale) -> None:
        self.cycle = cycle
        parsed = Cycle.parse(cycle)
        self.plan_year = parsed.plan_year
        self.year = parsed.start_year
        self.seed = seed
        self.scale = scale
        self.rng = random.Random(f"{seed}:{cycle}")
        self.world = _world(seed)
        self.events: list[dict[str, Any]] = []
        self.secretariat = f"synthetic:planning-secretariat/{cycle}"
        # This cycle's drift on each borough's theme preferences.
        self.theme_cum: list[list[float]] = []
        self.youth_theme_cum: list[list[float]] = []
        for b in self.world:
            weights = [w * self.rng.uniform(0.8, 1.2) for w in b.theme_weights]
            self.theme_cum.append(_cum(weights))
            self.youth_theme_cum.append(_cum([w * _YOUTH_THEMES.get(t, 1.0) for w, t in zip(weights, THEMES)]))
        self.consultation_theme_counts: list[dict[str, int]] = [dict.fromkeys(THEMES, 0) for _ in self.world]
        self.survey_theme_weight: dict[str, float] = dict.fromkeys(THEMES, 0.0)
        self.survey_weight_total = 0.0
        self.responses = 0
        self.respondents = 0

    def event(self, event_type: str, occurred_at: str, source: str, payload: dict[str, Any]) -> dict[str, Any]:
        e = {
            "event_id": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
            "event_type": event_type,
            "schema_version": 1,
            "occurred_at": occurred_at,
            "source": source,
            "cycle": self.cycle,
            "synthetic": True,  # what makes the store, and everything built from it, say so
            "payload": payload,
        }
        self.events.append(e)
        return e

    def day_in(self, start: date, end: date) -> int:
        """A random day (ordinal) in [start, end]."""
        return start.toordinal() + self.rng.randrange((end - start).days + 1)

    def office_hours(self) -> int:
        return self.rng.randrange(9 * 3600, 17 * 3600)

    # -- the cycle, in order ---------------------------------------------------

    def build(self) -> list[dict[str, Any]]:
        y, rng = self.year, self.rng
        self.event("cycle.opened", _on(y, 2, 15, 9, rng.randrange(60)), self.secretariat, {"timetable": []})
        self.profiles()
        counts, targets = self.volumes()
        self.event(
            "programme.approved",
            _on(y, 5, rng.randint(12, 20), 11, rng.randrange(60)),
            self.secretariat,
            {
                "default_min_responses": self.scale.default_min_responses,
                "targets": [
                    {"borough": self.world[i].code, "min_responses": t} for i, t in sorted(targets.items())
                ],
                "priority_groups": ["16-24"],
            },
        )
        self.consultation(counts)
        self.survey()
        self.audits()
        self.meetings()
        self.timetable()
        self.events.sort(key=_occurred_at)
        return self.events

    def profiles(self) -> None:
        source = "synthetic:ons-census-2021-import"
        for b in self.world:
            self.event(
                "borough.profile_recorded",
                _on(self.year, 2, 16, 10, b.index),
                source,
                {
                    "borough": b.code,
                    "source": "Census 2021",
                    "population": b.population,
                    "groups": {dim: dict(groups) for dim, groups in b.profile_groups.items()},
                },
            )

    def volumes(self) -> tuple[list[int], dict[int, int]]:
        """Responses per borough and the programme's higher targets.

        Boroughs with a higher target reach it, except ``below_target_boroughs``
        of them, which fall well short; every other borough clears the default.
        """
        rng, s = self.rng, self.scale
        total = max(len(BOROUGHS), round(s.consultation_responses * s.scale))
        w = [b.population * b.propensity * rng.uniform(0.85, 1.15) for b in self.world]
        base = [max(1, round(total * wi / sum(w))) for wi in w]
        targeted = rng.sample(range(len(BOROUGHS)), s.target_boroughs)
        below = set(targeted[: s.below_target_boroughs])
        targets = {i: max(60, round(base[i] * rng.uniform(1.0, 1.3) / 10) * 10) for i in targeted}
        counts = []
        for i in range(len(BOROUGHS)):
            if i in below:
                counts.append(int(targets[i] * rng.uniform(0.6, 0.85)))
            elif i in targets:
                counts.append(max(base[i], ceil(targets[i] * rng.uniform(1.03, 1.2))))
            else:
                counts.append(max(base[i], ceil(s.default_min_responses * rng.uniform(1.1, 1.4))))
        return counts, targets

    # -- consultation ------------------------------------------------------------

    def consultation(self, counts: list[int]) -> None:
        rng = self.rng
        erased_before, erasure_target = _erasure_targets(self.seed, self.year)
        channel_items = tuple(_CHANNEL_WEIGHTS)
        channel_cum = _cum(_CHANNEL_WEIGHTS.values())
        regular_items = tuple(_REGULAR_CHANNELS)
        regular_cum = _cum(_REGULAR_CHANNELS.values())
        age_cum, youth_age_cum, gender_cum = _cum(_RESPONDENT_AGE), _cum(_YOUTH_AGE), _cum(_RESPONDENT_GENDER)

        # person: [ref or None, (age, gender, ethnic, disability), first timestamp]
        people: list[list[Any]] = []
        # response: [timestamp, borough, channel, person index, themes]
        responses: list[tuple[str, _Borough, str, int, list[str]]] = []

        for b in self.world:
            made = 0
            for i, profile in enumerate(b.regulars):
                if (b.index, i) in erased_before:
                    continue
                people.append([_regular_ref(b.index, i), profile, None])
                for channel in _pick_distinct(rng, regular_items, regular_cum, 2 if rng.random() < 0.4 else 1):
                    self._respond(responses, people, b, len(people) - 1, channel)
                    made += 1
            while made < counts[b.index]:
                channel = _pick(rng, channel_items, channel_cum)
                age = _pick(rng, AGE_BANDS, youth_age_cum if channel == "youth_engagement" else age_cum)
                profile = (
                    age,
                    _pick(rng, GENDERS, gender_cum),
                    _pick(rng, ETHNIC_GROUPS, b.respondent_ethnic_cum),
                    "yes" if rng.random() < 0.17 else "no",
                )
                people.append([None, profile, None])
                self._respond(responses, people, b, len(people) - 1, channel)
                made += 1
                if made < counts[b.index] and rng.random() < 0.08:  # a second response, another channel
                    second = channel
                    while second == channel:
                        second = _pick(rng, channel_items, channel_cum)
                    self._respond(responses, people, b, len(people) - 1, second)
                    made += 1

        # Refs are issued in order of first contact, as a CRM would.
        order = sorted(range(len(people)), key=lambda k: people[k][2])
        serial = 0
        for k in order:
            if people[k][0] is None:
                serial += 1
                people[k][0] = f"r-{self.year % 100:02d}{serial:04d}"
        self.respondents = len(people)
        self.responses = len(responses)

        responses.sort(key=lambda r: r[0])
        built: list[tuple[dict[str, Any], int]] = []
        for ts, b, channel, person, themes in responses:
            ref, profile, _ = people[person]
            payload = self._response_payload(b, channel, ref, profile, themes)
            for t in themes:
                self.consultation_theme_counts[b.index][t] += 1
            e = self.event("consultation.response_received", ts, f"synthetic:{channel.replace('_', '-')}/{self.cycle}", payload)
            built.append((e, person))

        self.corrections(built, people, erasure_target)

    def _respond(self, responses: list, people: list[list[Any]], b: _Borough, person: int, channel: str) -> None:
        """One response of ``person`` in borough ``b`` through ``channel``, at a time that channel keeps."""
        rng = self.rng
        first_day, last_day = date(self.year, 6, 1), date(self.year, 8, 31)
        day = self.day_in(first_day, last_day)
        if channel == "online_survey":
            seconds = rng.randrange(7 * 3600, 23 * 3600)
        elif channel == "written_submission":
            seconds = self.office_hours()
        elif channel == "youth_engagement":
            seconds = rng.randrange(15 * 3600, 19 * 3600)
        else:  # meetings and forums
            seconds = rng.randrange(17 * 3600, 21 * 3600)
        if day == last_day.toordinal():
            seconds = seconds % (13 * 3600)  # the survey closes before the committee signs off
        ts = _ts(day, seconds)
        n_themes = _pick(rng, (1, 2, 3, 4, 5), (20, 45, 75, 90, 100))
        cum = self.youth_theme_cum[b.index] if channel == "youth_engagement" else self.theme_cum[b.index]
        themes = _pick_distinct(rng, THEMES, cum, n_themes)
        responses.append((ts, b, channel, person, themes))
        if people[person][2] is None or ts < people[person][2]:
            people[person][2] = ts

    def _response_payload(self, b: _Borough, channel: str, ref: str, profile: tuple, themes: list[str]) -> dict[str, Any]:
        """The payload of one response: the stated demographics, and what each channel's form sends."""
        rng = self.rng
        respondent: dict[str, Any] = {"respondent_ref": ref}
        for field, value in zip(("age_band", "gender", "ethnic_group", "disability"), profile):
            if rng.random() >= _NOT_STATED:
                respondent[field] = value
        payload: dict[str, Any] = {"borough": b.code, "channel": channel, "respondent": respondent}
        form = channel == "online_survey"  # the survey platform sends every field, null when empty
        if channel == "written_submission" and rng.random() < 0.08:
            kind, pattern = _ORGANISATIONS[rng.randrange(len(_ORGANISATIONS))]
            payload["on_behalf_of"] = {"organisation": pattern.format(name=b.name), "kind": kind}
        elif form:
            payload["on_behalf_of"] = None
        payload["themes"] = _ranked(themes)
        if rng.random() < 0.2:
            payload["comment"] = self.comment(b, themes)
        elif form:
            payload["comment"] = None
        return payload

    def comment(self, b: _Borough, themes: list[str]) -> str:
        rng = self.rng
        a = _THEME_TEXT[themes[0]]
        fill = {"a": a, "A": a[0].upper() + a[1:], "place": _PLACES[rng.randrange(len(_PLACES))], "borough": b.name}
        if len(themes) > 1 and rng.random() < 0.5:
            fill["b"] = _THEME_TEXT[themes[1]]
            text = _TWO_THEME_COMMENTS[rng.randrange(len(_TWO_THEME_COMMENTS))].format(**fill)
        else:
            text = _ONE_THEME_COMMENTS[rng.randrange(len(_ONE_THEME_COMMENTS))].format(**fill)
        if rng.random() < 0.03:  # now and then, someone writes at length
            extra = [_ONE_THEME_COMMENTS[rng.randrange(len(_ONE_THEME_COMMENTS))].format(**fill) for _ in range(rng.randint(3, 8))]
            text = " ".join([text, *extra])
        return text

    def corrections(
        self,
        built: list[tuple[dict[str, Any], int]],
        people: list[list[Any]],
        erasure_target: tuple[int, int] | None,
    ) -> None:
        """Responses keyed twice (the copy is retracted), and one erasure request."""
        rng, y = self.rng, self.year
        regular_refs = {_regular_ref(b, i) for b in range(len(BOROUGHS)) for i in range(_REGULARS_PER_BOROUGH)}
        candidates = [e for e, _ in built if e["payload"]["respondent"]["respondent_ref"] not in regular_refs]
        for original in rng.sample(candidates, min(self.scale.retractions, len(candidates))):
            day = date.fromisoformat(original["occurred_at"][:10]).toordinal()
            h, m, s = (int(x) for x in original["occurred_at"][11:19].split(":"))
            copy = self.event(
                "consultation.response_received",
                _ts(day, h * 3600 + m * 60 + s + rng.randint(60, 900)),
                original["source"],
                json.loads(_dumps(original["payload"])),
            )
            self.event(
                "event.retracted",
                _ts(self.day_in(date(y, 9, 1), date(y, 9, 14)), self.office_hours()),
                f"synthetic:consultation-data-team/{self.cycle}",
                {"target_event_id": copy["event_id"], "reason": RETRACTION_REASON},
            )

        if erasure_target is not None:
            ref = _regular_ref(*erasure_target)
        else:  # no regular left to erase: someone who responded twice this cycle
            seen: dict[int, int] = {}
            for _, person in built:
                seen[person] = seen.get(person, 0) + 1
            twice = [p for p, n in seen.items() if n > 1 and people[p][0] not in regular_refs] or list(seen)
            ref = people[twice[rng.randrange(len(twice))]][0]
        self.event(
            "respondent.erasure_requested",
            _ts(self.day_in(date(y, 10, 5), date(y, 10, 20)), self.office_hours()),
            f"synthetic:information-rights/{self.cycle}",
            {"respondent_ref": ref},
        )

    # -- Public Attitude Survey ---------------------------------------------------

    def survey(self) -> None:
        """Quarterly PAS waves of calendar year Y, the consultation year (2026Q1..2026Q4 for 2027-28)."""
        rng, y, s = self.rng, self.year, self.scale
        per_wave = s.pas_per_borough_per_quarter * s.scale
        sigma = 0.4
        mu = -sigma * sigma / 2  # mean weight 1.0
        gender_cum = _cum((0.51, 0.485, 0.005))
        n_priorities_cum = _cum((0.12, 0.33, 0.33, 0.22))
        for q in (1, 2, 3, 4):
            start = date(y, 3 * q - 2, 1)
            end = (date(y + 1, 1, 1) if q == 4 else date(y, 3 * q + 1, 1)) - timedelta(days=1)
            wave = f"{y}Q{q}"
            drift = [rng.gauss(0, 0.015) for _ in INDICATORS]
            interviews: list[tuple[str, dict[str, Any]]] = []
            for b in self.world:
                cum = self.theme_cum[b.index]
                ethnic_cum = _cum(b.ethnic_share)
                for _ in range(max(1, round(per_wave * rng.uniform(0.92, 1.08)))):
                    ts = _ts(self.day_in(start, end), rng.randrange(9 * 3600, 21 * 3600))
                    weight = max(0.05, round(rng.lognormvariate(mu, sigma), 3))
                    respondent: dict[str, Any] = {}
                    age = _pick(rng, AGE_BANDS, b.adult_age_cum)
                    if rng.random() > 0.03:
                        respondent["age_band"] = age
                    if rng.random() > 0.02:
                        respondent["gender"] = _pick(rng, GENDERS, gender_cum)
                    if rng.random() > 0.04:
                        respondent["ethnic_group"] = _pick(rng, ETHNIC_GROUPS, ethnic_cum)
                    young = -0.06 if age == "16-24" else 0.0
                    indicators = {}
                    for k, ind in enumerate(INDICATORS):
                        if rng.random() < _INDICATOR_ANSWERED:
                            indicators[ind] = rng.random() < b.indicator_p[k] + drift[k] + young
                    priorities = _pick_distinct(rng, THEMES, cum, _pick(rng, (0, 1, 2, 3), n_priorities_cum))
                    for t in priorities:
                        self.survey_theme_weight[t] += weight
                    self.survey_weight_total += weight
                    interviews.append(
                        (
                            ts,
                            {
                                "survey": "PAS",
                                "wave": wave,
                                "borough": b.code,
                                "interview_ref": "",
                                "weight": weight,
                                "respondent": respondent,
                                "indicators": indicators,
                                "priorities": priorities,
                            },
                        )
                    )
            interviews.sort(key=lambda item: item[0])
            source = f"synthetic:pas/{wave}"
            for serial, (ts, payload) in enumerate(interviews, start=1):
                payload["interview_ref"] = f"pas-{y}q{q}-{serial:06d}"
                self.event("survey.response_recorded", ts, source, payload)

    # -- CDRP audits -----------------------------------------------------------------

    def audits(self) -> None:
        """One audit per borough in Aug-Sep; a few arrive late (December);
        one borough resubmits a corrected audit in September, superseding its first."""
        rng, y = self.rng, self.year
        order = rng.sample(range(len(BOROUGHS)), len(BOROUGHS))
        late = set(order[: self.scale.late_audits])
        resubmitter = order[self.scale.late_audits]
        categories = tuple(_CRIME_RATES)
        source = f"synthetic:cdrp-audit-returns/{self.cycle}"
        for b in self.world:
            if b.index in late:
                first_ts = _ts(self.day_in(date(y, 12, 1), date(y, 12, 18)), self.office_hours())
            elif b.index == resubmitter:
                first_ts = _ts(self.day_in(date(y, 8, 1), date(y, 8, 20)), self.office_hours())
            else:
                first_ts = _ts(self.day_in(date(y, 8, 1), date(y, 9, 30)), self.office_hours())
            tilt = _INNER_CRIME if b.inner else _OUTER_CRIME
            chosen = rng.sample(categories, rng.randint(4, 8))
            crime_counts = []
            boost = dict(zip(THEMES, b.theme_weights))
            for c in chosen:
                count = round(_CRIME_RATES[c] * tilt.get(c, 1.0) * b.population / 1000 * rng.uniform(0.7, 1.4))
                previous = round(count * rng.uniform(0.85, 1.18))
                crime_counts.append({"category": c, "count": count, "previous_count": previous})
                if previous:  # rising crime weighs on the partnership's priorities
                    boost[c] *= 1 + 3 * max(0.0, count / previous - 1)
            cum = _cum([boost[t] if t != "other" else 0.0 for t in THEMES])
            priorities = _pick_distinct(rng, THEMES, cum, _pick(rng, (1, 2, 3, 4, 5), (5, 15, 40, 70, 100)))
            payload = {
                "borough": b.code,
                "audit_ref": f"{b.slug}-{y}",
                "period_start": f"{y - 3}-04-01",
                "period_end": f"{y}-03-31",
                "crime_counts": crime_counts,
                "priorities": _ranked(priorities),
            }
            self.event("cdrp.audit_submitted", first_ts, source, payload)
            if b.index == resubmitter:
                revised = json.loads(_dumps(payload))
                revised["audit_ref"] = f"{b.slug}-{y}-v2"
                for row in revised["crime_counts"]:  # corrected figures
                    row["count"] = round(row["count"] * rng.uniform(0.97, 1.03))
                if len(priorities) > 1:  # and the top two priorities swapped
                    priorities[0], priorities[1] = priorities[1], priorities[0]
                    revised["priorities"] = _ranked(priorities)
                self.event(
                    "cdrp.audit_submitted",
                    _ts(self.day_in(date(y, 9, 8), date(y, 9, 25)), self.office_hours()),
                    source,
                    revised,
                )

    # -- groups ------------------------------------------------------------------------

    def meetings(self) -> None:
        """A consultative group per borough meets monthly (not in August); a few ward panels every 6-8 weeks."""
        rng, y = self.rng, self.year
        source = f"synthetic:group-returns/{self.cycle}"
        months = [(y, m) for m in range(3, 13)] + [(y + 1, 1), (y + 1, 2)]
        for b in self.world:
            drop = [5] + rng.sample([k for k in range(12) if k != 5], 11)  # August goes first
            keep = sorted(set(range(12)) - set(drop[: 12 - self.scale.meetings_per_group]))
            cum = self.theme_cum[b.index]
            for k in keep:
                year, month = months[k]
                day = date(year, month, rng.randint(1, 25))
                while day.weekday() > 3:  # Monday to Thursday evenings
                    day += timedelta(days=1)
                attendance = int(_clip(round(rng.gauss(b.attendance_mean, b.attendance_mean * 0.25)), 10, 80))
                self.meeting(b, f"cpcg-{b.slug}", "consultative_group", day.toordinal(), attendance, cum, source)
        wards = random.Random(f"{self.seed}:wards").sample(_WARDS, self.scale.ward_panels)
        end = date(y + 1, 3, 1).toordinal()
        for code, ward in wards:
            b = self.world[BOROUGHS.index(code)]
            day = date(y, 3, 1).toordinal() + rng.randrange(30)
            while day < end:
                while date.fromordinal(day).weekday() > 3:
                    day += 1
                attendance = int(_clip(round(rng.gauss(20, 6)), 10, 80))
                group_id = f"wp-{b.slug}-{ward.lower().replace(' ', '-')}"
                self.meeting(b, group_id, "ward_panel", day, attendance, self.theme_cum[b.index], source)
                day += rng.randint(42, 56)

    def meeting(
        self, b: _Borough, group_id: str, kind: str, day: int, attendance: int, cum: list[float], source: str
    ) -> None:
        rng = self.rng
        cost = round(_clip(100 + attendance * rng.uniform(4, 10) + rng.uniform(0, 120), 100, 900), 2)
        self.event(
            "group.meeting_held",
            _ts(day, rng.choice((18 * 3600, 18 * 3600 + 1800, 19 * 3600))),
            source,
            {
                "group_id": group_id,
                "group_kind": kind,
                "borough": b.code,
                "attendance": attendance,
                "cost_gbp": float(cost),
                "themes": _pick_distinct(rng, THEMES, cum, rng.randint(1, 3)),
            },
        )

    # -- the timetable ---------------------------------------------------------------------

    def london_ranking(self) -> list[str]:
        """Themes by the evidence (consultation share + PAS weighted share), best first; never "other"."""
        cons = {t: sum(c[t] for c in self.consultation_theme_counts) for t in THEMES}
        total_responses = max(1, self.responses)
        total_weight = self.survey_weight_total or 1.0
        score = {t: cons[t] / total_responses + self.survey_theme_weight[t] / total_weight for t in THEMES}
        return sorted((t for t in THEMES if t != "other"), key=lambda t: (-score[t], t))

    def timetable(self) -> None:
        rng, y, p, cycle = self.rng, self.year, self.plan_year, self.cycle
        title_years = Cycle.parse(cycle).plan_years
        base_url = f"https://policing-plan.example/{cycle}"
        ranking = self.london_ranking()
        london = ranking[:5]

        def sign_off(stage: str, body: str, ref: str, ts: str) -> None:
            self.event("stage.signed_off", ts, self.secretariat, {"stage": stage, "body": body, "decision_ref": ref})

        sign_off("brief", "planning_panel", f"PP-{y}-03", _on(y, 3, rng.randint(20, 27), 18, 30))
        sign_off("programme_approval", "consultation_committee", f"CC-{y}-05", _on(y, 5, rng.randint(25, 29), 15))
        sign_off("fieldwork", "consultation_committee", f"CC-{y}-08", _on(y, 8, 31, 16, 30))
        sign_off("analysis", "csmb", f"CSMB-{y}-09", _on(y, 9, rng.randint(24, 29), 14))

        # Round 1 feedback: most boroughs in mid-October, the last two on the due date.
        late = set(rng.sample(range(len(BOROUGHS)), 2))
        top_consultation = sorted(
            (t for t in THEMES if t != "other"),
            key=lambda t: (-sum(c[t] for c in self.consultation_theme_counts), t),
        )[:5]
        summary = (
            f"What we heard: {self.responses:,} responses from {self.respondents:,} people across London. "
            f"The most common concerns were {', '.join(_THEME_TEXT[t] for t in top_consultation[:3])}."
        )
        for boroughs, ts in (
            ([b.code for b in self.world if b.index not in late], _on(y, 10, rng.randint(8, 14), 10)),
            ([b.code for b in self.world if b.index in late], _on(y, 10, 31, 10)),
        ):
            self.event(
                "feedback.published",
                ts,
                self.secretariat,
                {"round": 1, "boroughs": boroughs, "themes": top_consultation, "summary": summary,
                 "url": f"{base_url}/feedback/round-1"},
            )
        sign_off("feedback_1", "csmb", f"CSMB-{y}-10", _on(y, 10, 31, 16))

        adopted = [{"rank": r, "theme": t, "scope": "LONDON"} for r, t in enumerate(london, start=1)]
        for i in sorted(rng.sample(range(len(BOROUGHS)), 4)):
            counts = self.consultation_theme_counts[i]
            local = sorted((t for t in THEMES if t != "other" and t not in london), key=lambda t: (-counts[t], t))
            adopted.append({"rank": 1, "theme": local[0], "scope": self.world[i].code})
        self.event("priorities.adopted", _on(y, 11, 20, 14), self.secretariat, {"priorities": adopted})
        sign_off("priorities", "planning_panel", f"PP-{y}-11", _on(y, 11, rng.randint(25, 28), 18, 30))

        self.event(
            "feedback.published",
            _on(p, 2, rng.randint(16, 24), 10),
            self.secretariat,
            {"round": 2, "boroughs": "all", "themes": london,
             "summary": f"The Panel's priorities for {title_years} and how what you told us shaped them.",
             "url": f"{base_url}/feedback/round-2"},
        )
        sign_off("feedback_2", "authority", f"AUTH-DEC-{p}-{rng.randint(10, 99):03d}", _on(p, 3, rng.randint(20, 27), 11))
        self.event(
            "plan.published",
            _on(p, 5, rng.randint(12, 20), 9),
            self.secretariat,
            {"title": f"Policing Plan {title_years}", "url": f"{base_url}/plan"},
        )
        sign_off("publication", "authority", f"AUTH-DEC-{p}-{rng.randint(100, 199):03d}", _on(p, 5, rng.randint(21, 29), 11))


def _build_cycle(cycle: str, seed: int, scale: DemoScale) -> list[dict[str, Any]]:
    """Every event of ``cycle``, whatever the date, sorted by occurred_at."""
    return _Builder(cycle, seed, scale).build()


# --- faults for the demo file ---------------------------------------------------------------


def _bad_lines(rng: random.Random, events: list[dict[str, Any]], today: date) -> list[DemoLine]:
    """One line per rule of :data:`BAD_LINE_RULES`, each breaking only that rule.

    Built from copies of real good events with fresh ids, so that no bad line
    collides with a good event's id (which would be a different rule).
    """
    response = next(e for e in reversed(events) if e["event_type"] == "consultation.response_received")
    interview = next(e for e in reversed(events) if e["event_type"] == "survey.response_recorded")

    def fresh(template: dict[str, Any]) -> dict[str, Any]:
        copy = json.loads(_dumps(template))
        copy["event_id"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        return copy

    def with_themes(themes: list[dict[str, Any]]) -> dict[str, Any]:
        e = fresh(response)
        e["payload"]["themes"] = themes
        return e

    out: list[tuple[str, str]] = []
    whole = _dumps(fresh(response))
    out.append(("malformed_json", whole[: len(whole) // 2]))
    out.append(("json_array", _dumps([fresh(response)])))
    out.append(("empty_line", ""))
    e = fresh(response)
    e["event_type"] = "consultation.response_deleted"
    out.append(("unknown_event_type", _dumps(e)))
    e = fresh(response)
    e["payload"]["themes"][0]["theme"] = "knife"
    out.append(("theme_not_in_vocabulary", _dumps(e)))
    out.append(("duplicate_themes", _dumps(with_themes([{"theme": "burglary", "rank": 1}, {"theme": "burglary", "rank": 2}]))))
    out.append(("non_contiguous_ranks", _dumps(with_themes([{"theme": "violence", "rank": 1}, {"theme": "drugs", "rank": 3}]))))
    e = fresh(response)
    e["payload"]["borough"] = v.CITY_OF_LONDON
    out.append(("city_of_london", _dumps(e)))
    e = fresh(response)
    e["occurred_at"] = f"{today.year + 20}-06-01T12:00:00Z"
    out.append(("occurred_at_in_future", _dumps(e)))
    e = fresh(response)
    e["payload"]["urgency"] = "high"
    out.append(("unknown_payload_field", _dumps(e)))
    e = fresh(response)
    first = int(e["cycle"][:4])
    e["cycle"] = f"{first}-{(first + 2) % 100:02d}"
    out.append(("bad_cycle", _dumps(e)))
    e = fresh(interview)
    e["payload"]["weight"] = -1.2
    out.append(("negative_weight", _dumps(e)))
    e = fresh(response)
    e["event_id"] = f"evt-{rng.randrange(10**6):06d}"
    out.append(("event_id_not_uuid", _dumps(e)))
    assert tuple(rule for rule, _ in out) == BAD_LINE_RULES
    return [DemoLine("bad", rule, line, interview if rule == "negative_weight" else response) for rule, line in out]
