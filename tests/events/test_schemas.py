"""The committed JSON Schema files are exactly what the models export."""

from __future__ import annotations

import json

from events.contract.json_schema import SCHEMA_DIR, rendered
from events.contract.models import EVENT_TYPES


def test_committed_schemas_match_the_models() -> None:
    expected = rendered()
    committed = {p.name: p.read_text() for p in SCHEMA_DIR.glob("*.json")}
    assert set(committed) == set(expected), "run `python -m events.contract.json_schema` and commit the result"
    drifted = [name for name in expected if committed[name] != expected[name]]
    assert not drifted, f"schemas drifted from the models: {drifted}; run `python -m events.contract.json_schema`"


def test_schemas_carry_the_closed_vocabularies() -> None:
    schema = json.loads((SCHEMA_DIR / "consultation.response_received.json").read_text())
    text = json.dumps(schema)
    assert '"knife_crime"' in text and '"E09000033"' in text and '"E09000001"' not in text
    assert schema["additionalProperties"] is False
    assert len(list(SCHEMA_DIR.glob("*.json"))) == len(EVENT_TYPES)
