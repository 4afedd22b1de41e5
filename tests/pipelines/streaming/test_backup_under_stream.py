"""A backup taken while the real worker streams 50,000 events through the real broker, the store's
folder deleted, `planning restore`, and the worker started again.

The sender is registered (SCRAM user, own topics, ACLs) and the corpus is sent on its topics. While
the worker writes, `planning backup DIR` runs (the CLI, as an operator types it). The worker then
finishes and is stopped; the original store's Panel figures are built at (ON, as_of), as_of being the
last ``recorded_at`` the backup holds, so they count exactly what the backup holds. The store folder is
deleted, `planning restore DIR --on ON` puts the backup back, rebuilds, publishes and retires the
worker's consumer group. The proof: every record at or below the backup's position is back with its
position and event_id; the restored Panel equals the original's at the same (on, as_of); and the
restarted worker, reading Kafka from the earliest offsets under a new group, stores what the backup
lacked, so every one of the 50,000 events is stored exactly once, and each of the 505 rejects is a
dead letter once, each recorded as from its sender; 500 byte-identical re-sends change nothing.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from events.home import PlanningHome
from events.storage.store import EventStore
from pipelines.orchestration.runs import build
from pipelines.streaming.broker import Broker
from pipelines.streaming.credentials import KafkaLogin
from projections.reading.snapshots import open_reader
from tests.pipelines.cli.test_backup_restore import figures
from tests.support.kafka import TEST_SENDER, register_sender, sender_login
from tests.support.stream import (
    REPO_ROOT,
    Corpus,
    WorkerProcess,
    build_corpus,
    new_prefix,
    prepare_topics,
    raw_producer,
    store_counts,
    wait_for,
)

pytestmark = pytest.mark.kafka

TOTAL = 50_000
ON = "2026-09-10"
BOROUGHS = (b"E09000012", b"E09000020", b"E09000008")


def varied(corpus: Corpus) -> Corpus:
    """The corpus with a respondent and a borough of its own per valid event, so the Panel's counts
    follow which events a store holds (the templates would give every response the same respondent).
    Both follow from the event_id, so a re-send stays byte-identical to its original."""
    invalid = set(corpus.invalid_values)
    messages = []
    for topic, key, value in corpus.messages:
        if value not in invalid:
            own = value.split(b'"event_id":"', 1)[1][:8]
            value = value.replace(b'"respondent_ref":"r-8812"', b'"respondent_ref":"r-' + own + b'"')
            value = value.replace(b'"borough":"E09000012"', b'"borough":"' + BOROUGHS[int(own, 16) % 3] + b'"')
        messages.append((topic, key, value))
    return Corpus(messages, corpus.valid_ids, corpus.invalid_values, corpus.resent)


class Streamer(threading.Thread):
    """Sends the corpus in chunks with a pause between them, so the worker is still writing when the
    backup runs; waits for every acknowledgement."""

    def __init__(self, bootstrap: str, login: KafkaLogin, corpus: Corpus, chunk: int = 2_500, pause: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.bootstrap, self.login, self.corpus, self.chunk, self.pause = bootstrap, login, corpus, chunk, pause
        self.error: BaseException | None = None
        self.sent = 0

    def run(self) -> None:
        try:
            producer = raw_producer(self.bootstrap, self.login)
            futures = []
            for start in range(0, len(self.corpus.messages), self.chunk):
                futures.extend(producer.send(t, value=v, key=k) for t, k, v in self.corpus.messages[start : start + self.chunk])
                time.sleep(self.pause)
            producer.flush()
            for future in futures:
                future.get(timeout=180)
            self.sent = len(futures)
            producer.close()
        except BaseException as error:  # reported by the test
            self.error = error


def planning(worker: WorkerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    """The `planning` CLI in the worker's home, as an operator runs it beside the worker."""
    env = {**worker.env(), "DAGSTER_HOME": str(PlanningHome(worker.home).dagster)}
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


def records(store: Path) -> list[tuple[int, str, str, str]]:
    """(position, event_id, recorded_at, sender) of every stored event, in position order."""
    with EventStore(store) as opened:
        return [(r["position"], r["event_id"], r["recorded_at"], r["sender"]) for r in opened.records()]


def high_water_mark(store: Path) -> int:
    with EventStore(store) as opened:
        return opened.high_water_mark()


def wait_until_stored(store: Path, worker: WorkerProcess, corpus: Corpus, timeout: float) -> None:
    expected = {"events": len(corpus.valid_ids), "dead_letters": len(corpus.invalid_values)}

    def done() -> bool:
        if not worker.alive():
            raise AssertionError(f"worker exited ({worker.process.returncode}); log:\n{worker.log_text()}")
        counts = store_counts(store)
        assert counts["events"] <= expected["events"] and counts["dead_letters"] <= expected["dead_letters"], counts
        return counts == expected

    wait_for(done, timeout, f"{expected} in the store", interval=0.25)


