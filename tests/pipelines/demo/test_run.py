"""`planning demo` end to end, at a tenth of the volume: deliveries, Dagster builds, the knowledge-time line, the pack."""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timezone

import pytest

from events.home import PlanningHome
from pipelines.demo.dashboard import stage_on
from pipelines.demo.deliveries import deliveries
from pipelines.demo.generator import DemoScale, demo_lines
from pipelines.demo.knowledge import earlier_instant, responses_known, responses_now
from pipelines.demo.run import run_demo
from pipelines.exit_codes import ExitCode
from tests.support.home import use_home

TODAY = date(2025, 12, 10)
NOW = datetime(2025, 12, 10, 18, 0, tzinfo=timezone.utc)  # priorities were signed off in November
SCALE = DemoScale(scale=0.1)
CYCLE = "2026-27"
START_OF_OCTOBER = datetime(2025, 10, 1, tzinfo=timezone.utc)
LINE = re.compile(r"^Responses known on 1 Oct 2025: ([0-9,]+); known now: ([0-9,]+) \(([^)]*)\)$", re.M)


@dataclass(frozen=True)
class Demo:
    home: PlanningHome
    exit_code: int
    output: str


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    with pytest.MonkeyPatch.context() as patch:
        home = use_home(patch, tmp_path_factory.mktemp("demo") / "planning-home")
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = run_demo(home, now=NOW, scale=SCALE)
        yield Demo(home, code, out.getvalue())


def expected_responses(as_of: datetime) -> int:
    """Responses of the cycle recorded by ``as_of``, less those whose retraction was recorded by then."""
    arrived = [d for d in deliveries(demo_lines(TODAY, scale=SCALE, not_after=NOW), NOW) if d.recorded_at <= as_of]
    events = [line.event for d in arrived for line in d.lines if line.kind == "event" and line.event["cycle"] == CYCLE]
    retracted = {e["payload"]["target_event_id"] for e in events if e["event_type"] == "event.retracted"}
    return sum(1 for e in events if e["event_type"] == "consultation.response_received" and e["event_id"] not in retracted)


def test_the_demo_runs(demo: Demo) -> None:
    assert demo.exit_code == ExitCode.OK, demo.output
    arrived = deliveries(demo_lines(TODAY, scale=SCALE, not_after=NOW), NOW)
    first, last = arrived[0].recorded_at, arrived[-1].recorded_at
    assert first.year == 2024 and last.date() <= TODAY
    assert f"delivered in {len(arrived)} files, recorded from {first:%d %b %Y} to {last:%d %b %Y}" in demo.output


def test_the_knowledge_time_line_differs_between_the_two_instants(demo: Demo) -> None:
    (match,) = LINE.findall(demo.output)
    then, now = (int(figure.replace(",", "")) for figure in match[:2])
    assert then == expected_responses(START_OF_OCTOBER)
    assert now == expected_responses(NOW)
    assert then < now and match[2] == f"{now - then:+,} since, from late deliveries and retractions"
    assert f"consultation: {now:,} responses" in demo.output  # the same figure as today's dashboard


def test_the_earlier_figure_leaves_the_current_snapshot_alone(demo: Demo) -> None:
    published = demo.home.projections / "published.json"
    before = published.read_bytes()
    assert responses_known(demo.home, CYCLE, TODAY, START_OF_OCTOBER) < responses_now(demo.home, CYCLE)
    assert published.read_bytes() == before


def test_the_pack_is_the_stage_current_on_the_day(demo: Demo) -> None:
    assert "(priorities; opens offline)" in demo.output  # not feedback_2, the next stage to sign off, months away
    assert (demo.home.packs / CYCLE / "priorities.html").exists()
    assert not (demo.home.packs / CYCLE / "feedback_2.html").exists()


@pytest.mark.parametrize(("day", "stage"), [
    (date(2026, 2, 20), "brief"),  # the cycle is open; no window yet
    (date(2026, 3, 1), "brief"),
    (date(2026, 7, 14), "fieldwork"),
    (date(2026, 9, 30), "analysis"),
    (date(2026, 11, 30), "priorities"),
    (date(2026, 12, 20), "priorities"),  # between windows: the last one opened
    (date(2027, 2, 1), "feedback_2"),
])
def test_the_stage_on_a_day_is_the_last_whose_window_opened(day: date, stage: str) -> None:
    assert stage_on("2027-28", day) == stage


@pytest.mark.parametrize(("today", "earlier"), [
    (date(2026, 11, 30), datetime(2026, 10, 1, tzinfo=timezone.utc)),
    (date(2026, 10, 1), datetime(2026, 10, 1, tzinfo=timezone.utc)),
    (date(2026, 7, 14), datetime(2026, 7, 1, tzinfo=timezone.utc)),  # October is still to come: this month
])
def test_the_earlier_instant_is_the_start_of_october_once_it_has_passed(today: date, earlier: datetime) -> None:
    assert earlier_instant(today) == earlier
