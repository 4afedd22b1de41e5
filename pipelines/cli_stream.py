"""Streaming subcommands of `planning` (broker, emit, worker, up): filled in by the streaming work."""

from __future__ import annotations

import argparse


def add_stream_commands(commands: argparse._SubParsersAction) -> None:
    """Register the streaming subcommands on the `planning` parser."""
