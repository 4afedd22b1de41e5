"""Panel-facing subcommands of `planning` (pack, export): filled in by the Panel-pack work."""

from __future__ import annotations

import argparse


def add_panel_commands(commands: argparse._SubParsersAction) -> None:
    """Register the Panel subcommands on the `planning` parser."""
