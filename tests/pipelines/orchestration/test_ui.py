"""`planning ui` as a user runs it: it opens on a built home without rebuilding it, and a signal stops all of it.

The command runs as a real process on a free port, in its own session as a
shell would start it. Its children (webserver, daemon, their code servers)
are found by parent pid, before the signal; after it, none may be left.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import dagster as dg
import pytest

from events.home import PlanningHome
from events.storage.store import EventStore
from pipelines.ingest.files import ingest_files
from pipelines.orchestration.runs import build
from tests.support.events import make_event, write_jsonl
from tests.support.kafka import free_ports
from tests.support.paths import REPO_ROOT
from tests.support.stream import alive, descendants, wait_for

STOPPED_WITHIN = 10.0  # seconds, as `planning up`: the bound, not a guess
NOT_FOR_USERS = ("deprecat", "superseded", "dg dev")


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _start_ui(home: PlanningHome, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PLANNING_HOME": str(home.root), "PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1"}
    env.pop("DAGSTER_HOME", None)
    return subprocess.Popen([sys.executable, "-m", "pipelines.cli", "ui", "--port", str(port)], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)


def _built_home(home: PlanningHome, tmp_path: Path) -> list[str]:
    """Two cycles ingested and built, as `planning build` leaves a home; the ids of the build runs."""
    events = [make_event("cycle.opened", {"timetable": []}), make_event("consultation.response_received"),
              make_event("stage.signed_off", cycle="2026-27")]
    with EventStore(home.store, writer=True) as store:
        ingest_files(store, [str(write_jsonl(tmp_path / "e.jsonl", events))], progress=None)
    return [b.run_id for b in build(home, on="2026-09-10")]


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_the_ui_opens_on_a_built_home_builds_nothing_and_a_signal_stops_all_of_it(
    home: PlanningHome, tmp_path: Path, stop: signal.Signals
) -> None:
    built = _built_home(home, tmp_path)
    (port,) = free_ports(1)
    ui = _start_ui(home, port)
    try:
        wait_for(lambda: ui.poll() is not None or _answers(f"http://127.0.0.1:{port}/server_info"), 120,
                 "the webserver to answer")
        assert ui.poll() is None, ui.stdout.read().decode()
        if stop == signal.SIGINT:
            # The daemon's sensor ticks once and observes the store; the cycles it finds current are not built.
            def sensor_observations() -> list:
                records = instance.fetch_observations(dg.AssetKey("event_store"), limit=10).records
                return [r for r in records if "cycles_already_current" in r.asset_observation.metadata]

            with dg.DagsterInstance.from_config(str(home.dagster)) as instance:
                observed = wait_for(sensor_observations, 120, "the sensor's first observation of the store")
                runs = instance.get_runs()
            metadata = observed[0].asset_observation.metadata
            assert metadata["cycles_already_current"].value == "2026-27, 2027-28"
            assert metadata["cycles_requested"].value == "none"
            assert [r.run_id for r in runs if r.job_name == "build_cycle"] == list(dict.fromkeys(built)), \
                "no run but the build's own (one run for both cycles)"
        children = descendants(ui.pid)
        assert len(children) >= 2, "the webserver and the daemon run below `planning ui`"
    finally:
        signalled = time.monotonic()
        if ui.poll() is None:
            ui.send_signal(stop)  # Ctrl-C reaches only `planning ui`: its children run in their own sessions
        try:
            ui.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(ui.pid, signal.SIGKILL)
            raise
    wait_for(lambda: not any(alive(pid) for pid in children), max(0.0, signalled + STOPPED_WITHIN - time.monotonic()),
             f"every process of `planning ui` ({sorted(children)}) to stop within {STOPPED_WITHIN:g} s of {stop.name}")
    output = ui.stdout.read().decode()
    assert ui.returncode == 0, output
    assert output.rstrip().endswith("planning ui: stopped"), output
    logs = "".join((home.root / "logs" / name).read_text() for name in ("dagster-webserver.log", "dagster-daemon.log"))
    for said in (output, logs):
        assert not [word for word in NOT_FOR_USERS if word in said.lower()], said
    assert not _answers(f"http://127.0.0.1:{port}/server_info")
