"""A build loop for the freshness figure: `python -m bench.buildloop` (PLANNING_HOME from the env).

It does what the store's Dagster sensor (pipelines.orchestration.defs.sensors) and the daemon's
one-at-a-time run queue do, without a daemon: whenever the store's high-water mark moves, it queues
a build of every cycle named by the new events (every cycle after a retraction), unless a build of
that cycle is already queued and not started: that build reads the store when it starts, so the new
events join it (coalesced). Builds run one at a time, in the order queued, each one in-process run
of ``build_cycle`` with the run config and tag the sensor gives, on one Dagster instance kept open
(``pipelines.orchestration.runs.SensorBuilds``): the cycle's Panel tables only. Not
``runs.build``, which also rebuilds the data team's dead letters after every cycle, a run the sensor
requests only after an erasure. The
mark is read again between builds, so events that arrived during a build queue one more build of
their cycle behind it, and no more. One long-lived process, so Python and Dagster are imported once,
as a daemon's code server would. What the loop does not mimic: the sensor's 5 s interval (the loop
reads the mark every 0.2 s when idle) and the daemon's launch of a process per run; the figure
``freshness_daemon`` (bench/daemon.py) measures the daemon itself.
"""

from __future__ import annotations

import signal
import sys
import time

from events.home import PlanningHome
from events.storage.store import EventStore
from pipelines.orchestration.runs import SensorBuilds


def newly_named(home: PlanningHome, seen_upto: int) -> tuple[int, list[str]]:
    """The store's mark, and the cycles the events after ``seen_upto`` name (every cycle after a retraction)."""
    with EventStore(home.store) as store:
        mark = store.high_water_mark()
        if mark <= seen_upto:
            return mark, []
        if store.has_retraction_after(seen_upto):
            return mark, store.cycles()
        return mark, store.cycles(after=seen_upto)


def main() -> int:
    home = PlanningHome.from_env()
    stopping = []

    def stop(*_: object) -> None:
        stopping.append(1)

    with EventStore(home.store) as store:
        seen_upto = store.high_water_mark()
    queued: dict[str, int] = {}  # cycle -> the mark its build was requested at; not started; in request order
    builds = requests = coalesced = 0
    try:
        with SensorBuilds(home) as builder:
            while not stopping:
                signal.signal(signal.SIGTERM, stop)  # again after each build: Dagster maps SIGTERM to its own handler
                mark, named = newly_named(home, seen_upto)
                for cycle in named:
                    requests += 1
                    if cycle in queued:
                        coalesced += 1  # its queued build will read the store when it starts
                    else:
                        queued[cycle] = mark
                seen_upto = max(seen_upto, mark)
                if not queued:
                    time.sleep(0.2)
                    continue
                cycle = next(iter(queued))
                requested_at = queued.pop(cycle)  # started: new events of this cycle queue one more build behind it
                built = builder.build(cycle, requested_at_mark=requested_at)
                builds += 1
                print(f"buildloop: {'built' if built else 'FAILED to build'} {cycle} (requested at mark {requested_at}; "
                      f"still queued: {', '.join(queued) or 'none'})", file=sys.stderr, flush=True)
    finally:  # also when SIGTERM interrupts a build: the bench reads this line
        print(f"buildloop: {builds} builds for {requests} requests, {coalesced} coalesced into a queued build",
              file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
