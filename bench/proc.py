"""Run a child process and sample its peak RSS from /proc/<pid>/status (VmHWM).

VmHWM is the child's own high-water mark. ``resource.getrusage`` /
``os.wait4``'s ru_maxrss is not used: across fork+exec it starts from the
parent's peak, so a small child of a big bench process would look big.
VmHWM only grows, so the last sample before exit is the peak up to then; the
sampler reads every ``interval`` seconds (a spike in the last interval before
exit can be missed, which the README says).
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


def vm_hwm_kib(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return None


TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds_of(pid: int) -> float | None:
    """utime + stime of one process so far."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS
    except (FileNotFoundError, ProcessLookupError, PermissionError, IndexError, ValueError):
        return None


def descendants(pid: int) -> list[int]:
    """Child processes, recursively (e.g. ingest's validator pool behind its fork server)."""
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as f:
                    kids = [int(k) for k in f.read().split()]
                out += kids
                todo += kids
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return out


class PeakSampler(threading.Thread):
    """Samples VmHWM of one pid (``peak_kib``) and of its process tree (``tree_peak_kib``: the sum of
    every process's own VmHWM, an upper bound of the tree's peak) until stopped or the pid is gone."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak_kib = 0
        self.tree_peak_kib = 0
        self._seen: dict[int, int] = {}
        self._cpu: dict[int, float] = {}
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            value = vm_hwm_kib(self.pid)
            if value is None:
                return
            self.peak_kib = max(self.peak_kib, value)
            for child in descendants(self.pid):
                hwm = vm_hwm_kib(child)
                if hwm is not None:
                    self._seen[child] = max(self._seen.get(child, 0), hwm)
                cpu = cpu_seconds_of(child)
                if cpu is not None:
                    self._cpu[child] = cpu
            self.tree_peak_kib = max(self.tree_peak_kib, self.peak_kib + sum(self._seen.values()))
            self._stop_event.wait(self.interval)

    @property
    def descendants_cpu_seconds(self) -> float:
        """CPU of the descendants as last sampled (those the child never waited for are not in its rusage)."""
        return sum(self._cpu.values())

    def stop(self) -> int:
        self._stop_event.set()
        self.join(timeout=5)
        return self.peak_kib


def planning_env(home: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "PLANNING_HOME": str(home), "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    env.update(extra)
    return env


@dataclass
class Finished:
    returncode: int
    seconds: float
    peak_kib: int
    tree_peak_kib: int = 0
    cpu_seconds: float = 0.0  # user + sys of the child and the descendants it waited for (RUSAGE_CHILDREN delta)
    stdout: str = ""
    stderr: str = ""
    command: list[str] = field(default_factory=list)

    @property
    def peak_mib(self) -> float:
        return self.peak_kib / 1024

    @property
    def tree_peak_mib(self) -> float:
        return self.tree_peak_kib / 1024


def run(command: list[str], env: dict[str, str], *, check: bool = True, timeout: float | None = None,
        stdout_path: Path | None = None, cwd: Path = REPO) -> Finished:
    """Run to completion, timing it and sampling its peak RSS."""
    out = open(stdout_path, "wb") if stdout_path else subprocess.PIPE
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    child = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.PIPE)
    sampler = PeakSampler(child.pid)
    sampler.start()
    try:
        stdout, stderr = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        child.communicate()
        raise
    finally:
        if stdout_path:
            out.close()
    seconds = time.perf_counter() - started
    peak = sampler.stop()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    # + the descendants' CPU as sampled: ingest's pool processes are children of its fork server, which the
    # child never waits for, so they are not in its rusage (a tree whose child waits would be counted twice)
    cpu += sampler.descendants_cpu_seconds
    done = Finished(child.returncode, seconds, peak, max(peak, sampler.tree_peak_kib), cpu, (stdout or b"").decode(errors="replace"),
                    stderr.decode(errors="replace"), command)
    if check and child.returncode not in (0, 1):  # ingest exits 1 when any line was rejected: expected
        raise RuntimeError(f"{' '.join(command)} exited {child.returncode}:\n{done.stderr[-3000:]}")
    return done


def planning(*args: str) -> list[str]:
    return [PYTHON, "-m", "pipelines.cli", *args]


def load_average() -> float:
    """1-minute load average: the machine is shared, so every figure records it."""
    return os.getloadavg()[0]
