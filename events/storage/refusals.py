"""Why a store cannot be used as it stands, on either backend.

Its own module, below both ``events.storage.backends`` (which chooses the
backend) and ``events.storage.postgres`` (which raises them), so neither
imports the other to name them. Every command shows the message and exits 3.
"""

from __future__ import annotations


class StoreRefused(RuntimeError):
    """The store cannot be used as it stands; the message says what to do."""


class StoreUnavailable(StoreRefused):
    """The PostgreSQL store cannot be reached (down, restarting, refusing): worth waiting for, not a broken store."""


__all__ = ["StoreRefused", "StoreUnavailable"]
