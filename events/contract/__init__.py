"""The event contract: the pydantic models and their JSON Schemas, the vocabularies, the value types (cycle,
instants), the one ``verdict`` on a raw line, and upcasting. Imports nothing of ours outside ``events.contract``."""
