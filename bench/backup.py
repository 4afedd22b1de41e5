"""The backup figures: `planning backup` against `cp -r` of the same store, and an incremental
backup after the incremental file's 10,000 events against copying those events' segments.

Both sides write the same bytes; ours also fsyncs every file and directory it writes (a backup
that a power cut can lose is not one), `cp` does not. The incremental ratio is measured by library
calls on both sides (``events.storage.backup.backup`` against ``shutil.copyfile`` + ``fsync`` of the
new segments), since an interpreter's start (shown beside it, from the subprocess) alone costs more
than copying 10,000 events' segments; the whole-store ratio is subprocess against subprocess.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import statistics
import time
from pathlib import Path
from typing import Any

from bench import proc
from bench.measure import Run, row
from events.storage.backup import backup
from events.storage.erasure_ledger import fsync_dir, fsync_file
from events.storage.store import EventStore


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _clone_store(source: Path, target: Path) -> None:
    """A writable copy of a store: segments hard-linked (immutable), the index by SQLite's backup API."""
    shutil.rmtree(target, ignore_errors=True)
    (target / "segments").mkdir(parents=True)
    for segment in (source / "segments").iterdir():
        os.link(segment, target / "segments" / segment.name)
    src, dst = sqlite3.connect(source / "store.sqlite"), sqlite3.connect(target / "store.sqlite")
    src.backup(dst)
    src.close()
    dst.close()
    EventStore(target, writer=True).close()  # the schema this version keeps (a migration between backups copies the index whole)


def _copy_durably(files: list[Path], target: Path) -> float:
    """Seconds to copy ``files`` into ``target``, each fsynced, then the directory: the raw baseline."""
    target.mkdir(parents=True)
    started = time.perf_counter()
    for path in files:
        shutil.copyfile(path, target / path.name)
        fsync_file(target / path.name)
    fsync_dir(target)
    return time.perf_counter() - started


INCREMENTAL_ROUNDS = 5  # one pair is at the mercy of one fsync's latency on a shared disk (3 ms one time, 140 ms the next)


def _linked_copy(source: Path, target: Path) -> None:
    """``source`` (a backup) again at ``target``, every file hard-linked: a backup never writes into a file it
    has named, only new files renamed into place, so each round starts from the same backup at no cost."""
    for path in source.rglob("*"):
        if path.is_file():
            (target / path.relative_to(source)).parent.mkdir(parents=True, exist_ok=True)
            os.link(path, target / path.relative_to(source))


def _incremental_pair(store: Path, earlier: Path, new: list[Path], work: Path) -> tuple[float, float]:
    """(seconds of an incremental backup of ``store`` into a copy of ``earlier``, seconds of copying ``new``
    durably): one pair, both started after a ``sync`` so neither pays for the other's writeback."""
    _linked_copy(earlier, work / "backup")
    os.sync()
    copy = _copy_durably(new, work / "cp-new")
    os.sync()
    started = time.perf_counter()
    report = backup(store, work / "backup")
    ours = time.perf_counter() - started
    if sorted(report.copied) != [p.name for p in new] or "brought forward" not in report.copied_files[0]:
        raise RuntimeError(f"the incremental backup copied {report.copied} and {report.copied_files[0]}, "
                           f"not the new segments {[p.name for p in new]} and the index brought forward")
    shutil.rmtree(work)
    return ours, copy


