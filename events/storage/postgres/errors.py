"""Which of psycopg's errors mean the connection is gone, not that the store or the data is at fault.

A restart, a failover or a network cut raises ``psycopg.OperationalError`` (``AdminShutdown`` among
them) on the next statement; a writer may connect again and repeat an append, which is idempotent.
Here so that only this package imports psycopg (``events.storage.backends.lost_connection`` asks).
"""

from __future__ import annotations

import psycopg


def is_lost_connection(error: BaseException) -> bool:
    return isinstance(error, psycopg.OperationalError)


__all__ = ["is_lost_connection"]
