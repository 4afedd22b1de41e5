"""pipelines/streaming/asyncapi.yaml describes the topics the code creates and routes to, and its schemas exist."""

from __future__ import annotations

from pathlib import Path

import yaml

from events.contract.models import EVENT_TYPES
from events.routing import collector_topic, partition_key, sender_topic
from pipelines.streaming.topics import sender_specs, topic_specs
from tests.support.events import make_event
from tests.support.paths import REPO_ROOT

DOC_PATH = REPO_ROOT / "pipelines" / "streaming" / "asyncapi.yaml"


def _doc() -> dict:
    return yaml.safe_load(DOC_PATH.read_text())


def _resolve(doc: dict, ref: str) -> dict:
    assert ref.startswith("#/"), ref
    node = doc
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def test_is_asyncapi_3_and_not_at_top_level() -> None:
    assert _doc()["asyncapi"] == "3.0.0"
    assert not (REPO_ROOT / "docs" / "asyncapi.yaml").exists()


def test_every_event_type_maps_to_the_channels_of_its_topics() -> None:
    """A sender's own topic of the event's family, and the collector's."""
    doc = _doc()
    channels_of: dict[str, set[str]] = {}
    for channel in doc["channels"].values():
        for message in channel["messages"].values():
            resolved = _resolve(doc, message["$ref"])
            channels_of.setdefault(resolved["name"], set()).add(channel["address"])
    for event_type in EVENT_TYPES:
        assert channels_of.get(event_type) == {sender_topic("{sender}", event_type, "planning"),
                                               collector_topic(event_type, "planning")}, event_type


def test_sender_channels_name_their_parameter_and_every_server_requires_scram() -> None:
    doc = _doc()
    for channel in doc["channels"].values():
        if "{sender}" in channel["address"]:
            assert channel["parameters"]["sender"]["$ref"] == "#/components/parameters/sender"
    assert doc["components"]["securitySchemes"]["scram"]["type"] == "scramSha512"
    for server in doc["servers"].values():
        assert server["security"] == [{"$ref": "#/components/securitySchemes/scram"}]
    assert "sender" in doc["components"]["schemas"]["deadLetter"]["required"]


def test_channels_match_the_topic_design() -> None:
    channels = {c["address"]: c for c in _doc()["channels"].values()}
    specs = topic_specs("planning", partitions=3) + sender_specs("{sender}", EVENT_TYPES, "planning", partitions=3)
    assert set(channels) == {s.name for s in specs}
    for spec in specs:
        binding = channels[spec.name]["bindings"]["kafka"]
        assert binding["topic"] == spec.name
        assert binding["partitions"] == spec.partitions
        for key, value in spec.configs.items():
            expected = [value] if key == "cleanup.policy" else int(value)
            assert binding["topicConfiguration"][key] == expected, (spec.name, key)


def test_every_referenced_schema_file_exists_and_is_the_event_types_schema() -> None:
    doc = _doc()
    for event_type in EVENT_TYPES:
        message = doc["components"]["messages"][event_type]
        reference = message["payload"]["schema"]["$ref"]
        path = (DOC_PATH.parent / reference).resolve()
        assert path.is_file(), f"{event_type}: {reference} does not exist"
        assert path.name == f"{event_type}.json"


def test_documented_keys_match_the_routing() -> None:
    doc = _doc()
    for event_type in EVENT_TYPES:
        described = doc["components"]["messages"][event_type]["bindings"]["kafka"]["key"]["description"]
        key = partition_key(make_event(event_type))
        expected = "{cycle}/{borough}" if "/" in key else "{cycle}"
        assert f"'{expected}'" in described, (event_type, described)
