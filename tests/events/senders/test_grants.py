"""Grants are checked per event: its type, and every borough it speaks for."""

from __future__ import annotations

import pytest

from events.contract.validation import Accepted, Rejected, verdict
from events.senders.grants import may_retract, refusal, within_grants
from events.senders.registry import Sender
from tests.support.events import line, make_event

HARROW, BARNET = "E09000015", "E09000003"


def sender(types: set[str], boroughs: set[str] | None, active: bool = True, name: str = "cdrp-harrow") -> Sender:
    return Sender(name, frozenset(types), None if boroughs is None else frozenset(boroughs), active)


def test_an_event_of_a_granted_type_and_borough_is_allowed() -> None:
    assert refusal(sender({"cdrp.audit_submitted"}, {HARROW}), "cdrp.audit_submitted", {"borough": HARROW}) is None


def test_another_borough_is_refused_with_sender_type_and_borough() -> None:
    reason = refusal(sender({"cdrp.audit_submitted"}, {HARROW}), "cdrp.audit_submitted", {"borough": BARNET})
    assert reason == f"sender cdrp-harrow may not send cdrp.audit_submitted for {BARNET}"


def test_an_ungranted_type_is_refused_even_with_every_borough() -> None:
    reason = refusal(sender({"cdrp.audit_submitted"}, None), "priorities.adopted", {})
    assert reason is not None and reason.startswith("sender cdrp-harrow may not send priorities.adopted")


@pytest.mark.parametrize("decision", ["stage.signed_off", "programme.approved", "priorities.adopted", "plan.published",
                                      "cycle.opened", "respondent.erasure_requested", "event.retracted"])
def test_events_without_a_borough_need_their_type_granted(decision: str) -> None:
    assert refusal(sender({decision}, {HARROW}), decision, {}) is None
    assert refusal(sender({"cdrp.audit_submitted"}, None), decision, {}) is not None


def test_feedback_for_several_boroughs_needs_each_and_all_needs_every_borough() -> None:
    local = sender({"feedback.published"}, {HARROW, BARNET})
    assert refusal(local, "feedback.published", {"boroughs": [HARROW, BARNET]}) is None
    assert "E09000012" in refusal(local, "feedback.published", {"boroughs": [HARROW, "E09000012"]})
    assert "all boroughs" in refusal(local, "feedback.published", {"boroughs": "all"})
    assert refusal(sender({"feedback.published"}, None), "feedback.published", {"boroughs": "all"}) is None


def test_a_revoked_sender_may_send_nothing() -> None:
    reason = refusal(sender({"cdrp.audit_submitted"}, None, active=False), "cdrp.audit_submitted", {"borough": HARROW})
    assert reason == "sender cdrp-harrow is revoked: ask the data team to register a new sender"


def test_within_grants_turns_an_accepted_event_into_a_reject_and_leaves_rejects_alone() -> None:
    harrow = sender({"cdrp.audit_submitted"}, {HARROW})
    outside = verdict(line(make_event("cdrp.audit_submitted", {"borough": BARNET})))
    inside = verdict(line(make_event("cdrp.audit_submitted", {"borough": HARROW})))
    assert isinstance(outside, Accepted) and isinstance(inside, Accepted)
    assert within_grants(outside, harrow) == Rejected((f"sender cdrp-harrow may not send cdrp.audit_submitted for {BARNET}",))
    assert within_grants(inside, harrow) is inside
    broken = Rejected(("line: not valid JSON",))
    assert within_grants(broken, harrow) is broken


def test_who_may_retract_what() -> None:
    assert may_retract("cdrp-harrow", "cdrp-harrow")
    assert not may_retract("cdrp-harrow", "cdrp-barnet")
    assert not may_retract("cdrp-harrow", None)  # an event of unknown origin is the data team's to retract
    assert may_retract("operator:alice", "cdrp-barnet")
    assert may_retract(None, "cdrp-barnet")  # a retraction stored before senders were recorded
