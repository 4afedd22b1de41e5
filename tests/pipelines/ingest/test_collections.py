"""The processes that handle events a batch at a time collect garbage less often
(``pipelines.ingest.pool.collect_less_often``; docs/decisions.md, "Fewer garbage collections where
events go by the batch"): each validator process as it starts, and `planning ingest` itself."""

from __future__ import annotations

import gc
import subprocess
import sys

from pipelines.ingest.pool import YOUNGEST_COLLECTION_EVERY, start_pool

def _collections() -> int:
    return gc.get_threshold()[0]


def test_a_validator_process_collects_its_youngest_objects_less_often() -> None:
    pool = start_pool(1)
    try:
        assert pool.submit(_collections).result(timeout=60) == YOUNGEST_COLLECTION_EVERY
    finally:
        pool.shutdown()
    assert YOUNGEST_COLLECTION_EVERY > gc.get_threshold()[0], "the test process itself keeps CPython's defaults"


def test_planning_ingest_collects_less_often_from_its_start(tmp_path, monkeypatch) -> None:
    """Run as `planning ingest` runs its command, then read the collector's settings in the same process."""
    code = ("import gc\n"
            "from pipelines.cli.main import main\n"
            f"main(['ingest', {str(tmp_path / 'none.jsonl')!r}])\n"  # no such file: refused after the setting
            "print(gc.get_threshold()[0])\n")
    monkeypatch.setenv("PLANNING_HOME", str(tmp_path / "home"))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "no such file" in done.stderr
    assert done.stdout.split() == [str(YOUNGEST_COLLECTION_EVERY)]
