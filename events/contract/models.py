"""The event contract (docs/events.md) as pydantic v2 models.

Every model forbids unknown fields and validates strictly from JSON (no "5"
for 5, no 1 for true). Vocabulary fields carry their closed list into the
exported JSON Schema, and their errors read like the example in docs/events.md:
``payload.themes[2].theme: 'knife' is not a theme``.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Annotated, Any, Literal, Union
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from events.contract import forms
from events.contract import vocabulary as v
from events.contract.cycle import Cycle
from events.contract.forms import MAX_COST_GBP, MAX_COUNT, MAX_WEIGHT, shown

CURRENT_SCHEMA_VERSION = 1
FUTURE_TOLERANCE = timedelta(minutes=5)


def _vocabulary(name: str, values: tuple[str, ...]) -> Any:
    """A string restricted to a closed vocabulary, with a readable error."""
    allowed = frozenset(values)
    article = "an" if name[0] in "aeiou" else "a"

    def check(value: str) -> str:
        if value not in allowed:
            raise ValueError(f"{shown(value)} is not {article} {name}")
        return value

    return Annotated[str, AfterValidator(check), WithJsonSchema({"type": "string", "enum": list(values)})]


def _check_borough(value: str) -> str:
    if value == v.CITY_OF_LONDON:
        raise ValueError(f"{shown(value)} is the City of London, which is policed separately")
    if value not in v.BOROUGHS:
        raise ValueError(f"{shown(value)} is not a London borough code (E09000002 to E09000033)")
    return value


Borough = Annotated[str, AfterValidator(_check_borough), WithJsonSchema({"type": "string", "enum": list(v.BOROUGHS)})]
Theme = _vocabulary("theme", v.THEMES)
Channel = _vocabulary("channel", v.CHANNELS)
AgeBand = _vocabulary("age_band", v.AGE_BANDS)
Gender = _vocabulary("gender", v.GENDERS)
EthnicGroup = _vocabulary("ethnic_group", v.ETHNIC_GROUPS)
Disability = _vocabulary("disability", v.DISABILITY)
Stage = _vocabulary("stage", v.STAGES)
Body = _vocabulary("body", v.BODIES)
Indicator = _vocabulary("indicator", v.INDICATORS)
RespondentRef = Annotated[str, Field(min_length=1, max_length=64)]
Text = Annotated[str, Field(min_length=1, max_length=200)]
Url = Annotated[str, Field(pattern=r"^https?://[!-~]+$", max_length=2000)]  # printable ASCII: [!-~] reads alike everywhere
Count = Annotated[int, Field(ge=0, le=MAX_COUNT)]
# Values read from text in one written form only (events.contract.forms), checked before pydantic parses them.
Instant = Annotated[AwareDatetime, BeforeValidator(forms.date_time), WithJsonSchema(forms.json_schema("date-time"))]
Day = Annotated[date, BeforeValidator(forms.calendar_date), WithJsonSchema(forms.json_schema("date"))]
Id = Annotated[UUID, BeforeValidator(forms.uuid), WithJsonSchema(forms.json_schema("uuid"))]


def _keys_in_order(mapping: dict[str, Any]) -> dict[str, Any]:
    """A mapping's keys sorted, so that its model serialises alike however the keys were sent."""
    return dict(sorted(mapping.items()))


KeysInOrder = AfterValidator(_keys_in_order)


class Contract(BaseModel):
    """Base of every contract model: strict, closed, immutable."""

    # defer_build: a model's validator is built when it first validates, not at import, so a process that only
    # reads the store (a Dagster run, `planning query`) does not pay for building every model's schema
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, defer_build=True)


def _distinct(items: list[str], what: str) -> None:
    seen: set[str] = set()
    for item in items:
        if item in seen:
            raise ValueError(f"{what} must be distinct ({shown(item)} appears more than once)")
        seen.add(item)


def _distinct_list(what: str) -> AfterValidator:
    """A list whose items must all differ; the error names what they are."""

    def check(items: list[str]) -> list[str]:
        _distinct(items, what)
        return items

    return AfterValidator(check)


# --- shared parts -----------------------------------------------------------


MAX_RANKED = 5  # a ranking names at most five themes


class RankedTheme(Contract):
    theme: Theme
    rank: Annotated[int, Field(ge=1, le=MAX_RANKED)]


def _check_ranking(themes: list[RankedTheme]) -> list[RankedTheme]:
    """1–5 distinct themes whose ranks are exactly 1..n."""
    _distinct([t.theme for t in themes], "themes")
    ranks = sorted(t.rank for t in themes)
    if ranks != list(range(1, len(themes) + 1)):
        raise ValueError(f"ranks must be 1..{len(themes)} with no gaps or repeats (got {ranks})")
    return themes


Ranking = Annotated[list[RankedTheme], Field(min_length=1, max_length=MAX_RANKED), AfterValidator(_check_ranking)]


