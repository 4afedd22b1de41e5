"""Upcasting: events written against an older schema_version are read as the current one.

The store keeps every event exactly as it was accepted; upcasting happens on
the way in to validation and on every read (``events.storage.conversion.to_event``,
which the store and the builds' staging share), never by rewriting the store.
An upcaster takes a body at version N and returns it at version N + 1. It
sees the whole body, personal fields included, except that an erased
respondent's stored events come back without them: it must accept that.

Version 1 is the first published version of the contract, so there are no
upcasters yet. Add one here, beside a test, when version 2 is published:

    UPCASTERS[("survey.response_recorded", 1)] = _survey_v1_to_v2
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Body = dict[str, Any]
Upcaster = Callable[[Body], Body]

# (event_type, from_version) -> function returning the body at from_version + 1
UPCASTERS: dict[tuple[str, int], Upcaster] = {}


def upcast(body: Body) -> Body:
    """Apply upcasters until no further one applies; returns ``body`` itself when none did."""
    version = body.get("schema_version")
    while isinstance(version, int) and (body.get("event_type"), version) in UPCASTERS:
        body = UPCASTERS[(body["event_type"], version)](body)
        version = body["schema_version"] = version + 1
    return body
