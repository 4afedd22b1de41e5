"""Validator processes: the contract check on the cores the store writer does not use.

Validating an event (parsing, the pydantic contract, the canonical body
digest) needs no store, so `planning ingest` and `planning worker` hand it to
a small pool of processes while their own process appends to the store.
Verdicts cross back without the pydantic model (``Accepted.without_model``):
the store needs only the body, the digest and the event type.

The processes are started by a fork server, so they inherit neither the
store's writer lock nor its SQLite connection, and each leaves on its own
when the process that started it is gone (a SIGKILLed ingest or worker cannot
shut its pool down, and a pool process would otherwise wait on its queue
forever).
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime

from events.contract.validation import Accepted, Rejected, verdict


# CPython collects its youngest objects every 700 allocations not freed, and everything every 100 of those.
# A process that keeps a batch of verdicts (thousands of dicts) sets that off hundreds of times per batch,
# each full pass walking every object imported too: a third of a validator's time on a 1,000-line chunk.
YOUNGEST_COLLECTION_EVERY = 50_000


def collect_less_often() -> None:
    """For a validator process, which only checks events a chunk at a time: the youngest objects are collected
    every ``YOUNGEST_COLLECTION_EVERY`` allocations, not 700. Cycles are still collected, later. Only there:
    a process that also holds DuckDB or SQLite connections (`planning ingest` itself, the worker, a test
    calling the CLI in-process) relies on cycles being collected soon to close them. (Not ``gc.freeze``
    either: objects frozen are never collected, and DuckDB's bindings report each as a leak at exit.)"""
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNGEST_COLLECTION_EVERY, middle, oldest)


def cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def verdicts(raws: list[bytes], received_at: datetime | None, sizes: list[int] | None = None) -> list[Accepted | Rejected]:
    """The verdicts on a chunk of raw events, in a validator process or inline, in order. An acceptance comes
    back without its model, cheap to pickle: the store needs only the body, the digest and the event type.
    ``sizes`` are the lines' full sizes where only their start is held (a file's oversized lines)."""
    sizes = sizes if sizes is not None else [None] * len(raws)
    return [_portable(verdict(raw, received_at, size=size)) for raw, size in zip(raws, sizes)]


def _portable(checked: Accepted | Rejected) -> Accepted | Rejected:
    return checked.without_model() if isinstance(checked, Accepted) else checked


def start_pool(processes: int) -> ProcessPoolExecutor:
    """``processes`` validator processes, started with the contract already imported; they run ``verdicts``."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    return ProcessPoolExecutor(processes, mp_context=context, initializer=_exit_with, initargs=(os.getpid(),))


def _exit_with(parent: int) -> None:
    """Pool initializer: leave when the process that started this one is gone; collect garbage less often."""
    collect_less_often()

    def watch() -> None:
        while True:
            time.sleep(1.0)
            try:
                os.kill(parent, 0)
            except ProcessLookupError:
                os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()
