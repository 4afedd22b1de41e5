"""Where the repository is, for tests that start `python -m …` children or read its files; the clock option's name."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CLOCK_AHEAD = "--clock-ahead-days"  # tests/conftest.py: run every test with the clock moved this many days ahead
