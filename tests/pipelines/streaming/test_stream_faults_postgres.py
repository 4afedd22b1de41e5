"""Fault test of several workers on the PostgreSQL store: three `planning worker` processes in one
consumer group share the sender's topics (3 partitions each) and append to one store concurrently.

C: 50,000 events (1% invalid) plus 1,000 byte-identical re-sends, streamed while one worker is
   SIGKILLed twice (and restarted each time) and PostgreSQL is restarted once, cutting every
   worker's connection mid-stream.

The proof is fault A's (``prove_exactly_once``): every valid event stored exactly once, every
invalid one dead-lettered exactly once, every offset committed at the end. On top: the positions
run without a gap from 1 to the high-water mark (`planning verify`'s check), and the sensor, evaluated
along the way as the daemon would, has requested a build at the last position: a build covering
every event, none skipped by an append that committed late.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import time
from pathlib import Path

import dagster as dg
import pytest

from events.storage.backends import open_store
from events.storage.postgres.integrity import verify_postgres
from pipelines.cli.main import main
from pipelines.exit_codes import ExitCode
from pipelines.orchestration.definitions import defs
from pipelines.orchestration.defs.resources import PlanningHomeResource
from pipelines.orchestration.defs.sensors import MARK_TAG, event_store_sensor
from pipelines.orchestration.instance import use_planning_dagster_home
from pipelines.streaming.broker import Broker
from events.home import PlanningHome
from tests.pipelines.streaming.test_stream_faults import Streamer, prove_exactly_once
from tests.support.home import use_home
from tests.support.kafka import register_sender, sender_login
from tests.support.postgres import Cluster
from tests.support.stream import (
    Corpus,
    WorkerProcess,
    build_corpus,
    committed_lag,
    new_prefix,
    prepare_topics,
    store_counts,
    wait_for,
)

pytestmark = pytest.mark.kafka

WORKERS = 3


class Sensor:
    """``event_store_sensor`` evaluated tick after tick, its cursor carried over, as the daemon runs it."""

    def __init__(self, home: PlanningHome) -> None:
        use_planning_dagster_home(home)
        self.home, self.instance = home, dg.DagsterInstance.get()
        self.cursor: str | None = None
        self.requested_marks: list[int] = []

    def tick(self) -> int:
        """One evaluation; the mark it read."""
        resources = {"planning": PlanningHomeResource(root=str(self.home.root))}
        with dg.build_sensor_context(instance_ref=self.instance.get_ref(), cursor=self.cursor, definitions=defs,
                                     resources=resources) as context:
            data = event_store_sensor.evaluate_tick(context)
        self.cursor = data.cursor
        self.requested_marks += [int(r.tags[MARK_TAG]) for r in data.run_requests]
        return json.loads(data.cursor)["mark"]


def spread(corpus: Corpus) -> Corpus:
    """The corpus keyed by each message's bytes, not by its cycle and borough (one key per event type in
    the corpus, so one partition per topic): every partition, so every worker, gets its share, and a
    re-send still goes where its original went."""
    corpus.messages = [(topic, hashlib.sha256(value).hexdigest()[:16].encode(), value)
                       for topic, _, value in corpus.messages]
    return corpus


def test_three_workers_one_sigkilled_twice_and_postgresql_restarted(kafka_broker: Broker, postgres_cluster: Cluster,
                                                                    postgres_url: str, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    started = time.monotonic()
    home = use_home(monkeypatch, tmp_path / "home")
    monkeypatch.setenv("PLANNING_STORE", postgres_url)  # the workers inherit it, and PLANNING_HOME
    assert main(["store", "init"]) == ExitCode.OK
    prefix = new_prefix()
    prepare_topics(kafka_broker.bootstrap, prefix)
    login = sender_login(register_sender(kafka_broker, home.root, prefix))
    corpus = spread(build_corpus(prefix, 50_000, invalid_share=0.01, resend=1_000, seed=50_001))
    rng = random.Random(2029)
    first_kill, restart_at, second_kill = sorted(rng.sample(range(5_000, 42_000), 3))
    expected = {"events": len(corpus.valid_ids), "dead_letters": len(corpus.invalid_values)}

    workers = [WorkerProcess(home.root, kafka_broker.bootstrap, prefix, batch=500, name=f"worker{n}")
               for n in range(WORKERS)]
    victim = workers[rng.randrange(WORKERS)]
    sensor = Sensor(home)
    # paced (~2,000 messages/s) so the faults come mid-stream: sent at once, the workers drained most of the
    # backlog before the restart and the ones whose share was done never appended on a cut connection
    streamer = Streamer(kafka_broker.bootstrap, login, corpus, pause=1.2)

    def stored_at_least(threshold: int) -> bool:
        for worker in workers:
            assert worker.alive(), f"{worker.name} exited ({worker.process.returncode}):\n{worker.log_text()}"
        return store_counts(home.store)["events"] >= threshold

    for worker in workers:
        worker.start()
    try:
        streamer.start()
        for threshold, fault in ((first_kill, "kill"), (restart_at, "restart"), (second_kill, "kill")):
            wait_for(lambda: stored_at_least(threshold), 240, f"{threshold:,} stored before a {fault}", interval=0.05)
            sensor.tick()
            time.sleep(rng.uniform(0, 1.0))  # a random phase against the workers' 1 s commit interval
            if fault == "kill":
                victim.kill()
                print(f"\nSIGKILL of {victim.name} at {store_counts(home.store)['events']:,} stored", end="")
                victim.start()
            else:
                at = store_counts(home.store)["events"]
                down = time.monotonic()
                postgres_cluster.restart()
                print(f"\nPostgreSQL restarted at {at:,} stored, down for {time.monotonic() - down:.1f} s", end="")
        streamer.join(timeout=240)
        assert streamer.error is None, repr(streamer.error)
        assert streamer.sent == len(corpus.messages)

        def all_stored() -> bool:
            counts = store_counts(home.store)
            assert counts["events"] <= expected["events"] and counts["dead_letters"] <= expected["dead_letters"], counts
            return stored_at_least(0) and counts == expected

        wait_for(all_stored, 300, f"{expected} in the store", interval=0.5)
        group = (home.root / "worker" / "group").read_text().strip()
        wait_for(lambda: committed_lag(kafka_broker.bootstrap, prefix, group) == 0, 60, "every offset committed")
        final_mark = sensor.tick()
        for worker in workers:
            assert worker.stop() == 0, worker.log_text()
    finally:
        for worker in workers:
            worker.__exit__()

    numbers = prove_exactly_once(home.store, corpus, "fault C (3 workers, 2 x SIGKILL, PostgreSQL restart)")
    with open_store(home.store) as store:
        found = verify_postgres(store)
        mark = store.high_water_mark()
    assert found.gaps == [] and found.intact, (found.gaps, found.wrong_records[:3], found.bad_keys[:3])
    assert mark == found.events == numbers["distinct stored event_ids"]
    # the sensor asked for builds at the last position, so they read every event
    assert final_mark == mark and max(sensor.requested_marks) == mark, sensor.requested_marks
    assert sensor.requested_marks == sorted(sensor.requested_marks)
    logs = "\n".join(worker.log_text() for worker in workers)
    assert "the event store cannot be reached" in logs  # the restart was felt, and ridden out
    for worker in workers:  # each appended its share, concurrently: none sat idle behind a lock
        stored = [int(n.replace(",", "")) for n in re.findall(r"messages: stored ([\d,]+),", worker.log_text())]
        assert stored and max(stored) > 0, f"{worker.name} stored nothing:\n{worker.log_text()[-2000:]}"
    assert victim.starts == 3 and all(w.starts == 1 for w in workers if w is not victim)
    print(f"fault C took {time.monotonic() - started:.1f} s")
