"""Which event store a process uses: the embedded one (the default) or PostgreSQL.

``PLANNING_STORE`` chooses: unset or empty, the embedded store under
``$PLANNING_HOME/store`` (``events.storage.store``); a ``postgresql://`` or
``postgres://`` URL, the PostgreSQL store in that database
(``events.storage.postgres``), whose schema ``planning store init`` makes.
Anything else is refused with what is accepted, rather than guessed at.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

STORE_ENV = "PLANNING_STORE"
POSTGRES_SCHEMES = ("postgresql://", "postgres://")


class UnknownStore(ValueError):
    """``PLANNING_STORE`` names no backend this version knows."""


@dataclass(frozen=True)
class StoreChoice:
    url: str | None  # None: the embedded store

    @property
    def embedded(self) -> bool:
        return self.url is None


def chosen_store(environ: dict[str, str] | None = None) -> StoreChoice:
    value = (os.environ if environ is None else environ).get(STORE_ENV, "").strip()
    if not value:
        return StoreChoice(None)
    if value.startswith(POSTGRES_SCHEMES):
        return StoreChoice(value)
    raise UnknownStore(f"{STORE_ENV}: {value.split('://')[0]!r} is not a store this version knows; leave it unset for"
                       " the embedded store under $PLANNING_HOME, or give a postgresql://user@host:port/database URL")
