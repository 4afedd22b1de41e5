"""Staging reads a PAS interview's indicators by the contract's names, each one the interview answered.

``sql/_staging.sql`` reads the indicators into a struct of the contract's seven, named in the SQL
(a struct is three times as fast as a map at 10M events). So the names there and the vocabulary
must not drift apart: an indicator the contract lets in but the SQL does not name would vanish from
``survey_indicators`` without an error.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from events.contract.instants import Instants
from events.contract.validation import Accepted, verdict
from events.contract.vocabulary import INDICATORS
from events.storage.store import EventStore
from projections.building.staging import stage_cycle
from projections.connection import connect
from tests.support.events import line, make_event, received

KNOWN_BY = datetime(2026, 8, 1, tzinfo=timezone.utc)
AT = Instants.parse("2026-09-01", "2026-09-01")


def staged_answers(tmp_path: Path, interviews: list[dict]) -> list[tuple[str, str, bool]]:
    events = [make_event("cycle.opened"), *interviews]
    with EventStore(tmp_path / "store", writer=True) as store:
        store.append(received(events), KNOWN_BY)
        stage_cycle(store, tmp_path / "staging.duckdb", "2027-28", AT)
    with connect(tmp_path / "staging.duckdb", read_only=True) as db:
        return db.execute("SELECT event_id, indicator, answer FROM indicator_answers ORDER BY ALL").fetchall()


def test_every_indicator_of_the_contract_is_staged_with_its_answer(tmp_path: Path) -> None:
    answers = {indicator: i % 2 == 0 for i, indicator in enumerate(INDICATORS)}
    interview = make_event("survey.response_recorded", {"indicators": answers})
    assert isinstance(verdict(line(interview)), Accepted), "the contract lets every indicator in"

    staged = staged_answers(tmp_path, [interview])

    assert {indicator: answer for _, indicator, answer in staged} == answers
    assert {event_id for event_id, _, _ in staged} == {interview["event_id"]}


def test_an_indicator_left_unanswered_has_no_row(tmp_path: Path) -> None:
    some = make_event("survey.response_recorded", {"indicators": {"trust": False, "informed": True}})
    none = make_event("survey.response_recorded", {"indicators": {}})

    staged = staged_answers(tmp_path, [some, none])

    assert staged == sorted([(some["event_id"], "informed", True), (some["event_id"], "trust", False)])
