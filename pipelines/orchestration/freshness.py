"""Whether the data team's copy of the dead letters is older than an erasure (no Dagster here).

The published operations snapshot (``ops.duckdb``, the ``dead_letters`` table
with each line's bytes) is a copy of the store's dead letters. An erasure
redacts dead letters in the store; until the snapshot is rebuilt, the copy
still holds the bytes the respondent asked us to erase. The store counts every
redaction (``EventStore.redaction_mark``) and each operations build records the
mark it read, so a copy made before a redaction is known, however the erasure
arrived (``planning ingest``, the stream worker, a crash between the two).
``planning ingest`` then rebuilds it at once and the daemon's sensor requests a
rebuild (docs/decisions.md, "Erasure reaches the data team's copies").
"""

from __future__ import annotations

from events.home import PlanningHome
from events.storage.backends import open_store
from projections.reading.snapshots import published


def operations_behind_erasures(home: PlanningHome) -> bool:
    """Whether a published operations snapshot predates a redaction of the dead letters it copied."""
    operations = published(home.projections).get("operations")
    if not operations:
        return False  # no copy to correct: the next build reads the store as it is
    with open_store(home.store) as store:
        mark = store.redaction_mark()
    return int(operations.get("redactions") or 0) < mark
