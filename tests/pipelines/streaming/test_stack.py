"""`planning up` starts the local stack, the daemon's sensor builds what the worker stored, and a stop leaves nothing behind.

One real run of the command as a user runs it (a subprocess, its own
PLANNING_HOME, free ports): a real Kafka broker from pipelines.streaming.broker, the
stream worker, dagster-webserver and dagster-daemon.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import dagster as dg
import pytest

from events.emitter import Emitter, SenderCredentials
from events.home import PlanningHome
from events.senders.registry import SenderRegistry
from events.storage.store import EventStore
from pipelines.streaming.access import BrokerAccess, provision
from tests.support.events import make_event
from tests.support.kafka import free_ports
from tests.support.stream import REPO_ROOT, alive, descendants, wait_for

pytestmark = pytest.mark.kafka


def _read_until(process: subprocess.Popen, pattern: str, timeout: float, seen: list[str]) -> str:
    deadline = time.monotonic() + timeout
    os.set_blocking(process.stdout.fileno(), False)
    buffer = ""
    while time.monotonic() < deadline:
        chunk = process.stdout.read()
        if chunk:
            buffer += chunk.decode()
            while "\n" in buffer:
                line, buffer = buffer.split("\n", 1)
                seen.append(line)
                if re.search(pattern, line):
                    return line
        elif process.poll() is not None:
            raise AssertionError(f"planning up exited {process.returncode}:\n" + "\n".join(seen))
        else:
            time.sleep(0.2)
    raise AssertionError(f"no line matching {pattern!r} in {timeout:.0f} s:\n" + "\n".join(seen))


def test_planning_up_runs_the_stack_builds_on_new_events_and_stops_cleanly(tmp_path: Path) -> None:
    started = time.monotonic()
    home = tmp_path / "planning-home"
    kafka_port, controller_port, web_port, collector_port = free_ports(4)
    env = {**os.environ, "PLANNING_HOME": str(home), "PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1"}
    env.pop("DAGSTER_HOME", None)
    env.pop("PLANNING_KAFKA_CREDENTIALS", None)  # the stack's broker is the home's, with passwords of its own
    up = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "up", "--kafka-port", str(kafka_port),
         "--controller-port", str(controller_port), "--port", str(web_port), "--collector-port", str(collector_port),
         "--timeout", "60"],
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    seen: list[str] = []
    try:
        _read_until(up, r"^ready in", 75, seen)
        ready = time.monotonic()
        pids = {m.group(1): int(m.group(2)) for line in seen if (m := re.match(r"\s+(\S+)\s.*\(pid (\d+)", line))}
        assert set(pids) == {"kafka", "worker", "collector", "dagster-webserver", "dagster-daemon"}, seen
        for name in ("worker.log", "collector.log", "dagster-webserver.log", "dagster-daemon.log"):
            assert (home / "logs" / name).is_file()

        with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/server_info", timeout=5) as response:
            assert response.status == 200 and "dagster_webserver_version" in json.loads(response.read())
        assert alive(pids["dagster-daemon"]) and alive(pids["worker"])

        # A sender added while the stack runs (as `planning senders add` does): its user, topics and ACLs.
        with SenderRegistry(home / "store") as registry:
            secret = registry.add("town-hall", ["cycle.opened", "consultation.response_received"], None)
            sender = registry.get("town-hall")
        access = BrokerAccess.of_home(PlanningHome(home))
        assert access is not None and access.bootstrap == f"127.0.0.1:{kafka_port}"
        provision(access, sender, secret)

        # One event through Kafka, one through the collector, which hands it to Kafka as the collector: the
        # worker stores both as the sender's, the sensor sees the mark move and the daemon builds.
        with Emitter(f"127.0.0.1:{kafka_port}", credentials=SenderCredentials("town-hall", secret)) as emitter:
            emitter.emit(make_event("cycle.opened", {"timetable": []}))
        posted = urllib.request.Request(
            f"http://127.0.0.1:{collector_port}/v1/events", data=json.dumps(make_event("consultation.response_received")).encode(),
            headers={"Authorization": f"Bearer {secret}", "Content-Type": "application/x-ndjson"}, method="POST",
        )
        with urllib.request.urlopen(posted, timeout=10) as response:
            assert response.status == 200 and json.loads(response.read())["accepted"] == 1
        published = home / "projections" / "published.json"

        def built_upto() -> int | None:
            cycle = json.loads(published.read_text())["cycles"].get("2027-28") if published.exists() else None
            return cycle.get("store_position") if cycle else None

        # the sensor ticks every 5 s, so it may see the first event alone: then a second build reads both
        wait_for(lambda: built_upto() == 2, 60, "a build of 2027-28 that read both events to publish", interval=0.5)
        built = time.monotonic()
        with EventStore(home / "store") as store:
            assert store.counts_by_sender()["events"] == {"town-hall": 2}
        # ... and the Panel reads the row through `planning query`, as a member would.
        query = subprocess.run(
            [sys.executable, "-m", "pipelines.cli", "query", "consultation_coverage", "--cycle", "2027-28", "--format", "json"],
            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60,
        )
        assert query.returncode == 0, query.stderr
        rows = {(r["borough"], r["channel"]): r for r in json.loads(query.stdout)}
        assert rows[("E09000012", "all")]["responses"] == 1 and rows[("E09000012", "online_survey")]["respondents"] == 1

        # A tick that came while that build ran (before it published) requests one more build behind it: let every
        # run end before the stop, and stay ended across a tick (the sensor ticks every 5 s)
        def runs_ended() -> bool:
            with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
                return all(run.is_finished for run in instance.get_runs())

        wait_for(lambda: runs_ended() and (time.sleep(6) or runs_ended()), 90, "the sensor's runs to end", interval=0.5)

        children = descendants(up.pid)
        assert set(pids.values()) <= children
    finally:
        stopping = time.monotonic()
        if up.poll() is None:
            up.send_signal(signal.SIGTERM)
        try:
            up.wait(60)
        except subprocess.TimeoutExpired:
            up.kill()
            raise
        stopped = time.monotonic()
        os.set_blocking(up.stdout.fileno(), True)
        seen += up.stdout.read().decode().splitlines()
    assert up.returncode == 0, "\n".join(seen)
    assert seen[-1] == "planning up: stopped"
    assert [line.split()[1] for line in seen if line.startswith("  stopped ")] == [
        "dagster-daemon", "dagster-webserver", "collector", "worker", "kafka"]
    assert [pid for pid in children if alive(pid)] == []

    # The run was the sensor's, recorded in the stack's Dagster instance.
    with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
        runs = [r for r in instance.get_runs() if r.tags.get("dagster/partition") == "2027-28"]
    # a run per mark the sensor saw move: @2; or @1 then @2 if it ticked between the two events (and the first
    # build had not published when it ticked again); or @1 alone, if the second event came while it was queued
    assert runs and all(r.status.value == "SUCCESS" and r.tags["dagster/sensor_name"] == "event_store_sensor" for r in runs)
    assert sorted(r.tags["dagster/run_key"] for r in runs) in (["2027-28@2"], ["2027-28@1", "2027-28@2"], ["2027-28@1"])
    print("\n".join(seen), f"\nup {ready - started:.1f} s, events to published build {built - ready:.1f} s, "
          f"stop {stopped - stopping:.1f} s")
