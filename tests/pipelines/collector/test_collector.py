"""`POST /v1/events` over real HTTP (uvicorn on a free port) on the embedded default.

Every test reads the store afterwards: what the answer counts as accepted is
stored with the sender's name, every rejected line is a dead letter with the
sender's name and the reasons the answer gave, and a refused request stored nothing.
"""

from __future__ import annotations

import asyncio
import errno
import http.client
import json
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from events.home import PlanningHome
from events.senders.registry import SenderRegistry
from events.storage.store import EventStore
from pipelines.collector.intake import StoreIntake
from pipelines.collector.limits import MAX_BODY_BYTES, Limits
from tests.support.collector import add_sender, ndjson, running_collector
from tests.support.events import make_event

HARROW, HACKNEY = "E09000015", "E09000012"
AUDIT = "cdrp.audit_submitted"


def audit(borough: str = HARROW, **envelope: object) -> dict:
    return make_event(AUDIT, {"borough": borough}, **envelope)


def stored(home: PlanningHome) -> tuple[list[dict], list[dict]]:
    """(records, dead letters) of the store, read beside the collector (readers need no lock)."""
    with EventStore(home.store) as store:
        return list(store.records()), store.dead_letters()


@pytest.fixture
def harrow(home: PlanningHome) -> str:
    return add_sender(home, "cdrp-harrow", [AUDIT, "group.meeting_held", "event.retracted"], [HARROW])


# --- who may send ---------------------------------------------------------------------------------


def test_no_secret_or_an_unknown_one_is_401_and_stores_nothing(home: PlanningHome, harrow: str) -> None:
    with running_collector(home) as collector:
        missing = collector.post(ndjson(audit()), secret=None)
        wrong = collector.post(ndjson(audit()), secret="pps_" + "A" * 43)
        basic = collector.post(ndjson(audit()), secret=None, headers={"Authorization": f"Basic {harrow}"})
    for reply in (missing, wrong, basic):
        assert reply.status == 401
        assert reply.header("WWW-Authenticate").startswith("Bearer")
        assert reply.body["error"] == "unauthorized" and "Authorization: Bearer" in reply.body["message"]
    assert 'error="invalid_token"' in wrong.header("WWW-Authenticate")
    assert stored(home) == ([], [])


def test_a_revoked_sender_is_403_and_a_rotated_secret_401(home: PlanningHome, harrow: str) -> None:
    other = add_sender(home, "cdrp-hackney", [AUDIT], [HACKNEY])
    with running_collector(home) as collector:
        with SenderRegistry.of(home) as registry:  # changed while the collector runs: it reads the registry afresh
            registry.revoke("cdrp-harrow")
            rotated = registry.rotate("cdrp-hackney")
        revoked = collector.post(ndjson(audit()), secret=harrow)
        old = collector.post(ndjson(audit(HACKNEY)), secret=other)
        new = collector.post(ndjson(audit(HACKNEY)), secret=rotated)
    assert revoked.status == 403
    assert revoked.body["message"] == "sender cdrp-harrow is revoked: ask the data team to register a new sender"
    assert old.status == 401 and new.status == 200
    records, dead = stored(home)
    assert [r["sender"] for r in records] == ["cdrp-hackney"] and dead == []


# --- refused requests -----------------------------------------------------------------------------


