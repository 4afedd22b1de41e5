"""The read models. ``sql/`` holds each Panel table's SQL, schema file and checks (read by ``tables.py``);
``building/`` makes a cycle's tables, ``reading/`` serves the published ones, ``packs/`` prints them for the
Panel; every DuckDB connection goes through ``connection.py``. Imports only ``events``."""
