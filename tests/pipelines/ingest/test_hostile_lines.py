"""One bad line never costs the valid ones: a file of hostile lines between valid events stores every valid one.

Once a line with an integer of more than 4,300 digits could end an ingest with a traceback
and none of the file's valid lines stored. Here Hypothesis interleaves hostile lines (the
raw-bytes fuzzer's: arbitrary bytes and broken events) with valid events, ingests the file
through ``planning ingest``'s own path, and checks that every valid event is stored and every
line is counted; the worker's chunk validator is checked to give the same verdicts.
"""

from __future__ import annotations

import tempfile
from datetime import datetime, timezone
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events.contract.validation import Accepted, Rejected, verdict
from events.storage.store import EventStore
from pipelines.ingest.files import ingest_files
from pipelines.ingest.pool import verdicts
from tests.events.test_raw_bytes import hostile_lines
from tests.support.events import PAYLOADS, line, make_event

RECORDED_AT = datetime(2026, 12, 1, tzinfo=timezone.utc)

files = st.lists(
    st.one_of(hostile_lines().map(lambda raw: ("hostile", raw)),
              st.sampled_from(sorted(PAYLOADS)).map(lambda t: ("valid", line(make_event(t))))),
    min_size=1, max_size=30,
)


def stores_every_valid_line(lines: list[tuple[str, bytes]]) -> None:
    # a hostile line may hold a newline: then it is several lines of the file, each judged alone
    raws = [raw for _, raw in lines]
    valid_ids = {verdict(raw, RECORDED_AT).event_id for kind, raw in lines if kind == "valid"}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "hostile.jsonl"
        path.write_bytes(b"".join(raw + b"\n" for raw in raws))
        with EventStore(Path(folder) / "store", writer=True) as store:
            summary = ingest_files(store, [str(path)], recorded_at=RECORDED_AT, progress=None)
            stored = {event["event_id"] for event in store.events()}
            dead = store.dead_letters()
    file_lines = sum(raw.count(b"\n") + 1 for raw in raws)
    assert valid_ids <= stored
    assert summary.accepted + summary.duplicates + summary.rejected == file_lines
    assert 0 < len(dead) <= summary.rejected or summary.rejected == 0
    assert all(not reason.startswith("line: could not be read") for letter in dead for reason in letter["reasons"])
    checked = verdicts(raws, RECORDED_AT)  # the worker's and the pool's path
    assert [type(c) for c in checked] == [type(verdict(raw, RECORDED_AT)) for raw in raws]
    assert all(isinstance(c, (Accepted, Rejected)) for c in checked)


@settings(max_examples=40, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
@given(files)
def test_a_file_of_hostile_lines_keeps_every_valid_one_fixed_examples(lines: list[tuple[str, bytes]]) -> None:
    stores_every_valid_line(lines)


@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
@given(files)
def test_a_file_of_hostile_lines_keeps_every_valid_one_random_examples(lines: list[tuple[str, bytes]]) -> None:
    stores_every_valid_line(lines)


def test_a_huge_integer_line_between_valid_ones() -> None:
    huge = line(make_event("stage.signed_off")).replace(b'"schema_version": 1', b'"schema_version": ' + b"9" * 5000)
    stores_every_valid_line([("valid", line(make_event("stage.signed_off"))), ("hostile", huge),
                             ("valid", line(make_event("plan.published")))])
