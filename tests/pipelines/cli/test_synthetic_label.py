"""The command line shows the synthetic label whatever its flags, and refuses to mix synthetic and real events.

`planning query` and `planning sql` print the label above a `table` and on
standard error beside `csv` and `json`; `planning pack` has no flag left to
drop it; `planning ingest` refuses events of the other kind than the store's
(exit 1), both ways, storing nothing of the refused batch.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from events.home import PlanningHome
from events.storage.store import EventStore
from pipelines.cli.main import main
from pipelines.exit_codes import ExitCode
from projections.reading.synthetic import NOTE
from tests.support.events import make_event, write_jsonl
from tests.support.home import use_home
from tests.support.synthetic import CYCLE, LABEL, RECORDED_AT, built_homes

KINDS = ("synthetic", "real")


@pytest.fixture(scope="module")
def homes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, PlanningHome]:
    return built_homes(tmp_path_factory.mktemp("cli-synthetic"))


def run(capsys: pytest.CaptureFixture, *arguments: str) -> tuple[int, str, str]:
    capsys.readouterr()
    status = main(list(arguments))
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize("command", [["query", "stage_status", "--cycle", CYCLE], ["sql", "SELECT cycle, stage FROM stage_status"]])
def test_a_table_of_synthetic_data_opens_with_the_label(command: list[str], homes: dict[str, PlanningHome],
                                                        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    use_home(monkeypatch, homes["synthetic"].root)
    status, out, _ = run(capsys, *command)
    assert status == ExitCode.OK
    lines = out.splitlines()
    assert lines[0] == NOTE and lines[0].startswith(f"{LABEL}: ")
    assert lines[1].split()[:2] == ["cycle", "stage"]  # then the table, as before

    use_home(monkeypatch, homes["real"].root)
    status, out, err = run(capsys, *command)
    assert status == ExitCode.OK
    assert out.splitlines()[0].split()[:2] == ["cycle", "stage"] and "SYNTHETIC" not in out + err


def test_the_data_teams_dead_letters_of_a_synthetic_store_carry_the_label(homes: dict[str, PlanningHome],
                                                                          monkeypatch: pytest.MonkeyPatch,
                                                                          capsys: pytest.CaptureFixture) -> None:
    for kind in KINDS:
        use_home(monkeypatch, homes[kind].root)
        status, out, _ = run(capsys, "query", "dead_letters")
        assert status == ExitCode.OK
        assert (out.splitlines()[0] == NOTE) is (kind == "synthetic"), (kind, out)


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_csv_and_json_of_synthetic_data_stay_data_and_the_label_goes_to_stderr(fmt: str, homes: dict[str, PlanningHome],
                                                                                monkeypatch: pytest.MonkeyPatch,
                                                                                capsys: pytest.CaptureFixture) -> None:
    use_home(monkeypatch, homes["synthetic"].root)
    status, out, err = run(capsys, "query", "stage_status", "--cycle", CYCLE, "--format", fmt)
    assert status == ExitCode.OK
    rows = json.loads(out) if fmt == "json" else list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 8 and {r["cycle"] for r in rows} == {CYCLE}
    assert NOTE in err.splitlines()

    use_home(monkeypatch, homes["real"].root)
    status, out, err = run(capsys, "query", "stage_status", "--cycle", CYCLE, "--format", fmt)
    assert status == ExitCode.OK and "SYNTHETIC" not in out + err


def test_planning_pack_with_no_flags_labels_synthetic_data_and_the_old_flag_is_gone(
    homes: dict[str, PlanningHome], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, tmp_path: Path
) -> None:
    use_home(monkeypatch, homes["synthetic"].root)
    status, out, _ = run(capsys, "pack", "--cycle", CYCLE, "--stage", "brief", "--no-pdf", "--to", str(tmp_path / "synthetic"))
    assert status == ExitCode.OK and "[SYNTHETIC DATA: labelled on every page]" in out
    html = (tmp_path / "synthetic" / "brief.html").read_text(encoding="utf-8")
    assert '<meta name="synthetic" content="true">' in html and '<div class="synthetic-mark" role="note">SYNTHETIC DATA</div>' in html
    assert 'content: "SYNTHETIC DATA"' in html  # the printed pages' margin box

    status, _, err = run(capsys, "pack", "--cycle", CYCLE, "--synthetic")
    assert status == ExitCode.USAGE and "--synthetic" in err

    use_home(monkeypatch, homes["real"].root)
    status, out, _ = run(capsys, "pack", "--cycle", CYCLE, "--stage", "brief", "--no-pdf", "--to", str(tmp_path / "real"))
    assert status == ExitCode.OK and "SYNTHETIC" not in out
    html = (tmp_path / "real" / "brief.html").read_text(encoding="utf-8")
    assert '<meta name="synthetic" content="false">' in html and "SYNTHETIC DATA" not in html


# --- mixing is refused --------------------------------------------------------------------------------


def ingest(capsys: pytest.CaptureFixture, tmp_path: Path, name: str, events: list[dict]) -> tuple[int, str, str]:
    return run(capsys, "ingest", "--recorded-at", RECORDED_AT, str(write_jsonl(tmp_path / name, events)))


def stored(home: PlanningHome) -> int:
    with EventStore(home.store) as store:
        return store.counts()["events"]


def test_synthetic_events_are_refused_by_a_store_of_real_ones(home: PlanningHome, capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    assert ingest(capsys, tmp_path, "real.jsonl", [make_event("stage.signed_off")])[0] == ExitCode.OK
    status, out, err = ingest(capsys, tmp_path, "demo.jsonl",
                              [make_event("stage.signed_off"), make_event("stage.signed_off", synthetic=True)])
    assert status == ExitCode.REJECTED
    assert "accepted 0  duplicate 0  rejected 0  (before the refusal)" in out
    assert f"planning ingest: REFUSED, the ingest stopped here: {tmp_path / 'demo.jsonl'}:2: synthetic: the event is synthetic" in err
    assert "holds real events" in err and "use another PLANNING_HOME" in err
    assert stored(home) == 1  # nothing of the refused batch, not even its real event


def test_real_events_are_refused_by_a_store_of_synthetic_ones(home: PlanningHome, capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    assert ingest(capsys, tmp_path, "demo.jsonl", [make_event("stage.signed_off", synthetic=True)])[0] == ExitCode.OK
    status, _, err = ingest(capsys, tmp_path, "real.jsonl", [make_event("stage.signed_off")])
    assert status == ExitCode.REJECTED
    assert f"{tmp_path / 'real.jsonl'}:1: synthetic: the event is real" in err and "holds synthetic events" in err
    assert stored(home) == 1
