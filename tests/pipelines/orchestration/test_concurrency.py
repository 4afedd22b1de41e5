"""Builds queue, and readers never lose the snapshot they were opening: 2 builders and 20 readers, 0 errors.

Each builder is a `planning build` process, as two people (or a person and the sensor) start them;
the readers are threads of this process opening the published snapshot and querying it, each for
a bounded number of reads, while the builds go on. The builders build at pinned instants, so they
publish the named snapshot ``SNAPSHOT`` again and again (a what-if build never replaces the current
one): the readers open it, and the current snapshot with the dead letters, in turn. Afterwards only
the published folders remain.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path

from events.home import PlanningHome
from events.storage.store import EventStore
from pipelines.ingest.files import ingest_files
from pipelines.orchestration.runs import build
from projections.building.build import build_lock
from projections.reading.snapshots import open_reader, published, sweep
from tests.support.events import make_event, write_jsonl
from tests.support.paths import REPO_ROOT

KNOWN = datetime(2026, 9, 5, 12, tzinfo=timezone.utc)
SNAPSHOT = "stress"
BUILD = ("--on", "2026-09-10", "--as-of", "2026-09-10T12:00:00Z", "--name", SNAPSHOT)
BUILDERS, BUILDS_EACH = 2, 2
READERS, READS_AT_MOST = 20, 150


def builder(home: PlanningHome, outcomes: list[tuple[int, str]]) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PLANNING_HOME": str(home.root), "DAGSTER_HOME": str(home.dagster)}
    for _ in range(BUILDS_EACH):
        done = subprocess.run([sys.executable, "-m", "pipelines.cli", "build", *BUILD], cwd=REPO_ROOT, env=env,
                              capture_output=True, text=True)
        outcomes.append((done.returncode, done.stderr[-2000:]))


def reader(home: PlanningHome, building: threading.Event, reads: list[int], errors: list[str]) -> None:
    count = 0
    while count < READS_AT_MOST and (building.is_set() or count == 0):
        try:
            opened = {"operations": True} if count % 2 == 1 else {"snapshot": SNAPSHOT}
            with open_reader(home.projections, **opened) as db:
                (boroughs,) = db.execute("SELECT count(DISTINCT borough) FROM consultation_coverage").fetchone()
                assert boroughs == 32, boroughs
        except Exception as error:  # every kind counts: the test asserts there were none
            errors.append(f"{type(error).__name__}: {error}")
        count += 1
    reads.append(count)


def test_two_builders_and_twenty_readers_collide_nowhere(home: PlanningHome, tmp_path: Path) -> None:
    events = [make_event("consultation.response_received", {"borough": "E09000012"}) for _ in range(5)]
    with EventStore(home.store, writer=True) as store:
        ingest_files(store, [str(write_jsonl(tmp_path / "e.jsonl", events))], recorded_at=KNOWN, progress=None)
    build(home, on="2026-09-10", as_of="2026-09-10T12:00:00Z")  # something to read, and Dagster's storage created
    build(home, on="2026-09-10", as_of="2026-09-10T12:00:00Z", snapshot=SNAPSHOT)

    building, outcomes, reads, errors = threading.Event(), [], [], []
    building.set()
    readers = [threading.Thread(target=reader, args=(home, building, reads, errors)) for _ in range(READERS)]
    builders = [threading.Thread(target=builder, args=(home, outcomes)) for _ in range(BUILDERS)]
    for thread in readers + builders:
        thread.start()
    for thread in builders:
        thread.join()
    building.clear()
    for thread in readers:
        thread.join()

    assert [code for code, _ in outcomes] == [0] * (BUILDERS * BUILDS_EACH), [err for code, err in outcomes if code]
    assert errors == [], f"{len(errors)} of {sum(reads)} reads failed, first: {errors[0]}"
    assert sum(reads) > READERS, "the readers read while the builds ran"
    pointer = published(home.projections)
    named = list(pointer["named"][SNAPSHOT].values())
    current = {Path(e["file"]) for e in [*pointer["cycles"].values(), *named, pointer["operations"]]}
    assert all(file.exists() for file in current)
    with build_lock(home.projections):  # a folder a reader was opening at the last publication is the next sweep's
        sweep(home.projections)
    left = {p.parent for p in (home.projections / "builds").glob("*/*/*.duckdb")}
    assert left == {file.parent for file in current}, "superseded and failed folders are swept"
