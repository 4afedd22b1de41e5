"""What one request may carry, and how fast one sender may send: the collector's published limits.

The limits protect the store's one writer from a sender that floods it, and
keep a request's memory bounded (a body is held whole while it is judged).
They are documented for upstream system owners in docs/collector.md, and in
the OpenAPI document built from these constants (``pipelines.collector.openapi``).

- a body of at most ``MAX_BODY_BYTES``: refused by its ``Content-Length``
  before it is read, and while it streams in when it has none (chunked);
- a body received whole within ``MAX_BODY_SECONDS``: a client that trickles
  its body holds one of the bodies the collector takes at once, so it is cut off;
- at most ``MAX_BODIES_AT_ONCE`` requests' bodies held at once, over all
  senders (more are answered 503 with ``Retry-After``): with bodies of up to
  ``MAX_BODY_BYTES`` held whole while they are judged, this bounds the
  collector's memory. It bounds ``POST /v1/events`` only: the web site
  beside it on the same port has its own bound (``pipelines.web.pages.view``);
- at most ``MAX_EVENTS`` events (lines, or items of the array) per request,
  the size of one `planning ingest` batch;
- per sender, ``rate`` events per second with bursts of up to ``burst``: a
  token bucket (``RateLimits``) charged one token per event, at least one per
  request. The bucket is taken only once a body has been read and counted,
  so a refused request costs the sender nothing; the answer's
  ``Retry-After`` says in how many seconds that request would pass.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

MAX_BODY_BYTES = 5 * 1024 * 1024
MAX_EVENTS = 5_000
MAX_BODY_SECONDS = 30.0  # 5 MiB in 30 s is 1.4 Mbit/s: slower than that, a client is holding a slot, not sending
MAX_BODIES_AT_ONCE = 32  # 32 x 5 MiB = 160 MiB of bodies at most, however many clients are connected
DEFAULT_RATE = 1_000.0  # events per second per sender, sustained
DEFAULT_BURST = 10_000  # events per sender at once; at least MAX_EVENTS, so any request can pass
MAX_RATE = 1_000_000.0
MAX_BURST = 10_000_000


@dataclass(frozen=True)
class Limits:
    """The limits one collector runs with (the defaults are the published ones)."""

    max_body_bytes: int = MAX_BODY_BYTES
    max_events: int = MAX_EVENTS
    rate: float = DEFAULT_RATE
    burst: int = DEFAULT_BURST
    body_seconds: float = MAX_BODY_SECONDS
    bodies_at_once: int = MAX_BODIES_AT_ONCE

    def __post_init__(self) -> None:
        if self.bodies_at_once < 1:
            raise ValueError(f"bodies_at_once: {self.bodies_at_once} is out of range; give at least 1 request")
        if not (math.isfinite(self.rate) and 0 < self.rate <= MAX_RATE):
            raise ValueError(f"rate: {self.rate} is out of range; give more than 0 and at most {MAX_RATE:,.0f} events per second")
        if not self.max_events <= self.burst <= MAX_BURST:
            raise ValueError(f"burst: {self.burst} is out of range; give from {self.max_events:,} (one full request) "
                             f"to {MAX_BURST:,} events")


@dataclass
class _Bucket:
    tokens: float
    at: float


@dataclass
class RateLimits:
    """One token bucket per sender: ``take`` charges a request's events, or says how long to wait.

    Used from the server's event loop only, so it needs no lock. ``clock`` is monotonic seconds."""

    rate: float
    burst: int
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[str, _Bucket] = field(default_factory=dict)

    def take(self, sender: str, events: int) -> int | None:
        """None when the sender may send ``events`` events now (they are charged); else the whole
        number of seconds after which it may (``Retry-After``), and nothing is charged."""
        cost = min(max(events, 1), self.burst)
        now = self.clock()
        bucket = self._buckets.setdefault(sender, _Bucket(float(self.burst), now))
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.at) * self.rate)
        bucket.at = now
        if bucket.tokens >= cost:
            bucket.tokens -= cost
            return None
        return max(1, math.ceil((cost - bucket.tokens) / self.rate))
