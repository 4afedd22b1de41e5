"""The synthetic label, as every reader of a snapshot shows it.

Whether data is synthetic is a property of the data, not of a command's
flags: the event store holds one kind only (``events.storage.store``), each
build records the kind in ``build_info.synthetic``, and every output read
from a snapshot (``planning query``, packs, exports) takes it from there. A
snapshot built before the column existed reads as real; rebuilding it
labels it.
"""

from __future__ import annotations

import duckdb

LABEL = "SYNTHETIC DATA"
EXPLANATION = (
    "the events behind it were generated for demonstration and testing; "
    "they describe no real consultation, survey, audit or person"
)
NOTE = f"{LABEL}: {EXPLANATION}."


def holds_synthetic(db: duckdb.DuckDBPyConnection) -> bool:
    """Whether any build a reader connection sees was built from synthetic data: a cycle's
    (``build_info``) or, when attached, the data team's dead letters' (``operations.build_info``)."""
    return any(_says_synthetic(db, table) for table in ("build_info", "operations.build_info"))


def _says_synthetic(db: duckdb.DuckDBPyConnection, table: str) -> bool:
    try:
        (synthetic,) = db.execute(f"SELECT coalesce(bool_or(synthetic), false) FROM {table}").fetchone()
    except (duckdb.BinderException, duckdb.CatalogException):  # built before the column existed, or not attached
        return False
    return bool(synthetic)
