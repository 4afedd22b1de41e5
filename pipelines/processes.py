"""Long-running child processes of a `planning` command (`planning up`, `planning ui`), and stopping them.

Each child runs in its own session, so its process group is its own: a
Ctrl-C in the terminal reaches only the `planning` command, which then stops
its children itself, and a child's own children (Dagster's code servers, a
run it launched) are found and stopped through the group, whatever the child
did with the signal. Output goes to a log file under $PLANNING_HOME/logs.

A `planning` command killed outright (SIGKILL, the OOM killer) cannot stop
its children, and their own sessions keep them from its terminal's hang-up:
so each child asks the kernel, before it starts, for SIGTERM when its parent
dies (Linux's ``PR_SET_PDEATHSIG``), and stops as it would on Ctrl-C.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
STOP_TIMEOUT = 20.0  # seconds for each process to stop after SIGTERM before its group is killed
LOG_TAIL_LINES = 20


def _term_when_parent_dies(parent: int) -> Callable[[], None]:
    """Run in the child between fork and exec: SIGTERM to it when ``parent`` dies, even by SIGKILL.

    The kernel watches the thread that started the child, so services are started from the main thread."""

    def ask_the_kernel() -> None:
        # SIGTERM must stop the child: an ignored or blocked signal stays so across exec, and whatever started
        # this command (a wrapper, a test process that ignored SIGTERM once) may have left it so
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before the request was made: nobody would stop us
            os.kill(os.getpid(), signal.SIGTERM)

    return ask_the_kernel


@dataclass
class Service:
    """One child process, in its own session (so its process group is its own), its output in ``log``."""

    name: str
    command: list[str]
    log: Path
    where: str = ""
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    log_offset: int = 0
    started_at: float = 0.0  # time.time() of the start

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self, env: dict[str, str], cwd: Path) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as out:
            out.write(f"\n=== {' '.join(self.command)} ({time.strftime('%Y-%m-%d %H:%M:%S')}) ===\n".encode())
            out.flush()
            self.log_offset = out.tell()
            self.started_at = time.time()
            self.process = subprocess.Popen(
                self.command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                env=env, cwd=cwd, start_new_session=True, preexec_fn=_term_when_parent_dies(os.getpid()),
            )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def output(self) -> str:
        """What the process wrote since this start."""
        try:
            with open(self.log, "rb") as log:
                log.seek(self.log_offset)
                return log.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def tail(self) -> str:
        return "\n".join(self.output().splitlines()[-LOG_TAIL_LINES:]) or "(no output)"

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM the process; then whatever is left of its group (children it started); SIGKILL last."""
        if self.process is None:
            return
        group = self.process.pid  # start_new_session: the pid is the group id
        if self.process.poll() is None:
            try:
                self.process.send_signal(signal.SIGTERM)
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
            except ProcessLookupError:
                pass
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if not group_alive(group):
                break
            try:
                os.killpg(group, sig)
            except ProcessLookupError:
                break
            wait_until(lambda: not group_alive(group), 5.0 if sig == signal.SIGTERM else 10.0)
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


def group_alive(group: int) -> bool:
    """Whether any live (not zombie) process is in the process group."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        state, pgid = fields[0], int(fields[2])
        if pgid == group and state != "Z":
            return True
    return False


def wait_until(predicate: Callable[[], object], timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def stop_together(services: Iterable[Service], grace: float) -> None:
    """SIGTERM the whole group of every service at once; SIGKILL whatever is left after ``grace`` seconds.

    Everything is gone within ``grace`` plus a few seconds, however many services there are
    (``Service.stop`` one after the other is slower, but lets each shut down its own children first).
    """
    running = [s for s in services if s.process is not None]
    groups = [s.process.pid for s in running]  # start_new_session: each pid is its group's id

    def any_left() -> bool:
        return any(group_alive(group) for group in groups)

    for sig in (signal.SIGTERM, signal.SIGKILL):
        for group in groups:
            try:
                os.killpg(group, sig)
            except ProcessLookupError:
                pass
        if wait_until(lambda: not any_left(), grace if sig == signal.SIGTERM else 3.0):
            break
    for service in running:
        service.process.wait()
