"""No test depends on the day it runs: a sample of the suite passes with the clock a year ahead.

Fixtures that build at a fixed ``as_of`` must pin knowledge time too
(``planning ingest --recorded-at``, ``ingest_files(recorded_at=…)``): a
fixture that records at the wall clock passes on the day it is written and
fails once the wall clock passes its ``as_of``. This test runs the modules
that build at fixed instants in a child pytest whose clock (this process's
``datetime.now`` and ``time.time``, moved by time-machine) reads a year
later, so that such a fixture fails here on the day it is written.
"""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

from tests.support.paths import CLOCK_AHEAD
from tests.support.paths import REPO_ROOT

DAYS = 366
# Modules that ingest and build at fixed (on, as_of) instants, in-process (a subprocess keeps the real clock).
# tests/projections/test_packs.py pins its fixture the same way as test_exports; it is left out of the sample
# for its cost (a demo-sized cycle and headless Chromium), not because it is exempt.
SAMPLE = [
    "tests/projections/test_exports.py",
    "tests/projections/test_incremental.py",
    "tests/projections/test_projections_foundation.py",
    "tests/events/test_erasure.py",
]


def test_a_sample_of_the_suite_passes_a_year_ahead(tmp_path: Path) -> None:
    child = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--basetemp={tmp_path / 'basetemp'}",
         f"{CLOCK_AHEAD}={DAYS}", *SAMPLE],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=900,
    )
    output = child.stdout + child.stderr
    moved = re.search(r"clock moved \d+ days ahead, to (\d{4}-\d{2}-\d{2})", output)
    assert moved, output[-3000:]
    assert date.fromisoformat(moved.group(1)) >= date.today() + timedelta(days=DAYS - 1), "the child's clock did not move"
    assert child.returncode == 0, output[-6000:]
    assert re.search(r"\b\d+ passed\b", output) and " failed" not in output, output[-3000:]
