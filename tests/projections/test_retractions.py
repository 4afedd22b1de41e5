"""Retractions of retractions, resolved to any depth; targets compared as UUIDs."""

from __future__ import annotations

from projections.building.retractions import retracted_ids

E = "6f1c2e0a-8d3b-4c1e-9f52-0b7a1d3c9e11"
R1, R2, R3 = (f"00000000-0000-4000-8000-00000000000{i}" for i in (1, 2, 3))


def test_a_plain_retraction_removes_its_target() -> None:
    assert retracted_ids([(R1, E)]) == {E}


def test_retracting_the_retraction_restores_the_target() -> None:
    assert retracted_ids([(R1, E), (R2, R1)]) == {R1}


def test_a_chain_of_three_resolves_from_its_end() -> None:
    assert retracted_ids([(R1, E), (R2, R1), (R3, R2)]) == {E, R2}


def test_any_standing_retraction_is_enough() -> None:
    assert retracted_ids([(R1, E), (R2, E), (R3, R1)]) == {E, R1}


def test_a_loop_of_retractions_removes_nothing_outside_it() -> None:
    assert retracted_ids([(R1, E), (R2, R3), (R3, R2)]) == {E}


def test_targets_in_any_uuid_form_name_the_same_event() -> None:
    for form in (E.upper(), E.replace("-", ""), "{" + E + "}", "urn:uuid:" + E):
        assert retracted_ids([(R1, form)]) == {E}, form
