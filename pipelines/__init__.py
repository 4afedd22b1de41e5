"""The moving parts, one room per kind: ``cli/``, ``ingest/``, ``orchestration/`` (Dagster), ``streaming/`` (Kafka), ``demo/``.

They use ``events`` and ``projections``; neither of those imports anything from here.
"""
