"""Dagster: the definitions (``definitions.py`` over ``defs/``), its instance under $PLANNING_HOME, and in-process runs."""
