"""The event store in PostgreSQL (``PLANNING_STORE=postgresql://…``): its schema and its recorder."""
