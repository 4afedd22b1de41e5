"""The project's documentation; `python -m docs.generate` rewrites its generated sections."""