def _raw_exchange(port: int, head: bytes, body_chunks: list[bytes] = ()) -> tuple[int, bytes]:
    """Send ``head`` and then ``body_chunks`` over a socket, never the end of the body, and read the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(head)
        for chunk in body_chunks:
            sock.sendall(chunk)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, response.read()


def test_a_body_over_the_limit_is_413_before_it_is_read(home: PlanningHome, harrow: str) -> None:
    head = (f"POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {harrow}\r\n"
            f"Content-Type: application/x-ndjson\r\nContent-Length: {MAX_BODY_BYTES + 1}\r\n\r\n").encode()
    with running_collector(home) as collector:
        status, body = _raw_exchange(collector.port, head)  # no byte of the body is ever sent
    assert status == 413
    assert f"larger than {MAX_BODY_BYTES:,} bytes" in json.loads(body)["message"]
    assert stored(home) == ([], [])


def test_a_chunked_body_over_the_limit_is_413_as_it_streams(home: PlanningHome, harrow: str) -> None:
    limits = Limits(max_body_bytes=50_000, max_events=200, burst=200)
    head = (f"POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {harrow}\r\n"
            "Content-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n").encode()
    lines = ndjson(*[audit() for _ in range(120)])  # valid events, more bytes than the limit
    assert len(lines) > limits.max_body_bytes
    chunks = [b"%x\r\n%s\r\n" % (len(part), part) for part in (lines[i:i + 10_000] for i in range(0, len(lines), 10_000))]
    with running_collector(home, limits) as collector:
        status, body = _raw_exchange(collector.port, head, chunks)  # no end of the body: refused before it
    assert status == 413 and "larger than 50,000 bytes" in json.loads(body)["message"]
    assert stored(home) == ([], [])


def test_a_body_that_does_not_arrive_in_time_is_408(home: PlanningHome, harrow: str) -> None:
    limits = Limits(body_seconds=0.5)
    head = (f"POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {harrow}\r\n"
            "Content-Type: application/x-ndjson\r\nContent-Length: 1000\r\n\r\n").encode()
    with running_collector(home, limits) as collector:
        status, body = _raw_exchange(collector.port, head, [ndjson(audit())[:100]])  # the rest never comes
        after = collector.post(ndjson(audit()), harrow)  # the slot it held is free again
    assert status == 408 and "not received whole within 0.5 s" in json.loads(body)["message"]
    assert after.status == 200
    assert len(stored(home)[0]) == 1


def test_more_events_than_a_request_may_hold_is_413(home: PlanningHome, harrow: str) -> None:
    limits = Limits(max_events=5, burst=5)
    with running_collector(home, limits) as collector:
        lines = collector.post(ndjson(*[audit() for _ in range(6)]), harrow)
        array = collector.post(json.dumps([audit() for _ in range(6)]).encode(), harrow, "application/json")
        five = collector.post(ndjson(*[audit() for _ in range(5)]), harrow)
    assert lines.status == array.status == 413
    assert "more than 5 events" in lines.body["message"]
    assert five.status == 200
    assert len(stored(home)[0]) == 5


def test_over_the_rate_is_429_with_retry_after_and_stores_nothing(home: PlanningHome, harrow: str) -> None:
    other = add_sender(home, "cdrp-hackney", [AUDIT], [HACKNEY])
    limits = Limits(max_events=5, rate=2.0, burst=5)
    with running_collector(home, limits) as collector:
        first = collector.post(ndjson(*[audit() for _ in range(4)]), harrow)
        refused = collector.post(ndjson(audit(), audit()), harrow)  # 1 token left, 2 needed
        elsewhere = collector.post(ndjson(audit(HACKNEY)), other)  # each sender has its own bucket
        collector.monotonic.now += 0.5  # one more token
        again = collector.post(ndjson(audit(), audit()), harrow)
    assert first.status == 200 and elsewhere.status == 200 and again.status == 200
    assert refused.status == 429
    assert refused.header("Retry-After") == "1"
    assert "2 events per second" in refused.body["message"] and "nothing was stored" in refused.body["message"]
    records, _ = stored(home)
    assert len(records) == 4 + 1 + 2


def test_other_content_types_are_415(home: PlanningHome, harrow: str) -> None:
    with running_collector(home) as collector:
        replies = [collector.post(ndjson(audit()), harrow, content_type) for content_type in
                   ("text/plain", None, "application/x-www-form-urlencoded", "application/x-ndjson; charset=latin-1")]
        fine = collector.post(ndjson(audit()), harrow, "Application/X-NDJSON; charset=UTF-8")
    assert [r.status for r in replies] == [415, 415, 415, 415]
    assert "application/x-ndjson" in replies[0].body["message"]
    assert fine.status == 200
    assert len(stored(home)[0]) == 1


def test_a_broken_json_array_or_an_empty_body_is_400(home: PlanningHome, harrow: str) -> None:
    with running_collector(home) as collector:
        broken = collector.post(b'[{"event_id": 1}, {"oops"', harrow, "application/json")
        not_array = collector.post(json.dumps(audit()).encode(), harrow, "application/json")
        empty = collector.post(b"", harrow)
    assert broken.status == not_array.status == empty.status == 400
    assert "not a well-formed JSON array" in broken.body["message"]
    assert "holds no events" in empty.body["message"]
    assert stored(home) == ([], [])


# --- what is stored -------------------------------------------------------------------------------


def test_a_mixed_batch_keeps_every_valid_line(home: PlanningHome, harrow: str) -> None:
    good = [audit(), make_event("group.meeting_held", {"borough": HARROW}), audit()]
    bad_field, outside = audit(cycle="2027-29"), audit(HACKNEY)
    lines = ndjson(good[0], b'{"event_id": "not json', bad_field, good[1], outside, b"", good[2])
    with running_collector(home) as collector:
        reply = collector.post(lines, harrow, headers={"X-Request-Id": "batch-7"})
    assert reply.status == 207 and reply.header("X-Request-Id") == "batch-7"
    answer = reply.body
    assert (answer["received"], answer["accepted"], answer["duplicates"], answer["rejected"]) == (7, 3, 0, 4)
    assert answer["sender"] == "cdrp-harrow" and answer["request_id"] == "batch-7"
    assert [(r["line"], r["event_id"]) for r in answer["rejections"]] == [
        (2, None), (3, bad_field["event_id"]), (5, outside["event_id"]), (6, None)]
    assert answer["rejections"][2]["reasons"] == [f"sender cdrp-harrow may not send {AUDIT} for {HACKNEY}"]
    assert any(reason.startswith("cycle:") for reason in answer["rejections"][1]["reasons"])

    records, dead = stored(home)
    assert [r["event_id"] for r in records] == [e["event_id"] for e in good]
    assert {r["sender"] for r in records} == {"cdrp-harrow"}
    assert [(d["origin"], d["reasons"], d["sender"]) for d in dead] == [
        (f"http:cdrp-harrow/batch-7#{r['line']}", r["reasons"], "cdrp-harrow") for r in answer["rejections"]]


def test_a_json_array_is_judged_item_by_item(home: PlanningHome, harrow: str) -> None:
    good, outside = audit(), audit(HACKNEY)
    body = f'[ {json.dumps(good)},\n  {json.dumps(outside)} , 42 ]'.encode()
    with running_collector(home) as collector:
        reply = collector.post(body, harrow, "application/json")
    assert reply.status == 207
    assert [(r["line"], r["event_id"]) for r in reply.body["rejections"]] == [(2, outside["event_id"]), (3, None)]
    assert reply.body["rejections"][1]["reasons"] == ["line: expected a JSON object, got a number"]
    records, dead = stored(home)
    assert [r["event_id"] for r in records] == [good["event_id"]]
    assert [d["raw"] for d in dead] == [json.dumps(outside).encode(), b"42"]  # each item's bytes, as sent


def test_a_borough_outside_the_grant_is_dead_lettered_with_the_reason(home: PlanningHome, harrow: str) -> None:
    event = audit(HACKNEY)
    with running_collector(home) as collector:
        reply = collector.post(ndjson(event), harrow)
    reason = f"sender cdrp-harrow may not send {AUDIT} for {HACKNEY}"
    assert reply.status == 422
    assert reply.body["rejections"] == [{"line": 1, "event_id": event["event_id"], "reasons": [reason]}]
    records, dead = stored(home)
    assert records == []
    assert [(d["reasons"], d["sender"], json.loads(d["raw"])) for d in dead] == [([reason], "cdrp-harrow", event)]


def test_an_event_type_outside_the_grant_is_dead_lettered(home: PlanningHome, harrow: str) -> None:
    decision = make_event("priorities.adopted")
    with running_collector(home) as collector:
        reply = collector.post(ndjson(decision), harrow)
    assert reply.status == 422
    assert reply.body["rejections"][0]["reasons"][0].startswith("sender cdrp-harrow may not send priorities.adopted")
    assert stored(home)[0] == []


def test_a_retraction_of_another_senders_event_is_dead_lettered(home: PlanningHome, harrow: str) -> None:
    hackney = add_sender(home, "cdrp-hackney", [AUDIT, "event.retracted"], [HACKNEY])
    theirs, mine = audit(HACKNEY), audit()
    retract_theirs = make_event("event.retracted", {"target_event_id": theirs["event_id"], "reason": "not ours"})
    retract_mine = make_event("event.retracted", {"target_event_id": mine["event_id"], "reason": "sent twice"})
    with running_collector(home) as collector:
        assert collector.post(ndjson(theirs), hackney).status == 200
        assert collector.post(ndjson(mine), harrow).status == 200
        reply = collector.post(ndjson(retract_theirs, retract_mine), harrow)
    assert reply.status == 207 and reply.body["accepted"] == 1
    [rejection] = reply.body["rejections"]
    assert rejection["line"] == 1 and rejection["event_id"] == retract_theirs["event_id"]
    assert rejection["reasons"][0].startswith("payload.target_event_id:")
    assert "cdrp-hackney" in rejection["reasons"][0]
    records, dead = stored(home)
    assert [(r["event_id"], r["sender"]) for r in records] == [
        (theirs["event_id"], "cdrp-hackney"), (mine["event_id"], "cdrp-harrow"), (retract_mine["event_id"], "cdrp-harrow")]
    assert [(d["reasons"], d["sender"]) for d in dead] == [(rejection["reasons"], "cdrp-harrow")]


def test_a_resend_is_a_duplicate_stored_once(home: PlanningHome, harrow: str) -> None:
    events = [audit(), audit()]
    batch = ndjson(*events, b"not an event")
    with running_collector(home) as collector:
        first = collector.post(batch, harrow, headers={"X-Request-Id": "r1"})
        again = collector.post(batch, harrow, headers={"X-Request-Id": "r1"})  # the same request, its answer lost
        reordered = collector.post(json.dumps(events[::-1]).encode(), harrow, "application/json")
    assert (first.body["accepted"], first.body["duplicates"], first.body["rejected"]) == (2, 0, 1)
    assert (again.body["accepted"], again.body["duplicates"], again.body["rejected"]) == (0, 2, 1)
    assert again.body["rejections"] == first.body["rejections"]
    assert (reordered.status, reordered.body["duplicates"]) == (200, 2)
    records, dead = stored(home)
    assert sorted(r["event_id"] for r in records) == sorted(e["event_id"] for e in events)
    assert len(dead) == 1  # the broken line of the resent request is known as the dead letter stored


def test_the_same_event_id_with_another_body_is_dead_lettered(home: PlanningHome, harrow: str) -> None:
    original = audit()
    changed = {**original, "payload": {**original["payload"], "audit_ref": "changed"}}
    with running_collector(home) as collector:
        collector.post(ndjson(original), harrow)
        reply = collector.post(ndjson(changed), harrow)
    assert reply.status == 422
    assert "already stored with a different body" in reply.body["rejections"][0]["reasons"][0]
    records, dead = stored(home)
    assert [r["payload"]["audit_ref"] for r in records] == [original["payload"]["audit_ref"]]
    assert [d["sender"] for d in dead] == ["cdrp-harrow"]


def test_a_synthetic_event_into_a_store_of_real_ones_is_a_dead_letter_not_a_refusal(home: PlanningHome, harrow: str) -> None:
    real, synthetic = audit(), audit(synthetic=True)
    with running_collector(home) as collector:
        reply = collector.post(ndjson(real, synthetic), harrow)
    assert reply.status == 207
    assert reply.body["rejections"][0]["line"] == 2
    assert reply.body["rejections"][0]["reasons"][0].startswith("synthetic:")
    assert [r["event_id"] for r in stored(home)[0]] == [real["event_id"]]


def test_a_store_that_cannot_be_written_is_503_and_stores_nothing(
    home: PlanningHome, harrow: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full_disk(self: EventStore, *args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    with running_collector(home) as collector:
        with monkeypatch.context() as patch:
            patch.setattr(EventStore, "append", full_disk)
            reply = collector.post(ndjson(audit()), harrow)
        after = collector.post(ndjson(audit()), harrow)
    assert reply.status == 503 and reply.header("Retry-After") == "60"
    assert "the disk is full" in reply.body["message"] and "nothing of this request was stored" in reply.body["message"]
    assert after.status == 200
    assert len(stored(home)[0]) == 1


class HeldIntake:
    """The store's intake, holding every batch until ``release`` is set; ``entered`` counts the batches held."""

    def __init__(self, home: PlanningHome) -> None:
        self.store = StoreIntake(home)
        self.mode = self.store.mode
        self.entered = threading.Semaphore(0)
        self.release = threading.Event()

    async def identify(self, secret: str):
        return await self.store.identify(secret)

    async def take(self, batch, received_at):
        self.entered.release()
        await asyncio.to_thread(self.release.wait)
        return await self.store.take(batch, received_at)

    def close(self) -> None:
        self.store.close()


