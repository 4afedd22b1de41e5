"""Commands that work on the embedded store alone (backup, restore, recover): on the PostgreSQL store they
refuse, saying what to use instead.

A module of its own, importing only the store's choice: `planning backup` reaches it without loading the
contract or the segment checks.
"""

from __future__ import annotations

import sys

from events.storage.backends import is_embedded
from pipelines.exit_codes import ExitCode


def refuse_on_postgres(command: str, instead: str) -> int | None:
    """USAGE, saying what to use instead, when ``command`` is the embedded store's own and PLANNING_STORE
    names PostgreSQL; None when the embedded store is chosen."""
    if is_embedded():
        return None
    print(f"planning {command}: the event store is in PostgreSQL (PLANNING_STORE), which keeps no segment files: "
          f"{command} works on the embedded store only. {instead}", file=sys.stderr)
    return ExitCode.USAGE
