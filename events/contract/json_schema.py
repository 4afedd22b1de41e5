"""JSON Schema files for non-Python senders, exported from the models.

``python -m events.contract.json_schema`` rewrites ``events/contract/schemas/``; a test fails
when the committed files drift from the models. The files state every bound
and written form the pipeline checks (patterns, formats, lengths, ranges), so a
sender's validator accepts what the pipeline accepts; the few rules JSON Schema
cannot say (distinct themes, ranks 1..n, not in the future…) are enforced by the
pipeline and named in each schema's description.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from events.contract.models import ENVELOPES

SCHEMA_DIR = Path(__file__).parent / "schemas"
CROSS_FIELD_RULES = (
    "Also enforced by the pipeline (docs/events.md, 'Rules only the pipeline checks'): occurred_at not more "
    "than 5 minutes in the future, the cycle's second year following the first, themes, priorities, stages, "
    "target boroughs and scope/theme pairs distinct, ranks exactly 1..n, period_end and due_on not before "
    "period_start and opens_on, integers written without a fraction or exponent (1, not 1.0 or 1e0), "
    "JSON text without lone surrogates."
)


def schema_for(event_type: str) -> dict[str, Any]:
    schema = ENVELOPES[event_type].model_json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"urn:planning:event:{event_type}:v1",
        **schema,
        "title": event_type,
        "description": CROSS_FIELD_RULES,
    }


def rendered() -> dict[str, str]:
    """file name -> exact file content."""
    return {f"{t}.json": json.dumps(schema_for(t), indent=2, sort_keys=True) + "\n" for t in ENVELOPES}


def write(directory: Path = SCHEMA_DIR) -> list[Path]:
    directory.mkdir(exist_ok=True)
    paths = []
    for name, content in rendered().items():
        path = directory / name
        path.write_text(content)
        paths.append(path)
    return paths


if __name__ == "__main__":
    for written in write():
        print(written)
    sys.exit(0)
