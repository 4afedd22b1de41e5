"""Dagster runs that read synthetic data say so: a run tag, and ``synthetic`` in the materializations.

Whoever launched the run (here `planning build` and the pack the demo writes),
the step that reads the data tags its own run; a run over real data has no tag.
"""

from __future__ import annotations

from collections.abc import Iterator

import dagster as dg
import pytest

from events.home import PlanningHome
from pipelines.orchestration.defs.synthetic import SYNTHETIC_TAG
from pipelines.orchestration.runs import write_current_pack
from tests.support.home import use_home
from tests.support.synthetic import CYCLE, built_home

KINDS = ("synthetic", "real")


@pytest.fixture(scope="module")
def homes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tuple[PlanningHome, dict]]]:
    """Per kind: the home, and the metadata of its briefing pack's run."""
    root = tmp_path_factory.mktemp("dagster-synthetic")
    built = {}
    for kind in KINDS:
        with pytest.MonkeyPatch.context() as patch:
            home = built_home(patch, root / kind / "planning-home", synthetic=kind == "synthetic")
            built[kind] = (home, write_current_pack(home, CYCLE, stage="brief"))
    yield built


def materializations(instance: dg.DagsterInstance, run_id: str) -> dict[str, dict]:
    found = {}
    for record in instance.get_records_for_run(run_id).records:
        event = record.event_log_entry.dagster_event
        if event and event.event_type_value == "ASSET_MATERIALIZATION":
            metadata = event.event_specific_data.materialization.metadata
            found[event.asset_key.to_user_string()] = {k: v.value for k, v in metadata.items()}
    return found


@pytest.mark.parametrize("kind", KINDS)
def test_every_run_over_synthetic_data_is_tagged_and_no_run_over_real_data(
    kind: str, homes: dict[str, tuple[PlanningHome, dict]], monkeypatch: pytest.MonkeyPatch
) -> None:
    use_home(monkeypatch, homes[kind][0].root)
    instance = dg.DagsterInstance.get()
    runs = instance.get_runs()
    jobs = {run.job_name for run in runs}
    assert {"build_cycle", "build_operations", "build_packs"} <= jobs, jobs
    tags = {run.job_name: run.tags.get(SYNTHETIC_TAG) for run in runs}
    assert tags == {job: ("true" if kind == "synthetic" else None) for job in jobs}


@pytest.mark.parametrize("kind", KINDS)
def test_the_materializations_say_whether_their_data_is_synthetic(
    kind: str, homes: dict[str, tuple[PlanningHome, dict]], monkeypatch: pytest.MonkeyPatch
) -> None:
    home, pack = homes[kind]
    use_home(monkeypatch, home.root)
    instance = dg.DagsterInstance.get()
    runs = {run.job_name: run.run_id for run in instance.get_runs()}
    metadata = materializations(instance, runs["build_cycle"])
    expected = kind == "synthetic"
    assert metadata["cycle_evidence"]["synthetic"] is expected
    assert metadata["panel_snapshot"]["synthetic"] is expected
    assert materializations(instance, runs["build_operations"])["dead_letters"]["synthetic"] is expected
    assert pack["synthetic"] is expected  # the briefing_pack's metadata
