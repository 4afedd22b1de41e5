"""Everything the contract accepts, a build can read: events at the edges of every JSON Schema build.

An accepted event the build could not read (an ``occurred_at`` of "1700000000", a cycle of
year 1, a count of 10^30) once stopped every later build for good. Here Hypothesis draws
batches of events from the published schemas, biased to their bounds
(``tests.support.schema_events``); every one the pipeline accepts is appended to a store,
and the cycle is built the way a build does it: the event cache refreshed from the
segments, the cycle staged, every Panel table made by its SQL (no Dagster: the same SQL,
without seconds of orchestration per example).

It runs twice: a fixed set of examples (``derandomize``: the same every run, in CI too)
and a short random run, which finds something new now and then.
"""

from __future__ import annotations

import tempfile
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events.contract import forms
from events.contract.cycle import Cycle
from events.contract.instants import Instants
from events.contract.validation import Accepted, verdict
from events.storage.store import EventStore, Received
from projections.building import event_cache
from projections.building.build import build_table
from projections.building.staging import stage_cycle
from projections.connection import connect
from projections.tables import PANEL_TABLES
from tests.support.events import line
from tests.support.schema_events import any_events, obeying_pipeline_rules

# Later than any instant the contract allows (31 Dec 2099, 23:59:59.999999 at offset -23:59),
# so that "not in the future" never refuses a drawn event.
RECEIVED_AT = datetime(2100, 1, 2, tzinfo=timezone.utc)
BUILT_AT = Instants(date(2100, 1, 2), RECEIVED_AT)

batches = st.tuples(
    st.one_of(st.sampled_from([forms.FIRST_PLAN_YEAR, forms.LAST_PLAN_YEAR]), st.integers(forms.FIRST_PLAN_YEAR, forms.LAST_PLAN_YEAR)),
    st.lists(any_events(), min_size=8, max_size=40),
)


def _batch(plan_year: int, drawn: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The drawn events in one cycle, obeying the pipeline's own rules; a retraction names the event before it,
    and every event is of the first one's kind, synthetic or real (a store holds one kind: events.storage.store)."""
    events = [obeying_pipeline_rules({**event, "cycle": str(Cycle(plan_year))}) for event in drawn]
    synthetic = events[0].get("synthetic") is True
    for event in events:
        if (event.get("synthetic") is True) != synthetic:
            event["synthetic"] = synthetic
    for before, event in zip(events, events[1:]):
        if event["event_type"] == "event.retracted":
            event["payload"] = {**event["payload"], "target_event_id": before["event_id"]}
    return events


def builds(plan_year: int, drawn: list[dict[str, Any]]) -> None:
    events = _batch(plan_year, drawn)
    raws = [line(event) for event in events]
    checked = [verdict(raw, RECEIVED_AT) for raw in raws]
    accepted = [c for c in checked if isinstance(c, Accepted)]
    assert accepted, [c.reasons for c in checked]  # the mended events obey every rule: a rejection is a finding
    cycle = str(Cycle(plan_year))
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        with EventStore(root / "store", writer=True) as store:
            store.append([Received(raw, f"drawn:{i}", c) for i, (raw, c) in enumerate(zip(raws, checked), 1)], RECEIVED_AT)
        with EventStore(root / "store") as store, event_cache.cache_lock(root / "projections"):
            event_cache.refresh(store, root / "projections")
            (root / "build").mkdir()
            counts = stage_cycle(store, root / "build" / "staging.duckdb", cycle, BUILT_AT,
                                 cache=event_cache.cache_file(root / "projections"))
        for name in PANEL_TABLES:
            build_table(root / "build", name)
        with connect(root / "build" / "panel.duckdb") as panel:
            for name in PANEL_TABLES:
                panel.execute(f"SELECT * FROM {name}").fetchall()  # every value readable back into Python
    retracted = sum(1 for e in events if e["event_type"] == "event.retracted")
    assert counts["cycle_events"] >= sum(1 for c in accepted if c.event_type != "event.retracted") - 2 * retracted


@settings(max_examples=10, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck), print_blob=False)
@given(batches)
def test_every_accepted_event_builds_fixed_examples(batch: tuple[int, list[dict[str, Any]]]) -> None:
    builds(*batch)


@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck))
@given(batches)
def test_every_accepted_event_builds_random_examples(batch: tuple[int, list[dict[str, Any]]]) -> None:
    builds(*batch)
