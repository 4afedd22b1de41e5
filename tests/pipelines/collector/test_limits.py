"""The per-sender token bucket, on a clock the test moves."""

from __future__ import annotations

import pytest

from pipelines.collector.limits import Limits, RateLimits


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def test_a_sender_spends_its_burst_then_waits_for_the_rate() -> None:
    clock = Clock()
    rates = RateLimits(rate=10.0, burst=100, clock=clock)
    assert rates.take("a", 100) is None
    assert rates.take("a", 1) == 1  # 0 tokens: 1 needed at 10/s, waited in whole seconds
    assert rates.take("a", 25) == 3  # nothing was charged for the refusals
    assert rates.take("b", 100) is None  # another sender's bucket is full
    clock.now += 2.5
    assert rates.take("a", 25) is None
    assert rates.take("a", 1) == 1
    clock.now += 1_000
    assert rates.take("a", 100) is None  # refilled to the burst, never beyond
    assert rates.take("a", 1) is not None


def test_an_empty_request_costs_one_event() -> None:
    clock = Clock()
    rates = RateLimits(rate=1.0, burst=2, clock=clock)
    assert rates.take("a", 0) is None and rates.take("a", 0) is None
    assert rates.take("a", 0) == 1


@pytest.mark.parametrize("options, field", [
    ({"rate": 0.0}, "rate"), ({"rate": float("nan")}, "rate"), ({"rate": float("inf")}, "rate"),
    ({"burst": 10}, "burst"), ({"max_events": 20, "burst": 19}, "burst"),
])
def test_limits_out_of_range_are_refused_naming_the_field(options: dict, field: str) -> None:
    with pytest.raises(ValueError, match=f"^{field}:"):
        Limits(**options)
