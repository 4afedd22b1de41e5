"""The exit status of every `planning` command and of the processes they start (the worker), one set for all."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    REJECTED = 1  # the command ran, but refused some of its input (e.g. lines that break the contract)
    USAGE = 2  # bad arguments, or input that cannot be read
    FAILED = 3  # the command could not do its work (a failed build, a locked store, no snapshot)
    CANNOT_WRITE = 4  # a place it must write refused: a read-only or full disk, a target that is not a directory, a file it would overwrite
    INTERRUPTED = 130  # Ctrl-C, as shells report SIGINT
