"""Before/after of one pipeline command, alternating, so both see the same machine load.

    python -m bench.compare --before DIR --events 100k --what ingest|rebuild|backup [--rounds 2]

DIR holds the code before the change (``git archive <commit> events pipelines projections dagster_home |
tar -x -C DIR``); "after" is this checkout. Prints wall and CPU seconds of each round.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from bench import proc
from bench.data import dataset


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--before", required=True, type=Path)
    parser.add_argument("--events", default="100k")
    parser.add_argument("--what", choices=("ingest", "rebuild", "backup"), default="ingest")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    ds = dataset(args.events)
    if args.what == "backup":  # on the bench home's store, both sides reading the same one
        from bench.backup import compare
        from bench.measure import Run

        compare(Run(ds=ds), args.before, args.rounds)
        return
    work = ds.dir / "compare"
    for round_ in range(args.rounds):
        for label, code in (("before", args.before.resolve()), ("after", proc.REPO)):
            home = work / label
            env = proc.planning_env(home, PYTHONPATH=str(code))
            if args.what == "ingest":
                shutil.rmtree(home, ignore_errors=True)
                done = proc.run(proc.planning("ingest", str(ds.events_file)), env, cwd=code)
                rate = f"{ds.lines / done.seconds:,.0f} lines/s"
            else:
                if not (home / "store").exists():  # each side rebuilds a store its own code ingested
                    proc.run(proc.planning("ingest", str(ds.events_file)), env, cwd=code)
                done = proc.run(proc.planning("build", "--full"), env, cwd=code)
                rate = f"{done.seconds / ds.distinct_events * 1e6:,.0f} µs/event"
            print(f"round {round_ + 1} {label:6} {args.what}: {done.seconds:6.1f} s wall, {done.cpu_seconds:6.1f} s CPU, "
                  f"peak {done.tree_peak_mib:,.0f} MiB, {rate}, load {proc.load_average():.1f}", flush=True)


if __name__ == "__main__":
    main()