class Respondent(Contract):
    """A consultation respondent: a pseudonymous reference plus optional demographics.

    All of it is personal data; the demographics are special category data.
    """

    respondent_ref: RespondentRef
    age_band: AgeBand | None = None
    gender: Gender | None = None
    ethnic_group: EthnicGroup | None = None
    disability: Disability | None = None


class SurveyRespondent(Contract):
    age_band: AgeBand | None = None
    gender: Gender | None = None
    ethnic_group: EthnicGroup | None = None
    disability: Disability | None = None


class OnBehalfOf(Contract):
    organisation: Text
    kind: Text


# --- input events ------------------------------------------------------------


class ConsultationResponse(Contract):
    borough: Borough
    channel: Channel
    respondent: Respondent
    on_behalf_of: OnBehalfOf | None = None
    themes: Ranking
    comment: Annotated[str, Field(max_length=10_000)] | None = None


class SurveyResponse(Contract):
    survey: Text
    wave: Annotated[str, Field(min_length=1, max_length=20)]
    borough: Borough
    interview_ref: Annotated[str, Field(min_length=1, max_length=64)]
    weight: Annotated[float, Field(gt=0, le=MAX_WEIGHT, allow_inf_nan=False)]
    respondent: SurveyRespondent | None = None
    indicators: Annotated[dict[Indicator, bool], KeysInOrder] = Field(default_factory=dict)
    priorities: Annotated[list[Theme], Field(max_length=3), _distinct_list("priorities")] = Field(default_factory=list)


class CrimeCount(Contract):
    category: Text
    count: Count
    previous_count: Count | None = None


class CdrpAudit(Contract):
    borough: Borough
    audit_ref: Text
    period_start: Day
    period_end: Day
    crime_counts: Annotated[list[CrimeCount], Field(max_length=100)] = Field(default_factory=list)
    priorities: Ranking

    @model_validator(mode="after")
    def _period_in_order(self) -> CdrpAudit:
        if self.period_end < self.period_start:
            raise ValueError("period_end is before period_start")
        return self


class ProfileGroups(Contract):
    """Population counts by group, per inclusion dimension (absent = not in the profile)."""

    age_band: Annotated[dict[AgeBand, Count], KeysInOrder] | None = None
    gender: Annotated[dict[Gender, Count], KeysInOrder] | None = None
    ethnic_group: Annotated[dict[EthnicGroup, Count], KeysInOrder] | None = None
    disability: Annotated[dict[Disability, Count], KeysInOrder] | None = None


class BoroughProfile(Contract):
    borough: Borough
    source: Text
    population: Annotated[int, Field(gt=0, le=MAX_COUNT)]
    groups: ProfileGroups = Field(default_factory=ProfileGroups)


class GroupMeeting(Contract):
    group_id: Text
    group_kind: Channel
    borough: Borough
    attendance: Count
    cost_gbp: Annotated[float, Field(ge=0, le=MAX_COST_GBP, allow_inf_nan=False)]
    themes: Annotated[list[Theme], Field(max_length=len(v.THEMES)), _distinct_list("themes")] = Field(default_factory=list)


# --- process events (the timetable) -----------------------------------------


class StageWindow(Contract):
    stage: Stage
    opens_on: Day
    due_on: Day

    @model_validator(mode="after")
    def _window_in_order(self) -> StageWindow:
        if self.due_on < self.opens_on:
            raise ValueError("due_on is before opens_on")
        return self


class CycleOpened(Contract):
    timetable: Annotated[list[StageWindow], Field(max_length=len(v.STAGES))] = Field(default_factory=list)

    @field_validator("timetable")
    @classmethod
    def _one_window_per_stage(cls, timetable: list[StageWindow]) -> list[StageWindow]:
        _distinct([w.stage for w in timetable], "timetable stages")
        return timetable


class BoroughTarget(Contract):
    borough: Borough
    min_responses: Count


_ALL_GROUPS = tuple(dict.fromkeys(g for groups in v.DEMOGRAPHIC_DIMENSIONS.values() for g in groups))


class ProgrammeApproved(Contract):
    default_min_responses: Count
    targets: Annotated[list[BoroughTarget], Field(max_length=len(v.BOROUGHS))] = Field(default_factory=list)
    priority_groups: Annotated[
        list[_vocabulary("demographic group", _ALL_GROUPS)], Field(max_length=len(_ALL_GROUPS))  # type: ignore[misc]
    ] = Field(default_factory=list)

    @field_validator("targets")
    @classmethod
    def _one_target_per_borough(cls, targets: list[BoroughTarget]) -> list[BoroughTarget]:
        _distinct([t.borough for t in targets], "target boroughs")
        return targets


class StageSignedOff(Contract):
    stage: Stage
    body: Body
    decision_ref: Text


