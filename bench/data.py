"""Synthetic bench data from the demo generator, scaled up, generated once per scale.

A scale is a number of events (100k, 1M, 10M). The data is many complete
cycles × the 32 boroughs, each cycle from ``generate_cycle`` with the demo's
realistic mix (PAS interviews and consultation responses dominate; audits,
meetings, profiles, the timetable's process events, retractions and an
erasure come with every cycle), the two high-volume streams multiplied by
``DemoScale.scale``. Like the demo file, every cycle's lines carry ~1%
re-sent duplicates (a little later in the file) and the demo's 13 bad lines,
one per contract rule, so ingest meets dead letters at a realistic rate.

Cycles are complete and in the past (the last is 2026-27, whose plan was
published in May 2026), so nothing is rejected as "in the future". The
incremental figure's 10,000 new events are the first 10,000 (by
``occurred_at``) of cycle 2027-28 at demo volume (scale 1): new ids, a new
cycle, as a live year would bring them.

Everything lands in ``bench/results/data/<scale>/`` (gitignored):
``events.jsonl``, ``incremental.jsonl``, ``meta.json``.
"""

from __future__ import annotations

import json
import os
import random
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

from events.contract.cycle import Cycle

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
DATA = RESULTS / "data"
SEED = 2027
DATA_VERSION = 1  # bump when the generation below changes

# events -> cycles of history; the number of cycles grows with the history (a
# bigger history is more years, and each year a bigger consultation).
SCALES: dict[str, tuple[int, int]] = {
    "100k": (100_000, 6),
    "1M": (1_000_000, 12),
    "10M": (10_000_000, 24),
}
LAST_HISTORY_PLAN_YEAR = 2026  # cycle 2026-27: every event before June 2026
INCREMENTAL_CYCLE = "2027-28"
INCREMENTAL_EVENTS = 10_000
DUPLICATE_RATE = 0.01
# Demo volume: ~17,400 events per cycle at scale 1, of which ~480 do not scale.
_FIXED_PER_CYCLE = 480
_SCALED_PER_CYCLE = 16_950


@dataclass(frozen=True)
class Dataset:
    name: str
    dir: Path
    meta: dict

    @property
    def events_file(self) -> Path:
        return self.dir / "events.jsonl"

    @property
    def incremental_file(self) -> Path:
        return self.dir / "incremental.jsonl"

    @property
    def cycles(self) -> list[str]:
        return self.meta["cycles"]

    @property
    def lines(self) -> int:
        return self.meta["lines"]

    @property
    def distinct_events(self) -> int:
        return self.meta["distinct_events"]

    @property
    def valid_lines(self) -> int:
        """Lines the emitter sends (events and re-sent duplicates; not the bad ones)."""
        return self.meta["distinct_events"] + self.meta["duplicate_lines"]


def plan(name: str) -> dict:
    events, cycles = SCALES[name]
    scale = max((events / cycles - _FIXED_PER_CYCLE) / _SCALED_PER_CYCLE, 0.05)
    years = list(range(LAST_HISTORY_PLAN_YEAR - cycles + 1, LAST_HISTORY_PLAN_YEAR + 1))
    return {"name": name, "target_events": events, "scale": round(scale, 4), "cycles": [str(Cycle(y)) for y in years],
            "seed": SEED, "data_version": DATA_VERSION}


def _bad_lines() -> list[str]:
    from pipelines.demo.generator import DemoScale, demo_lines

    now = datetime.now(timezone.utc)
    return [item.line for item in demo_lines(now.date(), SEED, DemoScale(scale=0.02), not_after=now) if item.kind == "bad"]


