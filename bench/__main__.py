"""`python -m bench --events 100k|1M|10M [--only NAME,...]`: every figure at one scale.

Writes bench/results/<scale>.md and bench/results/<scale>.json. Never part of
the test suite (pytest collects tests/ only; nothing here is named test_*).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from datetime import datetime, timezone

from bench import report
from bench.data import RESULTS, SCALES, dataset
from bench.figures import DISPLAY, FIGURES, memory_row
from bench.measure import Run
from bench.proc import load_average


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--events", required=True, choices=list(SCALES), help="scale of the synthetic history")
    parser.add_argument("--only", help=f"comma-separated figures (default: all): {','.join(FIGURES)}")
    parser.add_argument("--skip", help="comma-separated figures not to run (they are listed as not run)")
    parser.add_argument("--label", default="", help="suffix for the results files, e.g. 'before'")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",")] if args.only else list(FIGURES)
    skipped = {n.strip() for n in args.skip.split(",")} if args.skip else set()
    unknown = [n for n in [*names, *skipped] if n not in FIGURES]
    if unknown:
        parser.error(f"unknown figure(s) {unknown}; known: {', '.join(FIGURES)}")

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    started = time.monotonic()
    ds = dataset(args.events, log=log)
    run = Run(ds, log=log)
    rows = []
    try:
        for name in names:
            if name in skipped:
                rows.append({"figure": name, "skipped": "not run (--skip)"})
                continue
            log(f"[{args.events}] {name} ...")
            began = time.monotonic()
            load_before = load_average()
            try:
                result = FIGURES[name](run)
            except Exception as error:  # one failed figure must not lose the others
                traceback.print_exc()
                result = {"figure": name, "error": f"{type(error).__name__}: {error}"[:2000]}
            result["key"] = name
            result["seconds"] = round(time.monotonic() - began, 1)
            result["load"] = [round(load_before, 1), round(load_average(), 1)]
            rows.append(result)
            log(f"[{args.events}] {name}: {result.get('ratio_text', result.get('error'))} "
                f"({result['seconds']} s)")
    finally:
        run.close()
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = args.events + (f"-{args.label}" if args.label else "")
    previous = RESULTS / f"{stem}.json"
    previous_wall = 0.0
    if args.only and previous.exists():  # a partial run replaces its figures in the scale's last results
        old = json.loads(previous.read_text())
        previous_wall = old.get("wall_seconds", 0.0)
        by_key = {_key(r): r for r in old["figures"]}
        old_memory = by_key.get("memory")
        by_key.update({r["key"]: {**r, "rerun": True} for r in rows})
        if old_memory and "memory" in by_key and "data" in old_memory and "data" in by_key["memory"]:
            peaks = {**old_memory["data"]["peaks"], **by_key["memory"]["data"]["peaks"]}
            by_key["memory"] = {**by_key["memory"], **memory_row(peaks)}
        rows = list(by_key.values())
        run.extra = {**old.get("extra", {}), **run.extra}
    order = list(DISPLAY)
    rows.sort(key=lambda r: order.index(_key(r)) if _key(r) in order else len(order))
    results = {
        "scale": args.events,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": report.machine(),
        "versions": report.versions(),
        "dataset": ds.meta,
        "figures": rows,
        "extra": run.extra,
        "wall_seconds": round(time.monotonic() - started + previous_wall, 1),
    }
    (RESULTS / f"{stem}.json").write_text(json.dumps(results, indent=2, default=str))
    (RESULTS / f"{stem}.md").write_text(report.markdown(results))
    print(report.markdown(results))
    return 0


def _key(row: dict) -> str:
    """The figure's short name (rows written before rows carried it are matched by their title)."""
    if "key" in row:
        return row["key"]
    titles = {title: key for key, title in DISPLAY.items()}
    return titles.get(row.get("figure"), row.get("figure"))


if __name__ == "__main__":
    sys.exit(main())
