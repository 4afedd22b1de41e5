"""File ingest: validator processes give exactly the inline path's verdicts, in file order, and a
file ingested again leaves the store as it was."""

from __future__ import annotations

import io
from datetime import datetime, timezone
from pathlib import Path

import pytest

from events.home import PlanningHome
from events.storage.store import EventStore, Received
from events.contract.validation import MAX_EVENT_BYTES, Accepted
from pipelines.cli.main import main
from pipelines.ingest.files import CHUNK_LINES, received
from tests.support.events import line, make_event, write_jsonl


def described(item: tuple[int, Received]) -> tuple:
    number, got = item
    verdict = got.verdict
    if isinstance(verdict, Accepted):
        return number, got.origin, got.raw, "accepted", verdict.event_id, verdict.body_sha256, verdict.event_type
    return number, got.origin, got.raw, "rejected", verdict.reasons


def test_validator_processes_give_the_inline_verdicts_in_file_order() -> None:
    events = [make_event("stage.signed_off"), make_event("consultation.response_received")]
    lines: list[bytes] = []
    for n in range(3 * CHUNK_LINES + 7):  # several chunks in flight, and a short last one
        kind = n % 5
        if kind == 0:
            lines.append(b"{not json")
        elif kind == 1:
            lines.append(line(make_event("consultation.response_received", {"borough": "nowhere"})))
        else:
            lines.append(line(events[n % 2]) if kind == 2 else line(make_event("survey.response_recorded")))
    lines.insert(1234, b"x" * (MAX_EVENT_BYTES + 10))  # oversized: drained, rejected with its size
    data = b"\n".join(lines) + b"\n"
    at = datetime(2026, 11, 23, tzinfo=timezone.utc)

    inline = [described(item) for item in received(io.BytesIO(data), "f.jsonl", at, processes=0)]
    pooled = [described(item) for item in received(io.BytesIO(data), "f.jsonl", at, processes=2)]

    assert pooled == inline
    assert [item[0] for item in inline] == list(range(1, len(lines) + 1))
    kinds = {item[3] for item in inline}
    assert kinds == {"accepted", "rejected"}
    assert any("larger than" in reason for item in inline if item[3] == "rejected" for reason in item[4])


def test_the_same_bad_file_ingested_twice_leaves_the_dead_letters_it_left_once(
    home: PlanningHome, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    broken = make_event("stage.signed_off", {"body": "mayor"})
    bad = write_jsonl(tmp_path / "bad.jsonl", [make_event("stage.signed_off"), b"{not json", broken, b"{not json"])

    def dead_letters() -> list[tuple[str, list[str], bytes | None]]:
        with EventStore(home.store) as store:
            return [(letter["origin"], letter["reasons"], letter["raw"]) for letter in store.dead_letters()]

    assert main(["ingest", str(bad)]) == 1
    once = dead_letters()
    assert main(["ingest", str(bad)]) == 1  # the lines are still bad, and still reported
    assert capsys.readouterr().out.splitlines()[-1] == "accepted 0  duplicate 1  rejected 3"
    assert [(origin, raw) for origin, _, raw in once] == [(f"{bad}:2", b"{not json"), (f"{bad}:3", line(broken)), (f"{bad}:4", b"{not json")]
    assert dead_letters() == once