def test_backup_while_the_worker_streams_then_restore_and_resume(
        kafka_broker: Broker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    started = time.monotonic()
    home = PlanningHome(tmp_path / "home")
    monkeypatch.setenv("PLANNING_HOME", str(home.root))
    monkeypatch.setenv("DAGSTER_HOME", str(home.dagster))
    prefix = new_prefix()
    prepare_topics(kafka_broker.bootstrap, prefix)
    login = sender_login(register_sender(kafka_broker, home.root, prefix))
    # every 100th message breaks the contract (505 of them, dead-lettered) and 500 valid ones are sent twice
    corpus = varied(build_corpus(prefix, TOTAL + 505, invalid_share=0.01, resend=500, seed=14))
    assert len(corpus.valid_ids) == TOTAL and len(corpus.invalid_values) == 505
    target = tmp_path / "backup"

    worker = WorkerProcess(home.root, kafka_broker.bootstrap, prefix, batch=500)
    streamer = Streamer(kafka_broker.bootstrap, login, corpus)
    with worker:
        streamer.start()
        wait_for(lambda: store_counts(home.store)["events"] >= 15_000, 180, "15,000 stored before the backup",
                 interval=0.05)
        taken = planning(worker, "backup", str(target))
        assert taken.returncode == 0, taken.stderr
        assert worker.alive(), "the worker went on running while the backup was taken"
        position = int(taken.stdout.split("consistent at position ", 1)[1].split(" ", 1)[0].replace(",", ""))
        assert 15_000 <= position < TOTAL, taken.stdout
        streamer.join(timeout=240)
        assert streamer.error is None, repr(streamer.error)
        assert streamer.sent == len(corpus.messages)
        wait_until_stored(home.store, worker, corpus, 240)
        assert worker.stop() == 0, worker.log_text()
    print(f"\nbackup consistent at position {position:,} of {TOTAL:,}, "
          f"streamed and stored in {time.monotonic() - started:.1f} s", end="")

    original = records(home.store)
    assert high_water_mark(home.store) == TOTAL and len(original) == TOTAL
    held = [r for r in original if r[0] <= position]
    as_of = max(r[2] for r in held)  # the last moment the backup's events became known
    assert all(r[2] > as_of for r in original if r[0] > position), "as_of cuts the store exactly at the position"
    build(home, on=ON, as_of=as_of)
    at_backup = figures(home)
    consultations = _consultation_ids(corpus)
    responses = sum(1 for r in held if r[1] in consultations)
    assert _coverage(home) == responses > 0, "the figures count the responses the backup holds, no more"

    shutil.rmtree(home.store)
    restored = planning(worker, "restore", str(target), "--on", ON)
    assert restored.returncode == 0, restored.stderr
    assert f"position {position:,}" in restored.stdout and "the store there was missing" in restored.stdout
    assert "is retired" in restored.stdout and not (home.root / "worker" / "group").exists()
    assert "rebuilt and published 1 cycle(s): 2027-28" in restored.stdout
    assert [r[:2] for r in records(home.store)] == [r[:2] for r in held], "every event up to the position is back"
    letters_held = store_counts(home.store)["dead_letters"]
    assert 0 < letters_held < len(corpus.invalid_values)
    assert_same_figures(figures(home), at_backup)

    with WorkerProcess(home.root, kafka_broker.bootstrap, prefix, batch=500) as resumed:
        wait_until_stored(home.store, resumed, corpus, 240)
        assert resumed.stop() == 0, resumed.log_text()
    final = records(home.store)
    copies = Counter(r[1] for r in final)
    assert set(copies) == corpus.valid_ids, "no event lost"
    assert len(final) == len(copies) == TOTAL, "no event stored twice"
    assert [r[:2] for r in final[: len(held)]] == [r[:2] for r in held], "what the backup held keeps its positions"
    assert {r[3] for r in final} == {TEST_SENDER}
    with EventStore(home.store) as opened:
        letters = opened.dead_letters()
        assert opened.counts_by_sender() == {"events": {TEST_SENDER: TOTAL},
                                             "dead_letters": {TEST_SENDER: len(corpus.invalid_values)}}
    assert Counter(letter["raw"] for letter in letters) == Counter(corpus.invalid_values), "each reject once"
    print(f"; restored and resumed, {TOTAL - len(held):,} re-read from Kafka, "
          f"{time.monotonic() - started:.1f} s in all", end="")


def assert_same_figures(restored: dict[str, list[tuple]], original: dict[str, list[tuple]]) -> None:
    """The restored Panel equals the original's at the same (on, as_of); else the rows that differ, by table."""
    differing = {name: (sorted(set(rows) - set(original.get(name, []))), sorted(set(original.get(name, [])) - set(rows)))
                 for name, rows in restored.items() if rows != original.get(name)}
    assert set(restored) == set(original) and not differing, \
        "restored (only) / original (only) rows:\n" + "\n".join(f"{n}: {r} / {o}" for n, (r, o) in differing.items())


def _consultation_ids(corpus: Corpus) -> set[str]:
    return {v.split(b'"event_id":"', 1)[1].split(b'"', 1)[0].decode()
            for _, _, v in corpus.messages if b'"event_type":"consultation.response_received"' in v}


def _coverage(home: PlanningHome) -> int:
    db = open_reader(home.projections)
    return db.execute("SELECT sum(responses) FROM consultation_coverage WHERE channel = 'all'").fetchone()[0]