def backup_figure(run: Run) -> dict[str, Any]:
    run.ensure_ingested()
    work = run.dir / "backup"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    store = run.home / "store"
    size = _size(store)
    copied = proc.run(["cp", "-r", str(store), str(work / "cp-copy")], run.env(run.home))
    files = [str(p) for p in (work / "cp-copy").rglob("*") if p.is_file()]
    synced = proc.run(["sync", *files], run.env(run.home))  # what cp -r left in the page cache, made durable
    ours = proc.run(proc.planning("backup", str(work / "whole")), run.env(run.home))
    ratio = copied.seconds / ours.seconds
    durable = (copied.seconds + synced.seconds) / ours.seconds

    home = work / "clone-home"
    run.log("  cloning the store, backing the clone up, ingesting the 10,000 new events (untimed) ...")
    _clone_store(store, home / "store")
    pristine = work / "incremental"
    backup(home / "store", pristine)
    before = {p.name for p in (pristine / "store" / "segments").iterdir()}
    proc.run(proc.planning("ingest", str(run.ds.incremental_file)), run.env(home))
    new = sorted(p for p in (home / "store" / "segments").iterdir() if p.name not in before)
    pairs = [_incremental_pair(home / "store", pristine, new, work / f"round-{n}") for n in range(INCREMENTAL_ROUNDS)]
    incremental = statistics.median(ours for ours, _ in pairs)
    baseline = statistics.median(copy for _, copy in pairs)
    again = proc.run(proc.planning("backup", str(pristine)), run.env(home))  # nothing new: the fixed cost
    new_bytes = sum(p.stat().st_size for p in new)
    inc_ratio = statistics.median(ours / copy for ours, copy in pairs)
    shutil.rmtree(work, ignore_errors=True)
    return row(
        "backup",
        f"`planning backup` of the store ({size / 2**20:,.0f} MiB, {run.ds.distinct_events:,} events): {ours.seconds:,.2f} s; "
        f"incremental after {run.ds.meta['incremental_events']:,} new events ({len(new)} segment(s), {new_bytes / 2**20:,.1f} MiB): "
        f"{incremental * 1000:,.0f} ms (median of {len(pairs)})",
        f"`cp -r` of the same folder: {copied.seconds:,.2f} s (then `sync` of its files: +{synced.seconds:,.2f} s, "
        f"{durable:.2f}× against both); copying the new segments (copyfile + fsync): "
        f"{baseline * 1000:,.0f} ms (median of {len(pairs)})",
        ratio, f"{ratio:.2f}× of cp -r; incremental {inc_ratio:.2f}× of the copy",
        "whole ≥ 0.5× of cp -r; incremental ≤ 2× of copying the new segments",
        ratio >= 0.5 and inc_ratio <= 2,
        "whole: both as subprocesses (our interpreter's start included), ours fsyncs every file and directory, cp does "
        f"not; incremental: the median of {len(pairs)} pairs' ratios, each pair copying the same new segments then "
        "backing them up into its own copy of the same earlier backup, by library calls on both sides (as a subprocess, a backup with nothing new takes "
        f"{again.seconds:,.2f} s: the interpreter's start and the fixed cost)",
        {"store_bytes": size, "cp_s": copied.seconds, "sync_s": synced.seconds, "durable_ratio": durable, "backup_s": ours.seconds, "incremental_s": incremental,
         "copy_new_s": baseline, "new_segments": len(new), "new_bytes": new_bytes, "incremental_ratio": inc_ratio,
         "noop_subprocess_s": again.seconds, "pairs": pairs},
    )


TIMED_BACKUP = ("import sys, time\nfrom pathlib import Path\nfrom events.storage.backup import backup\n"
                "started = time.perf_counter()\nbackup(Path(sys.argv[1]), Path(sys.argv[2]))\nprint(time.perf_counter() - started)\n")


def compare(run: Run, before: Path, rounds: int) -> None:
    """Before/after of both backup figures, alternating, on the bench home's store (``bench.compare --what backup``):
    each side's `planning backup` against `cp -r` just before it, and each side's incremental library call
    (timed inside a subprocess running that side's code) against copying the same new segments."""
    run.ensure_ingested()
    store, work = run.home / "store", run.dir / "compare-backup"
    for round_ in range(rounds):
        for label, code in (("before", before.resolve()), ("after", proc.REPO)):
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir(parents=True)
            env = proc.planning_env(run.home, PYTHONPATH=str(code))
            os.sync()
            copied = proc.run(["cp", "-r", str(store), str(work / "cp-copy")], env)
            synced = proc.run(["sync", *(str(p) for p in (work / "cp-copy").rglob("*") if p.is_file())], env)
            ours = proc.run(proc.planning("backup", str(work / "whole")), env, cwd=code)
            home = work / "clone-home"
            _clone_store(store, home / "store")
            proc.run([proc.PYTHON, "-c", TIMED_BACKUP, str(home / "store"), str(work / "incremental")], env, cwd=code)
            before_names = {p.name for p in (work / "incremental" / "store" / "segments").iterdir()}
            proc.run(proc.planning("ingest", str(run.ds.incremental_file)), run.env(home))
            new = sorted(p for p in (home / "store" / "segments").iterdir() if p.name not in before_names)
            os.sync()
            baseline = _copy_durably(new, work / "cp-new")
            os.sync()
            timed = proc.run([proc.PYTHON, "-c", TIMED_BACKUP, str(home / "store"), str(work / "incremental")],
                             proc.planning_env(home, PYTHONPATH=str(code)), cwd=code)
            incremental = float(timed.stdout.split()[-1])
            print(f"round {round_ + 1} {label:6} whole {ours.seconds:5.2f} s, cp -r {copied.seconds:5.2f} s (+sync {synced.seconds:4.2f} s):"
                  f" {copied.seconds / ours.seconds:.2f}× ({(copied.seconds + synced.seconds) / ours.seconds:.2f}× with sync);"
                  f" incremental {incremental * 1000:4.0f} ms, copy {baseline * 1000:3.0f} ms: {incremental / baseline:.2f}×;"
                  f" load {proc.load_average():.1f}", flush=True)
    shutil.rmtree(work, ignore_errors=True)
