"""`planning demo`: the main job on the embedded default, end to end.

Generates a synthetic cycle (and the one before it), ingests it through the
contract in the deliveries a real team would receive (each with its own
knowledge time, ``pipelines.demo.deliveries``), builds every projection
through Dagster, and prints the stage dashboard, with one line of what the
Panel knew at the start of October against what it knows now. Its events say
they are synthetic (``"synthetic": true``), so the store and every snapshot,
pack and export built from them is labelled too; a home whose store holds
real events refuses them.

Knowledge time never runs ahead of the real clock: a ``--today`` later than
now still builds the timetable on that day, but only with the deliveries that
have arrived by now (the contract refuses a ``recorded_at`` in the future).
"""

from __future__ import annotations

import io
import sys
import time
from collections import Counter
from datetime import date, datetime, timezone

from events.contract.cycle import Cycle
from events.home import PlanningHome
from events.storage.backends import Store, open_store
from pipelines.exit_codes import ExitCode
from pipelines.demo.dashboard import print_dashboard, stage_on
from pipelines.demo.deliveries import Delivery, deliveries, known_by
from pipelines.demo.generator import DemoScale, demo_lines
from pipelines.demo.knowledge import earlier_instant, knowledge_line, responses_known, responses_now
from events.senders.registry import operator
from pipelines.ingest.files import IngestSummary, MixedDataRefused, ingest_stream
from pipelines.orchestration.runs import BuildFailed, build, write_current_pack


def run_demo(
    home: PlanningHome, today: str | None = None, seed: int = 2027, *,
    now: datetime | None = None, scale: DemoScale = DemoScale(),
) -> int:
    started = time.monotonic()
    now = now or datetime.now(timezone.utc)
    day = date.fromisoformat(today) if today else now.date()
    cycle = str(Cycle.from_date(day))
    # The raw input carries (synthetic) personal data, so it is not kept under
    # $PLANNING_HOME, where erasure could not reach it; the seed reproduces it.
    cutoff = known_by(day, now)
    arrived = deliveries(demo_lines(day, seed, scale, not_after=cutoff), cutoff)
    with open_store(home.store, writer=True, holder="planning demo") as store:
        try:
            outcome = ingest_deliveries(store, arrived)
        except MixedDataRefused as refused:  # this home holds real data: the demo adds none of its own
            print(f"planning demo: REFUSED: {refused}", file=sys.stderr)
            return ExitCode.REJECTED
    kinds = Counter(line.kind for d in arrived for line in d.lines)
    print(f"SYNTHETIC DATA: generated {kinds['event']:,} events for cycles {cycle} and the one before, "
          f"with {kinds['bad']} deliberately bad lines and {kinds['duplicate']} re-sent duplicates")
    if arrived:
        print(f"delivered in {len(arrived)} files, recorded from {arrived[0].recorded_at:%d %b %Y} "
              f"to {arrived[-1].recorded_at:%d %b %Y} (their knowledge time: try `--as-of`)")
    print(f"ingested: accepted {outcome.accepted:,}  duplicate {outcome.duplicates:,}  "
          f"rejected {outcome.rejected:,} (see `planning deadletters`)")

    try:
        builds = build(home, on=day.isoformat(), as_of=now.isoformat())  # knowing every delivery that has arrived
    except BuildFailed as failure:
        print(f"planning demo: {failure}", file=sys.stderr)
        return ExitCode.FAILED
    print(f"built {len(builds)} cycle(s) through Dagster: {', '.join(b.cycle for b in builds)}\n")

    print_dashboard(home, cycle)
    earlier = earlier_instant(day)
    print(knowledge_line(earlier, responses_known(home, cycle, day, earlier), responses_now(home, cycle)))
    print(f"\nWhere things are (PLANNING_HOME={home.root}):")
    print(f"  synthetic input   regenerated from --seed {seed}; not kept, as it carries personal fields")
    print(f"  event store       {home.store}")
    print(f"  projections       {home.projections / 'published.json'} (read with `planning query TABLE`)")
    print(f"  Dagster history   {home.dagster} (browse with `planning ui`)")
    pack = write_current_pack(home, cycle, stage=stage_on(cycle, day))  # the stage current on the day; labelled by its data
    print(f"  briefing pack     {pack['html']} ({pack['stage']}; opens offline)")
    print(f"                    {pack['pdf']}" if "pdf" in pack else f"                    no PDF: {pack.get('pdf_error')}")
    print(f"done in {time.monotonic() - started:.1f} s")
    return ExitCode.OK


def ingest_deliveries(store: Store, arrived: list[Delivery]) -> IngestSummary:
    """Each delivery as one stream, in knowledge order, through the path of `planning ingest --recorded-at`
    (``ingest_stream``, what ``ingest_files`` runs on each file).

    The deliveries are held in memory, never written to a file (they carry personal fields), and are
    small, so each is validated in this process: no pool is started per delivery. A dead letter's
    origin names its delivery ("synthetic-deliveries/pas-2026-05-07T0800.jsonl:17"), the same on
    every run, so running the demo again stores nothing twice.
    """
    total = IngestSummary()
    data_team = operator()  # delivered as `planning ingest` delivers them
    for delivery in arrived:
        stream = io.BytesIO("".join(line.line + "\n" for line in delivery.lines).encode("utf-8"))
        name = f"synthetic-deliveries/{delivery.name}"
        total.merge(ingest_stream(store, stream, name, recorded_at=delivery.recorded_at, progress=None, sender=data_team))
    return total
