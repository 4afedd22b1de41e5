"""A build loop for the freshness figure: `python -m bench.buildloop` (PLANNING_HOME from the env).

It does what the store's Dagster sensor (pipelines.orchestration.defs.sensors) decides, without
a Dagster daemon: whenever the store's high-water mark moves, build every cycle
named by the new events through the same Dagster job as `planning build`
(pipelines.orchestration.runs.build, one in-process run per cycle). One long-lived process,
so Python and Dagster are imported once, as a daemon's code server would.
"""

from __future__ import annotations

import signal
import sys
import time

from events.home import PlanningHome
from events.storage.store import EventStore
from pipelines.orchestration.runs import build


def main() -> int:
    home = PlanningHome.from_env()
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    with EventStore(home.store) as store:
        built_upto = store.high_water_mark()
    builds = 0
    while not stopping:
        with EventStore(home.store) as store:
            mark = store.high_water_mark()
            cycles = store.cycles(after=built_upto) if mark > built_upto else []
        if not cycles:
            time.sleep(0.2)
            continue
        for cycle in cycles:
            build(home, cycle=cycle)
            builds += 1
        built_upto = mark
        print(f"buildloop: built {', '.join(cycles)} up to {mark}", file=sys.stderr, flush=True)
    print(f"buildloop: {builds} builds", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
