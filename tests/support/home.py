"""A $PLANNING_HOME for a test or a module of tests, with Dagster's instance inside it."""

from __future__ import annotations

from pathlib import Path

import pytest

from events.home import PlanningHome


def use_home(patch: pytest.MonkeyPatch, root: Path) -> PlanningHome:
    """Point $PLANNING_HOME at ``root`` and $DAGSTER_HOME at its dagster/, for as long as ``patch`` holds."""
    home = PlanningHome(root)
    patch.setenv("PLANNING_HOME", str(home.root))
    patch.setenv("DAGSTER_HOME", str(home.dagster))
    return home
