"""pipelines/collector/openapi.yaml is what pipelines.collector.openapi builds, and describes the collector that runs."""

from __future__ import annotations

from pathlib import Path

import yaml
from starlette.routing import Route

from events.contract.models import EVENT_TYPES
from pipelines.collector.app import ERRORS, collector_app
from pipelines.collector.openapi import ANSWERS, PATH, REFUSALS, document, rendered
from pipelines.collector.verdicts import Answer, Rejection
from tests.support.paths import REPO_ROOT


def test_the_checked_in_file_is_what_the_code_builds() -> None:
    assert PATH == REPO_ROOT / "pipelines" / "collector" / "openapi.yaml"
    assert PATH.read_text(encoding="utf-8") == rendered(), "run `python -m pipelines.collector.openapi` and commit"
    assert yaml.safe_load(PATH.read_text(encoding="utf-8")) == document()
    assert document()["openapi"] == "3.1.0"


def test_it_sits_beside_the_asyncapi_document() -> None:
    assert (REPO_ROOT / "pipelines" / "streaming" / "asyncapi.yaml").is_file()
    assert not (REPO_ROOT / "docs" / "openapi.yaml").exists()


def test_every_route_and_method_the_app_serves_is_described() -> None:
    app = collector_app(intake=None)  # type: ignore[arg-type]  # routes only: no request is made
    served = {route.path: set(route.methods or ()) - {"HEAD"} for route in app.routes if isinstance(route, Route)}
    described = {path: {method.upper() for method in operations} for path, operations in document()["paths"].items()}
    assert served == described


def test_every_status_the_collector_answers_is_described() -> None:
    responses = document()["paths"]["/v1/events"]["post"]["responses"]
    assert set(REFUSALS) == set(ERRORS)
    assert set(responses) == {str(status) for status in {*ERRORS, *ANSWERS}}
    refusal = document()["components"]["schemas"]["Refusal"]
    assert refusal["properties"]["error"]["enum"] == [ERRORS[s] for s in sorted(ERRORS)]
    assert "Retry-After" in responses["429"]["headers"] and "WWW-Authenticate" in responses["401"]["headers"]


def test_the_answer_schema_has_the_answers_fields() -> None:
    schemas = document()["components"]["schemas"]
    answer = Answer("r", "s", received=1, rejections=[Rejection(1, None, ("x",))]).to_json()
    assert set(schemas["Answer"]["required"]) == set(schemas["Answer"]["properties"]) == set(answer)
    assert set(schemas["Rejection"]["required"]) == set(answer["rejections"][0])


def test_every_event_schema_referenced_exists() -> None:
    references = [item["$ref"] for item in document()["components"]["schemas"]["Event"]["oneOf"]]
    assert len(references) == len(EVENT_TYPES)
    for reference, event_type in zip(references, EVENT_TYPES):
        path = (PATH.parent / reference).resolve()
        assert path.is_file() and path.name == f"{event_type}.json", reference


def test_the_limits_described_are_the_collectors() -> None:
    from pipelines.collector.limits import MAX_BODY_BYTES, MAX_EVENTS

    text = Path(PATH).read_text(encoding="utf-8")
    assert f"{MAX_BODY_BYTES:,} bytes" in text and f"{MAX_EVENTS:,} events" in text
