"""What a `planning` process loads before it works: only what its command needs.

A Panel member's `planning query` is a new process each time, and so is every Dagster run (a spawned
interpreter that imports our definitions before its first step). Neither validates events, so neither
should load the web framework, numpy (the store's id filters, for appends), or build the contract's
validators (pydantic builds a model's validator at its first validation, not at import).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.paths import REPO_ROOT

HEAVY = ("numpy", "starlette", "dagster", "faust", "kafka")


def _loaded(probe: str, home: Path) -> list[str]:
    """The last line ``probe`` prints, split: run in a new interpreter, as the command would be."""
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO_ROOT,
                          env={**os.environ, "PLANNING_HOME": str(home), "PYTHONPATH": str(REPO_ROOT)})
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()[-1].split()


def test_planning_query_loads_neither_the_contract_nor_the_web_framework(tmp_path: Path) -> None:
    probe = ("import sys\nfrom pipelines.cli.main import main\n"
             "code = main(['query', 'consultation_coverage'])\n"  # no build yet: refused, after its imports
             f"print(code, *sorted(m for m in {HEAVY + ('pydantic',)!r} if m in sys.modules))")
    code, *loaded = _loaded(probe, tmp_path)
    assert code != "0"  # nothing is published on an empty home
    assert loaded == []


def test_a_dagster_run_imports_no_numpy_and_builds_no_contract_validator(tmp_path: Path) -> None:
    probe = ("import sys\nimport pipelines.orchestration.definitions\n"
             "from events.contract.models import ENVELOPES\n"
             "built = [t for t, model in ENVELOPES.items() if model.__pydantic_complete__]\n"
             f"print(len(built), *sorted(m for m in {tuple(m for m in HEAVY if m != 'dagster')!r} if m in sys.modules))")
    built, *loaded = _loaded(probe, tmp_path)
    assert built == "0"
    assert loaded == []
