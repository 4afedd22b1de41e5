"""`planning demo`: the main job on the embedded default, end to end.

Generates a synthetic cycle (and the one before it), ingests it through the
contract, builds every projection through Dagster, and prints the stage
dashboard. Everything it writes is labelled synthetic.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from datetime import date, datetime, timezone

from events.contract.cycle import Cycle
from events.home import PlanningHome
from events.storage.store import EventStore
from pipelines.exit_codes import ExitCode
from pipelines.demo.dashboard import print_dashboard
from pipelines.demo.generator import write_demo_file
from pipelines.ingest.files import ingest_files
from pipelines.orchestration.runs import BuildFailed, build, write_current_pack


def run_demo(home: PlanningHome, today: str | None = None, seed: int = 2027) -> int:
    started = time.monotonic()
    day = date.fromisoformat(today) if today else date.today()
    cycle = str(Cycle.from_date(day))
    # The raw input carries (synthetic) personal data, so it is not kept under
    # $PLANNING_HOME, where erasure could not reach it; the seed reproduces it.
    with tempfile.TemporaryDirectory(prefix="planning-demo-") as scratch:
        demo_file = Path(scratch) / f"synthetic-{cycle}.jsonl"
        counts = write_demo_file(demo_file, day, seed=seed, not_after=datetime.now(timezone.utc))
        with EventStore(home.store, writer=True, holder="planning demo") as store:
            outcome = ingest_files(store, [str(demo_file)], progress=None)
    print(f"SYNTHETIC DATA: generated {sum(v for k, v in counts.items() if '.' in k):,} events "
          f"for cycles {cycle} and the one before, with {counts.get('bad_lines', 0)} deliberately bad lines "
          f"and {counts.get('duplicate_lines', 0)} re-sent duplicates")

    print(f"ingested: accepted {outcome.accepted:,}  duplicate {outcome.duplicates:,}  "
          f"rejected {outcome.rejected:,} (see `planning deadletters`)")

    try:
        builds = build(home, on=day.isoformat())
    except BuildFailed as failure:
        print(f"planning demo: {failure}", file=sys.stderr)
        return ExitCode.FAILED
    print(f"built {len(builds)} cycle(s) through Dagster: {', '.join(b.cycle for b in builds)}\n")

    print_dashboard(home, cycle)
    print(f"\nWhere things are (PLANNING_HOME={home.root}):")
    print(f"  synthetic input   regenerated from --seed {seed}; not kept, as it carries personal fields")
    print(f"  event store       {home.store}")
    print(f"  projections       {home.projections / 'published.json'} (read with `planning query TABLE`)")
    print(f"  Dagster history   {home.dagster} (browse with `planning ui`)")
    pack = write_current_pack(home, cycle, synthetic=True)  # the briefing pack of the stage the cycle is in
    print(f"  briefing pack     {pack['html']} ({pack['stage']}; opens offline)")
    print(f"                    {pack['pdf']}" if "pdf" in pack else f"                    no PDF: {pack.get('pdf_error')}")
    print(f"done in {time.monotonic() - started:.1f} s")
    return ExitCode.OK
