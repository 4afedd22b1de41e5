"""Who sent a message, as the worker decides it (no broker needed): the topic's owner, the collector's
header on collector topics only, and the registry of now for the grants."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from events.routing import SENDER_HEADER
from events.senders.registry import SenderRegistry
from events.storage.store import EventStore
from pipelines.streaming.worker import BatchResult, Message, StoreSink, sender_of
from tests.support.events import make_event

RECEIVED = datetime(2026, 11, 20, 9, tzinfo=timezone.utc)
AUDIT = "cdrp.audit_submitted"
HARROW, BARNET = "E09000015", "E09000003"


def write(root: Path, messages: list[Message]) -> BatchResult:
    sink = StoreSink(root)
    try:
        return sink.executor.submit(sink.write, messages, RECEIVED).result()
    finally:
        sink.close()


def audit(borough: str) -> bytes:
    return json.dumps(make_event(AUDIT, {"borough": borough})).encode()


def test_the_sender_is_the_topics_owner_and_a_header_counts_only_on_collector_topics() -> None:
    forged = [(SENDER_HEADER, b"cdrp-barnet")]
    assert sender_of("planning.from.cdrp-harrow.partnership", forged, "planning") == "cdrp-harrow"
    assert sender_of("planning.collector.partnership", forged, "planning") == "cdrp-barnet"
    assert sender_of("planning.collector.partnership", {SENDER_HEADER: b"cdrp-barnet"}, "planning") == "cdrp-barnet"
    assert sender_of("planning.collector.partnership", [], "planning") is None
    assert sender_of("planning.partnership", forged, "planning") is None  # nobody's: the header is not believed
    assert sender_of("planning.from.cdrp-harrow.nonsense", forged, "planning") is None


def test_unknown_revoked_and_outside_the_grant_are_dead_lettered_with_the_sender(tmp_path: Path) -> None:
    with SenderRegistry(tmp_path) as registry:
        registry.add("cdrp-harrow", [AUDIT], [HARROW])
        registry.add("cdrp-brent", [AUDIT], None)
        registry.revoke("cdrp-brent")
    own = "planning.from.cdrp-harrow.partnership"
    result = write(tmp_path, [
        Message(own, 0, 0, audit(HARROW), "cdrp-harrow"),
        Message(own, 0, 1, audit(BARNET), "cdrp-harrow"),
        Message("planning.from.cdrp-brent.partnership", 0, 0, audit(HARROW), "cdrp-brent"),
        Message("planning.from.nobody.partnership", 0, 0, audit(HARROW), "nobody"),
        Message("planning.collector.partnership", 0, 0, audit(HARROW), None),
    ])
    assert result.accepted == 1
    reasons = {letter.origin: (letter.sender, letter.reasons[0]) for letter in result.dead}
    assert reasons == {
        f"{own}/0@1": ("cdrp-harrow", f"sender cdrp-harrow may not send {AUDIT} for {BARNET}"),
        "planning.from.cdrp-brent.partnership/0@0": (
            "cdrp-brent", "sender cdrp-brent is revoked: ask the data team to register a new sender"),
        "planning.from.nobody.partnership/0@0": (
            "nobody", "sender nobody is not registered: ask the data team to add it (`planning senders add nobody …`)"),
        "planning.collector.partnership/0@0": (
            None, f"{SENDER_HEADER}: a message on the collector topic planning.collector.partnership without the "
                  "header naming its sender; only `planning serve` may write there"),
    }
    forwarded = json.loads(result.dead[-1].to_json("2026-11-20T09:00:00Z"))
    assert forwarded["sender"] == "unknown"
    with EventStore(tmp_path) as store:
        assert store.counts_by_sender() == {
            "events": {"cdrp-harrow": 1},
            "dead_letters": {"cdrp-harrow": 1, "cdrp-brent": 1, "nobody": 1, "unknown": 1}}
