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

import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor

from events.contract.validation import Accepted, Rejected


def cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def portable(verdict: Accepted | Rejected) -> Accepted | Rejected:
    """The verdict as it crosses back from a validator process: an acceptance without its model."""
    return verdict.without_model() if isinstance(verdict, Accepted) else verdict


def start_pool(processes: int, preload: list[str]) -> ProcessPoolExecutor:
    """``processes`` validator processes, each with the ``preload`` modules (the task's own) imported."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(preload)
    return ProcessPoolExecutor(processes, mp_context=context, initializer=_exit_with, initargs=(os.getpid(),))


def _exit_with(parent: int) -> None:
    """Pool initializer: leave when the process that started this one is gone."""

    def watch() -> None:
        while True:
            time.sleep(1.0)
            try:
                os.kill(parent, 0)
            except ProcessLookupError:
                os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()