def test_more_requests_at_once_than_the_limit_are_503_with_retry_after(home: PlanningHome, harrow: str) -> None:
    intake = HeldIntake(home)
    with running_collector(home, Limits(bodies_at_once=2), intake) as collector:
        with ThreadPoolExecutor(max_workers=2) as pool:
            held = [pool.submit(collector.post, ndjson(audit()), harrow) for _ in range(2)]
            for _ in held:
                assert intake.entered.acquire(timeout=60), "a request never reached the store"
            busy = collector.post(ndjson(audit()), harrow)
            health = collector.get("/v1/health")
            intake.release.set()
            answered = [future.result() for future in held]
        after = collector.post(ndjson(audit()), harrow)
    assert busy.status == 503 and busy.header("Retry-After") == "1"
    assert busy.body["error"] == "unavailable" and "already taking 2 requests at once" in busy.body["message"]
    assert health.status == 200, "only POST /v1/events is bounded"
    assert [reply.status for reply in answered] == [200, 200] and after.status == 200
    assert len(stored(home)[0]) == 3


def test_health_needs_no_secret(home: PlanningHome) -> None:
    with running_collector(home) as collector:
        reply = collector.get("/v1/health")
    assert (reply.status, reply.body) == (200, {"status": "ok", "mode": "store"})
