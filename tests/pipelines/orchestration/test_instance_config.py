"""A home's Dagster instance: seeded from dagster_home/dagster.yaml, brought up to it when unedited, never overwritten when edited."""

from __future__ import annotations

import hashlib
from pathlib import Path

import dagster as dg
import pytest

from events.home import PlanningHome
from pipelines.orchestration.instance import SEEDED_BEFORE, TEMPLATE, use_planning_dagster_home

DEQUEUE_LINE = "  dequeue_interval_seconds: 1"


def earlier_template() -> bytes:
    """The file homes were seeded with until 2026-12-01: today's without the dequeue interval."""
    lines = TEMPLATE.read_text().splitlines(keepends=True)
    return "".join(line for line in lines if not line.startswith(DEQUEUE_LINE)).encode()


def test_a_new_home_gets_a_run_queue_that_dequeues_every_second(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    home = PlanningHome(tmp_path / "home")
    use_planning_dagster_home(home)
    assert (home.dagster / "dagster.yaml").read_bytes() == TEMPLATE.read_bytes()
    with dg.DagsterInstance.from_config(str(home.dagster)) as instance:
        coordinator = instance.run_coordinator
        assert coordinator.dequeue_interval_seconds == 1  # Dagster's default is 5
        assert coordinator.get_run_queue_config().max_concurrent_runs == 1


def test_a_home_seeded_with_the_earlier_file_is_brought_up_to_date(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    home = PlanningHome(tmp_path / "home")
    home.dagster.mkdir(parents=True)
    old = earlier_template()
    assert hashlib.sha256(old).hexdigest() in SEEDED_BEFORE  # the bytes homes really hold
    (home.dagster / "dagster.yaml").write_bytes(old)
    use_planning_dagster_home(home)
    assert (home.dagster / "dagster.yaml").read_bytes() == TEMPLATE.read_bytes()


def test_a_file_the_operator_edited_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    home = PlanningHome(tmp_path / "home")
    home.dagster.mkdir(parents=True)
    edited = earlier_template() + b"run_monitoring:\n  enabled: true\n"
    (home.dagster / "dagster.yaml").write_bytes(edited)
    use_planning_dagster_home(home)
    assert (home.dagster / "dagster.yaml").read_bytes() == edited
