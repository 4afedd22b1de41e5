"""The `planning` command: arguments in, words out. Each subcommand parses, calls one room, and prints.

``main.py`` holds the parser and the store, build and read commands; ``panel.py``,
``stream.py`` and ``stack.py`` register their own; ``pipelines/exit_codes.py`` holds the
exit status every command returns. Heavy rooms (Dagster, Kafka) are imported
inside the command that needs them, so `planning ingest` never loads Dagster
and `planning --help` answers at once.
"""
