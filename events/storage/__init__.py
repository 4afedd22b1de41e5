"""The event store: append-only segments and one SQLite index (``store.py``), the per-respondent keys that seal
personal data (``personal_data.py``), and the one conversion between a stored record and an event (``conversion.py``)."""
