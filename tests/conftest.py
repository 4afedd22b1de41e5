"""Shared fixtures: a fresh $PLANNING_HOME per test, the real broker, and a clock that can be moved ahead."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from events.home import PlanningHome
from tests.support.kafka import *  # noqa: F403  (the real-broker fixtures)
from tests.support.postgres import *  # noqa: F403  (the real PostgreSQL fixtures)
from tests.support.stores import *  # noqa: F403  (one store fixture over both backends)
from tests.support.paths import CLOCK_AHEAD
from tests.support.home import use_home


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> PlanningHome:
    root = tmp_path / "planning-home"
    return use_home(monkeypatch, root)


# --- a clock moved ahead: no test may depend on the day it runs ---------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        CLOCK_AHEAD, type=int, default=0, metavar="DAYS",
        help="run every test with this process's clock moved DAYS ahead (time-machine; subprocesses keep the real clock)",
    )


def pytest_report_header(config: pytest.Config) -> str | None:
    days = config.getoption(CLOCK_AHEAD)
    return f"clock moved {days} days ahead, to {_moved(days).date().isoformat()}" if days else None


@pytest.fixture(scope="session", autouse=True)
def moved_clock(request: pytest.FixtureRequest) -> Any:
    days = request.config.getoption(CLOCK_AHEAD)
    if not days:
        yield None
        return
    import time_machine

    with time_machine.travel(_moved(days), tick=True) as traveller:
        yield traveller


def _moved(days: int) -> Any:
    from datetime import datetime, timedelta, timezone

    return datetime.now(timezone.utc) + timedelta(days=days)