# "all", or a list of boroughs; the discriminator picks the branch so an error
# names the field once (union branches are tagged "<…>", which error paths skip).
BoroughsOrAll = Annotated[
    Union[Annotated[Literal["all"], Tag("<all>")], Annotated[list[Borough], Field(min_length=1, max_length=len(v.BOROUGHS)), Tag("<list>")]],
    Discriminator(lambda value: "<all>" if isinstance(value, str) else "<list>"),
]


class FeedbackPublished(Contract):
    round: Literal[1, 2]
    boroughs: BoroughsOrAll
    themes: Annotated[list[Theme], Field(max_length=len(v.THEMES))] = Field(default_factory=list)
    summary: Annotated[str, Field(max_length=10_000)] | None = None
    url: Url | None = None


Scope = Annotated[
    str,
    AfterValidator(lambda s: s if s == v.LONDON else _check_borough(s)),
    WithJsonSchema({"type": "string", "enum": [v.LONDON, *v.BOROUGHS]}),
]


class AdoptedPriority(Contract):
    rank: Annotated[int, Field(ge=1, le=len(v.THEMES))]  # within a scope, each theme at most once
    theme: Theme
    scope: Scope


class PrioritiesAdopted(Contract):
    priorities: Annotated[list[AdoptedPriority], Field(min_length=1, max_length=(1 + len(v.BOROUGHS)) * len(v.THEMES))]

    @field_validator("priorities")
    @classmethod
    def _distinct_per_scope(cls, priorities: list[AdoptedPriority]) -> list[AdoptedPriority]:
        _distinct([f"{p.scope}/{p.theme}" for p in priorities], "scope/theme pairs")
        _distinct([f"{p.scope}/rank {p.rank}" for p in priorities], "ranks within a scope")
        return priorities


class PlanPublished(Contract):
    title: Text
    url: Url | None = None


# --- corrections and personal data ------------------------------------------


class EventRetracted(Contract):
    target_event_id: Id
    reason: Annotated[str, Field(min_length=1, max_length=1000)]


class ErasureRequested(Contract):
    respondent_ref: RespondentRef


PAYLOADS: dict[str, type[Contract]] = {
    "consultation.response_received": ConsultationResponse,
    "survey.response_recorded": SurveyResponse,
    "cdrp.audit_submitted": CdrpAudit,
    "borough.profile_recorded": BoroughProfile,
    "group.meeting_held": GroupMeeting,
    "cycle.opened": CycleOpened,
    "programme.approved": ProgrammeApproved,
    "stage.signed_off": StageSignedOff,
    "feedback.published": FeedbackPublished,
    "priorities.adopted": PrioritiesAdopted,
    "plan.published": PlanPublished,
    "event.retracted": EventRetracted,
    "respondent.erasure_requested": ErasureRequested,
}
EVENT_TYPES: tuple[str, ...] = tuple(PAYLOADS)


# --- the envelope -------------------------------------------------------------


def _canonical_cycle(text: str) -> str:
    if forms.is_cycle(text):  # the common case, at the cost of one regex
        return text
    cycle = Cycle.parse(text)  # the reason why not
    forms.cycle_in_range(cycle.plan_year, text)
    return str(cycle)


# on the wire a cycle is its text ("2027-28"); events.contract.cycle.Cycle is the value type behind the check
CycleName = Annotated[str, AfterValidator(_canonical_cycle), WithJsonSchema(forms.json_schema("cycle"))]


class Envelope(Contract):
    """Fields common to every event; subclasses fix ``event_type`` and ``payload``."""

    event_id: Id
    event_type: str
    schema_version: Annotated[int, Field(ge=1, le=CURRENT_SCHEMA_VERSION)]
    occurred_at: Instant
    source: Text
    cycle: CycleName
    payload: Contract
    # Data generated for demonstration or testing says so: a store holds synthetic or real events, never both
    # (events.storage.store), and every output built from synthetic events carries the label.
    synthetic: bool = False

    @field_validator("occurred_at")
    @classmethod
    def _not_in_the_future(cls, occurred_at: datetime, info: ValidationInfo) -> datetime:
        now = (info.context or {}).get("received_at") or datetime.now(timezone.utc)
        if occurred_at > now + FUTURE_TOLERANCE:
            raise ValueError(
                f"{occurred_at.isoformat()} is in the future (receiving clock {now.isoformat(timespec='seconds')})"
            )
        return occurred_at


def _envelope_for(event_type: str, payload: type[Contract]) -> type[Envelope]:
    class_name = "".join(part.title() for part in event_type.replace(".", "_").split("_")) + "Event"
    annotations = {"event_type": Literal[event_type], "payload": payload}  # type: ignore[valid-type]
    return type(class_name, (Envelope,), {"__annotations__": annotations, "__module__": __name__})


ENVELOPES: dict[str, type[Envelope]] = {t: _envelope_for(t, p) for t, p in PAYLOADS.items()}

# The union the validator parses against, discriminated on event_type.
AnyEvent = Annotated[Union[tuple(ENVELOPES.values())], Field(discriminator="event_type")]  # type: ignore[valid-type]
