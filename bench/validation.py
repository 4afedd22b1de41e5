"""What one line's contract check costs, and whether a batch checked at once costs less (issue 17, item 2).
Not a figure: a probe.

    python -m bench.validation FILE [LINES]    # e.g. bench/results/data/1M/events.jsonl 20000

Reads the first LINES valid lines of FILE (default 20,000) and times, per line, the best of three passes:
``verdict`` as the validator pool calls it, then its parts one by one (parsing, the pydantic contract,
the canonical digest), then the same lines validated as one JSON array by a ``TypeAdapter(list[...])``
(pydantic's bulk validation: one call, one parse) and from dicts already parsed, and finally what a chunk's
verdicts cost to cross back from a validator process (pickled there, unpickled in the store's process).
"""

from __future__ import annotations

import pickle
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from pydantic import TypeAdapter

from events.contract.json_text import parse_json
from events.contract.models import AnyEvent
from events.contract.validation import Accepted, canonical_digest, verdict
from pipelines.ingest.files import CHUNK_LINES
from pipelines.ingest.pool import collect_less_often, verdicts

PASSES = 3
CHUNK = CHUNK_LINES  # lines a validator process is handed at a time


def per_line(name: str, lines: int, work: Callable[[], Any]) -> None:
    best = min(_timed(work) for _ in range(PASSES))
    print(f"{name:48s} {best / lines * 1e6:7.2f} µs a line")


def _timed(work: Callable[[], Any]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def main(path: str, wanted: int) -> None:
    collect_less_often()  # as in a validator process
    now = datetime.now(timezone.utc)
    raws: list[bytes] = []
    with open(path, "rb") as lines:
        for raw in lines:
            if isinstance(verdict(raw.rstrip(b"\n"), now), Accepted):
                raws.append(raw.rstrip(b"\n"))
            if len(raws) == wanted:
                break
    n = len(raws)
    context = {"received_at": now}
    one = TypeAdapter(AnyEvent)  # as events/contract/validation.py checks a line
    print(f"{n:,} valid lines of {path}")
    per_line("verdict (what a validator does per line)", n, lambda: [verdict(r, now) for r in raws])
    per_line("  parse_json (the body the store keeps)", n, lambda: [parse_json(r) for r in raws])
    per_line("  the contract: validate_json, one line", n, lambda: [one.validate_json(r, strict=True, context=context) for r in raws])
    models = [one.validate_json(r, strict=True, context=context) for r in raws]
    per_line("  canonical_digest", n, lambda: [canonical_digest(m) for m in models])
    bulk = TypeAdapter(list[AnyEvent])
    per_line("the contract in bulk: one JSON array", n,
             lambda: bulk.validate_json(b"[" + b",".join(raws) + b"]", strict=True, context=context))
    bodies = [parse_json(r) for r in raws]
    per_line("the contract in bulk: a list of parsed dicts", n, lambda: bulk.validate_python(bodies, strict=True, context=context))
    chunks = [verdicts(raws[i:i + CHUNK], now) for i in range(0, n, CHUNK)]
    pickled = [pickle.dumps(chunk) for chunk in chunks]
    per_line("a chunk's verdicts pickled (validator process)", n, lambda: [pickle.dumps(chunk) for chunk in chunks])
    per_line("a chunk's verdicts unpickled (store's process)", n, lambda: [pickle.loads(data) for data in pickled])


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 20_000)
