"""`planning demo` never mixes its synthetic events into a store of real ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from events.home import PlanningHome
from events.storage.store import EventStore
from pipelines.cli.main import main
from pipelines.exit_codes import ExitCode
from tests.support.events import make_event, write_jsonl


def test_the_demo_is_refused_by_a_home_that_holds_real_events(home: PlanningHome, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture) -> None:
    real = write_jsonl(tmp_path / "real.jsonl", [make_event("stage.signed_off")])
    assert main(["ingest", "--recorded-at", "2026-11-20T09:00:00Z", str(real)]) == ExitCode.OK
    capsys.readouterr()
    assert main(["demo", "--today", "2026-11-23"]) == ExitCode.REJECTED
    err = capsys.readouterr().err
    assert "planning demo: REFUSED:" in err and "synthetic: the event is synthetic" in err and "holds real events" in err
    with EventStore(home.store) as store:
        assert store.counts() == {"events": 1, "dead_letters": 0} and not store.synthetic
    assert not (home.projections / "published.json").exists()  # nothing was built from it
