"""Two homes built from the same small cycle: one of synthetic events, one of real ones.

Every output built from the synthetic home must carry the label, and none
built from the real one may. Knowledge time is pinned: the events are
recorded at ``RECORDED_AT`` and the build reads them at (``ON``, ``AS_OF``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from events.home import PlanningHome
from pipelines.cli.main import main
from pipelines.orchestration.runs import build
from tests.support.events import make_event, write_jsonl
from tests.support.home import use_home

CYCLE = "2027-28"
RECORDED_AT = "2026-11-20T09:00:00Z"
ON = "2026-11-23"
AS_OF = "2026-11-23T12:00:00Z"
LABEL = "SYNTHETIC DATA"


def cycle_events(*, synthetic: bool) -> list[dict]:
    """A cycle that fills every table (as in tests/projections/test_exports.py), labelled or not."""
    label = {"synthetic": True} if synthetic else {}
    return [
        make_event("cycle.opened", {"timetable": []}, occurred_at="2026-02-15T09:00:00Z", **label),
        make_event("programme.approved", occurred_at="2026-05-20T09:00:00Z", **label),
        make_event("consultation.response_received", {"borough": "E09000012"}, **label),
        make_event("survey.response_recorded", **label),
        make_event("borough.profile_recorded", occurred_at="2026-04-01T09:00:00Z", **label),
        make_event("group.meeting_held", **label),
        make_event("cdrp.audit_submitted", occurred_at="2026-08-15T10:00:00Z", **label),
        make_event("feedback.published", occurred_at="2026-10-05T10:00:00Z", **label),
        make_event("priorities.adopted", {"priorities": [{"rank": 1, "theme": "knife_crime", "scope": "LONDON"}]},
                   occurred_at="2026-11-10T10:00:00Z", **label),
    ]


def built_home(patch: pytest.MonkeyPatch, root: Path, *, synthetic: bool) -> PlanningHome:
    """Ingest the cycle into a new home under ``root`` and build it through Dagster; the home stays in use."""
    home = use_home(patch, root)
    root.parent.mkdir(parents=True, exist_ok=True)
    events = write_jsonl(root.parent / f"{root.name}.jsonl", cycle_events(synthetic=synthetic))
    assert main(["ingest", "--recorded-at", RECORDED_AT, str(events)]) == 0
    # the current snapshot at pinned instants (`planning build --on/--as-of` would publish a named what-if one)
    build(home, cycle=CYCLE, on=ON, as_of=AS_OF)
    return home


def built_homes(root: Path) -> dict[str, PlanningHome]:
    """One home of each kind under ``root``: {"synthetic": …, "real": …}, each built as ``built_home`` does."""
    homes = {}
    for kind in ("synthetic", "real"):
        with pytest.MonkeyPatch.context() as patch:
            homes[kind] = built_home(patch, root / kind / "planning-home", synthetic=kind == "synthetic")
    return homes
