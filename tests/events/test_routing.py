"""Every event type of the contract travels on exactly one topic family."""

from collections import Counter

import pytest

from events.contract.models import EVENT_TYPES
from events.routing import FAMILIES, UnknownEventType, family_of, topic_for


def test_every_event_type_has_one_family() -> None:
    routed = Counter(t for types in FAMILIES.values() for t in types)
    assert sorted(routed) == sorted(EVENT_TYPES), "an event type of the contract without a family, or a family's unknown type"
    assert [t for t, n in routed.items() if n > 1] == [], "an event type in two families"
    assert {family_of(t) for t in EVENT_TYPES} == set(FAMILIES)


def test_an_unknown_event_type_is_refused_by_name() -> None:
    with pytest.raises(UnknownEventType, match="event_type: 'consultation.unheard_of'"):
        topic_for("consultation.unheard_of")
