"""What every figure of the bench shares: the :class:`Run` (the scale's data, its bench home, the broker),
a result row, a percentile, and the store's segment files.

Kept apart from ``figures.py`` so that the figures in their own modules (backup, collector, integrity) and
the table of all figures import one way.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Callable

from bench import proc
from bench.data import DATA, Dataset


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.4999)))
    return ordered[rank - 1]


@dataclass
class Run:
    ds: Dataset
    log: Callable[[str], None] = print
    peaks: dict[str, dict[str, Any]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    _broker: Any = None
    on: str = field(default_factory=lambda: date.today().isoformat())

    # --- places -----------------------------------------------------------------

    @property
    def dir(self) -> Path:
        return self.ds.dir

    @property
    def home(self) -> Path:
        """The bench home: the scale's events ingested by `planning ingest` and built."""
        return self.dir / "home"

    @property
    def incremental_home(self) -> Path:
        return self.dir / "incremental-home"

    def env(self, home: Path, **extra: str) -> dict[str, str]:
        return proc.planning_env(home, **extra)

    # --- preparing the bench home (untimed unless the figure times it) -------------

    def ingest_into(self, home: Path) -> proc.Finished:
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir(parents=True)
        done = proc.run(proc.planning("ingest", str(self.ds.events_file)), self.env(home))
        (home / "INGESTED").write_text(done.stdout)
        return done

    def ensure_ingested(self) -> None:
        if not (self.home / "INGESTED").exists():
            self.log(f"  preparing {self.home} (ingest, untimed) ...")
            self.ingest_into(self.home)

    def ensure_built(self) -> None:
        self.ensure_ingested()
        if not (self.home / "BUILT").exists():
            self.log("  preparing the projections (planning build, untimed) ...")
            proc.run(proc.planning("build", "--on", self.on), self.env(self.home))
            (self.home / "BUILT").write_text(self.on)

    # --- the broker ---------------------------------------------------------------

    def broker(self):
        if self._broker is None:
            from pipelines.streaming.broker import BrokerConfig, free_ports, start

            port, controller = free_ports(2)
            data_dir = DATA / "kafka"
            shutil.rmtree(data_dir, ignore_errors=True)
            self.log(f"  starting a Kafka broker on 127.0.0.1:{port} ...")
            config = BrokerConfig(data_dir=data_dir, port=port, controller_port=controller)
            self._broker = start(config)
            # the broker takes SASL/SCRAM only: the bench's services log in with the passwords it made
            os.environ["PLANNING_KAFKA_CREDENTIALS"] = str(config.credentials_file)
        return self._broker

    def close(self) -> None:
        if self._broker is not None:
            self._broker.stop()
            self._broker = None
            shutil.rmtree(DATA / "kafka", ignore_errors=True)


def row(figure: str, pipeline: str, baseline: str, ratio: float | None, ratio_text: str, target: str,
        met: bool | None, notes: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"figure": figure, "pipeline": pipeline, "baseline": baseline, "ratio": ratio, "ratio_text": ratio_text,
            "target": target, "met": met, "notes": notes, "data": data}


def ingest_counts(stdout: str) -> dict[str, int]:
    """`accepted 1,234  duplicate 5  rejected 6` -> numbers."""
    words = stdout.split()
    out = {}
    for key in ("accepted", "duplicate", "rejected"):
        if key in words:
            out[key] = int(words[words.index(key) + 1].replace(",", ""))
    return out


def segment_files(home: Path) -> list[str]:
    from events.storage.store import EventStore

    with EventStore(home / "store") as store:
        return [str(s.path) for s in store.segments()]
