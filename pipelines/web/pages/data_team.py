"""The data team's pages: dead letters with their reasons, the published builds with links into
Dagster's UI, and the senders.

Dead letters are read from the store as `planning deadletters` reads them, and shown as it shows
them: a line an erasure redacted says so and nothing else of it, and only the first
``RAW_SHOWN`` characters of a raw line are shown, with every control character escaped. Builds
are those the published pointer names (the current snapshot, each named one, the dead letters),
each a Dagster run whose page is at ``$PLANNING_DAGSTER_URL/runs/<run id>`` when that variable says
where `planning ui` serves (docs/decisions.md, "The data team's pages"). Senders come from their
registry: name, grants and state, never a secret or its digest.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from events.senders.registry import SenderRegistry
from events.storage.store import UNKNOWN_SENDER, EventStore
from projections.packs.labels import borough_name
from projections.reading.cells import one_line
from projections.reading.named import CURRENT
from projections.reading.snapshots import named_snapshots, published
from pipelines.web.audience import Page
from pipelines.web.pages.snapshot import Refused, home_of
from pipelines.web.pages.view import answering, page

RAW_SHOWN = 120  # characters of a rejected line, as `planning deadletters` prints
MOST_DEAD_LETTERS = 10_000
DAGSTER_URL = "PLANNING_DAGSTER_URL"
REDACTED = "(redacted by an erasure)"


def dead_letters(request: Request) -> Response:
    limit_text = request.query_params.get("limit") or "50"
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= MOST_DEAD_LETTERS:
        raise Refused(400, f"limit: a whole number from 1 to {MOST_DEAD_LETTERS:,}")
    sender = request.query_params.get("sender") or None
    store = home_of(request).store
    letters: list[dict[str, Any]] = []
    synthetic = False
    if store.exists():
        with EventStore(store) as reader:
            letters, synthetic = reader.dead_letters(sender=sender), reader.synthetic
    shown = [{
        "received_at": letter["received_at"], "origin": one_line(letter["origin"]),
        "sender": one_line(letter["sender"] or UNKNOWN_SENDER), "reasons": [one_line(r) for r in letter["reasons"]],
        "raw": REDACTED if letter["raw"] is None else one_line(letter["raw"][:RAW_SHOWN].decode("utf-8", "replace")),
        "redacted": letter["raw"] is None, "replayed_position": letter["replayed_position"],
        "replayed_at": letter["replayed_at"],
    } for letter in reversed(letters[-int(limit_text):])]
    return page(request, "data_team/dead_letters.html", {
        "letters": shown, "total": len(letters), "sender": sender, "limit": int(limit_text), "synthetic": synthetic})


def dagster_url() -> str | None:
    url = os.environ.get(DAGSTER_URL, "").strip().rstrip("/")
    return url or None


def builds_of(projections: Path) -> list[dict[str, Any]]:
    """Every build the published pointer names: snapshot, cycle (or dead letters), run id and its instants."""
    pointer = published(projections)
    rows = []
    for name, cycles in [(CURRENT, pointer["cycles"]), *sorted(named_snapshots(pointer).items())]:
        for cycle, entry in sorted(cycles.items()):
            rows.append({"snapshot": name, "what": f"cycle {cycle}", **_entry(entry)})
    if pointer.get("operations"):
        rows.append({"snapshot": CURRENT, "what": "dead letters", **_entry(pointer["operations"])})
    return rows


def _entry(entry: dict[str, Any]) -> dict[str, Any]:
    return {"run_id": Path(entry["file"]).parent.name, "on": entry.get("on_date"), "as_of": entry.get("as_of"),
            "built_at": entry.get("built_at"), "store_position": entry.get("store_position")}


def builds(request: Request) -> Response:
    return page(request, "data_team/builds.html", {
        "builds": builds_of(home_of(request).projections), "dagster": dagster_url(), "variable": DAGSTER_URL,
        "synthetic": store_is_synthetic(home_of(request).store)})


def senders(request: Request) -> Response:
    with SenderRegistry.of(home_of(request)) as registry:
        listed = [{
            "name": s.name, "event_types": sorted(s.event_types),
            "boroughs": "every borough" if s.boroughs is None else ", ".join(sorted(borough_name(b) for b in s.boroughs)),
            "state": "active" if s.active else "revoked", "created_at": s.created_at, "rotated_at": s.rotated_at,
            "revoked_at": s.revoked_at,
        } for s in registry.all()]
    return page(request, "data_team/senders.html", {"senders": listed, "synthetic": store_is_synthetic(home_of(request).store)})


def store_is_synthetic(store: Path) -> bool:
    """Whether the store holds synthetic events: every data-team page says so, as the Panel's do."""
    if not store.exists():
        return False
    with EventStore(store) as reader:
        return reader.synthetic


ROUTES: list[Page] = [
    Page("/data/dead-letters", answering(dead_letters), audience="data_team", name="dead_letters"),
    Page("/data/builds", answering(builds), audience="data_team", name="builds"),
    Page("/data/senders", answering(senders), audience="data_team", name="senders"),
]
