"""A `planning` command killed outright leaves none of its long-running children behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pipelines.processes import group_alive, wait_until
from tests.support.paths import REPO_ROOT


@pytest.mark.parametrize("sigterm", ["default", "ignored"])
def test_a_child_stops_when_the_command_that_started_it_is_killed(tmp_path: Path, sigterm: str) -> None:
    """"ignored": the command was started with SIGTERM ignored, which a child inherits across exec unless
    it is reset (an earlier test of the same pytest process, or a wrapper, can leave it so)."""
    ignore = "import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN)" if sigterm == "ignored" else ""
    parent = textwrap.dedent(f"""
        {ignore}
        import sys, time
        from pathlib import Path
        from pipelines.processes import Service
        child = Service("sleeper", [sys.executable, "-c", "import time; time.sleep(600)"], Path({str(tmp_path)!r}) / "sleeper.log")
        child.start(env={{}}, cwd=Path({str(tmp_path)!r}))
        print(child.pid, flush=True)
        time.sleep(600)
    """)
    command = subprocess.Popen([sys.executable, "-c", parent], stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    try:
        child = int(command.stdout.readline())
        assert group_alive(child), "the child runs, in a group of its own"
        command.send_signal(signal.SIGKILL)
        command.wait(10)
        assert wait_until(lambda: not group_alive(child), 30), f"child {child} outlived its parent: {_status(child)}"
    finally:
        command.kill()
        command.wait()


def _status(pid: int) -> str:
    """What the kernel says of a process that should have stopped: its state, parent and signal masks."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError as error:
        return f"no /proc entry ({error})"
    wanted = ("State", "PPid", "SigBlk", "SigIgn", "SigCgt", "SigPnd", "ShdPnd")
    return "; ".join(line for line in lines if line.split(":")[0] in wanted)
