"""A validator process collects garbage less often (``pipelines.ingest.pool.collect_less_often``;
docs/decisions.md, "Fewer garbage collections where events go by the batch"); the process that
started it keeps CPython's defaults."""

from __future__ import annotations

import gc

from pipelines.ingest.pool import YOUNGEST_COLLECTION_EVERY, start_pool


def test_a_validator_process_collects_its_youngest_objects_less_often() -> None:
    pool = start_pool(1)
    try:
        assert pool.submit(gc.get_threshold).result(timeout=60)[0] == YOUNGEST_COLLECTION_EVERY
    finally:
        pool.shutdown()
