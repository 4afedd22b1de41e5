"""Which snapshot a build publishes: the current one, or a named one.

The Panel reads the *current* snapshot: each cycle built at (today, now),
which the sensor and the morning schedule keep fresh. A build at any other
(``on``, ``as_of``) is a what-if ("what did the Panel know on 1 October?"):
it must never replace what the Panel reads, so it is published beside the
current snapshot under a name, and read with ``--snapshot NAME``.

A name is chosen with ``--name``, or derived from the two instants as
``on-<YYYY-MM-DD>-asof-<YYYY-MM-DDTHHMMSSZ>`` (``as_of`` in UTC, to the
second; a bare date as ``as_of`` means the end of that day, so
``--as-of 2026-10-01`` gives ``…-asof-2026-10-01T235959Z``). Building again
at the same name replaces that name's cycles, never the current ones.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timezone

from events.contract.instants import Instants

CURRENT = "current"  # what readers see without --snapshot; never a name a build may take
MAX_NAME_LENGTH = 64
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class BadSnapshotName(ValueError):
    """A snapshot name that cannot be used; the message says which characters are allowed."""


def check_name(name: str) -> str:
    """``name`` if it can name a snapshot: letters, digits, ``.``, ``_``, ``-``, at most MAX_NAME_LENGTH, not "current"."""
    if name.lower() == CURRENT:
        raise BadSnapshotName(f"{name!r} is the snapshot the Panel reads; a what-if build takes another name")
    if not 1 <= len(name) <= MAX_NAME_LENGTH or not _NAME.match(name):
        raise BadSnapshotName(
            f"{name!r} cannot name a snapshot: use 1 to {MAX_NAME_LENGTH} letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def derived_name(instants: Instants) -> str:
    """The name of a what-if build that was given none: its two instants."""
    as_of = instants.as_of.astimezone(timezone.utc)
    return f"on-{instants.on.isoformat()}-asof-{as_of:%Y-%m-%dT%H%M%SZ}"


def snapshot_of_build(on: str | None, as_of: str | None, name: str | None, now: datetime | None = None) -> str | None:
    """Where a `planning build` publishes: None for the current snapshot, else the named snapshot's name.

    Current is the build at (today, now): no ``as_of``, and no ``on`` or today's (UTC) date. A
    ``name`` always names a snapshot; any other (``on``, ``as_of``) gets its derived name.
    """
    if name is not None:
        return check_name(name)
    now = now or datetime.now(timezone.utc)
    if as_of is None and (on is None or date.fromisoformat(on) == now.date()):
        return None
    return derived_name(Instants.parse(on, as_of, now))