def _write_cycle(cycle: str, scale: float, out: str, bad: list[str]) -> dict:
    """One cycle's lines: events in occurred_at order, ~1% re-sent a little later, the 13 bad lines."""
    from pipelines.demo.generator import DemoScale, generate_cycle

    events = list(generate_cycle(cycle, date(2026, 6, 30), SEED, DemoScale(scale=scale)))
    good = [json.dumps(e, separators=(",", ":")) for e in events]
    types: dict[str, int] = {}
    for e in events:
        types[e["event_type"]] = types.get(e["event_type"], 0) + 1
    del events
    rng = random.Random(f"{SEED}:bench:{cycle}")
    n = len(good)
    resent: dict[int, list[int]] = {}
    for i in sorted(rng.sample(range(n), round(n * DUPLICATE_RATE))):
        resent.setdefault(min(i + rng.randint(1, 500), n - 1), []).append(i)
    bad_at = dict(zip(rng.sample(range(n), len(bad)), bad))
    duplicates = 0
    with open(out, "w", encoding="utf-8") as f:
        for i, line in enumerate(good):
            if i in bad_at:
                f.write(bad_at[i] + "\n")
            f.write(line + "\n")
            for j in resent.get(i, ()):
                f.write(good[j] + "\n")
                duplicates += 1
    return {"cycle": cycle, "events": n, "duplicate_lines": duplicates, "bad_lines": len(bad), "types": types}


def _write_incremental(path: Path) -> int:
    from pipelines.demo.generator import DemoScale, generate_cycle

    now = datetime.now(timezone.utc)
    events = list(generate_cycle(INCREMENTAL_CYCLE, now.date(), SEED, DemoScale(scale=1.0), not_after=now))
    events = events[:INCREMENTAL_EVENTS]
    with open(path, "w", encoding="utf-8") as f:
        for e in events:
            f.write(json.dumps(e, separators=(",", ":")) + "\n")
    return len(events)


def dataset(name: str, *, log=print) -> Dataset:
    """The scale's data, generated on first use (both cores, one cycle per task)."""
    wanted = plan(name)
    directory = DATA / name
    meta_file = directory / "meta.json"
    if meta_file.exists():
        meta = json.loads(meta_file.read_text())
        if all(meta.get(k) == v for k, v in wanted.items()):
            return Dataset(name, directory, meta)
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.jsonl*"):
        stale.unlink()
    started = time.monotonic()
    log(f"generating {name}: {len(wanted['cycles'])} cycles at scale {wanted['scale']} (seed {SEED}) ...")
    bad = _bad_lines()
    parts = [directory / f"part-{c}.jsonl.tmp" for c in wanted["cycles"]]
    with ProcessPoolExecutor(max_workers=min(2, os.cpu_count() or 1)) as pool:
        per_cycle = list(pool.map(_write_cycle, wanted["cycles"], [wanted["scale"]] * len(parts),
                                  [str(p) for p in parts], [bad] * len(parts)))
    with open(directory / "events.jsonl.tmp", "wb") as out:
        for part in parts:
            with open(part, "rb") as f:
                while chunk := f.read(1 << 24):
                    out.write(chunk)
            part.unlink()
    os.replace(directory / "events.jsonl.tmp", directory / "events.jsonl")
    incremental = _write_incremental(directory / "incremental.jsonl")
    types: dict[str, int] = {}
    for c in per_cycle:
        for t, n in c["types"].items():
            types[t] = types.get(t, 0) + n
    meta = {
        **wanted,
        "distinct_events": sum(c["events"] for c in per_cycle),
        "duplicate_lines": sum(c["duplicate_lines"] for c in per_cycle),
        "bad_lines": sum(c["bad_lines"] for c in per_cycle),
        "incremental_events": incremental,
        "event_types": dict(sorted(types.items(), key=lambda kv: -kv[1])),
        "bytes": (directory / "events.jsonl").stat().st_size,
        "generated_in_s": round(time.monotonic() - started, 1),
    }
    meta["lines"] = meta["distinct_events"] + meta["duplicate_lines"] + meta["bad_lines"]
    meta_file.write_text(json.dumps(meta, indent=2))
    log(f"generated {meta['lines']:,} lines ({meta['bytes'] / 1e6:,.0f} MB) in {meta['generated_in_s']} s")
    return Dataset(name, directory, meta)
