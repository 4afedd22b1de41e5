"""The Kafka topics, as a product decision, and their idempotent creation.

Routing (which topic an event takes, under which key) is part of the event
contract and lives in ``events.routing``; this module decides what each topic
*is* on the broker and creates it. ``pipelines/streaming/asyncapi.yaml`` documents the
same design for other teams; a test keeps the two in step.

=====================================  ==========================================  ===========
topic                                  carries                                     retention
=====================================  ==========================================  ===========
planning.from.{sender}.consultation    consultation.response_received              7 days
planning.from.{sender}.survey          survey.response_recorded                    7 days
planning.from.{sender}.partnership     cdrp.audit_submitted,                       90 days
                                       borough.profile_recorded, group.meeting_held
planning.from.{sender}.timetable       the six process events                      90 days
planning.from.{sender}.corrections     event.retracted,                            7 days
                                       respondent.erasure_requested
planning.collector.{family}            the same, handed over by ``planning serve``  as above
planning.deadletters                   rejected messages with their reasons        30 days
=====================================  ==========================================  ===========

Each sender writes only its own ``from.{sender}`` topics, and only those of
the families its grants reach: they are created with its Kafka user
(``pipelines.streaming.access.provision``), not here. This module creates
the collector topics and the dead-letter topic, and grants the worker and the
collector principals what they need on this prefix (``ensure_topics``,
``pipelines.streaming.acls``).

Why these retentions. The event store is the system of record: once the
worker has appended an event, Kafka's
copy is only a buffer and a replay window. Where personal data travels --
consultation responses (respondent_ref, demographics, comment), PAS
interviews (demographics, special category data, tied to an interview
reference) and erasure requests (the respondent_ref itself) -- the broker
keeps it 7 days: long enough to survive a worker outage over a bank-holiday
weekend, short enough that an erasure request is honoured on the broker
within a week without touching its logs. Partnership and timetable events
carry no personal data and are few; 90 days lets a new consumer replay a
whole fieldwork period. Dead letters are kept 30 days for the data team to
triage; their value holds at most the first 64 KiB of the rejected bytes,
which may include personal data, hence bounded too.

Message size. The contract caps an event at 1 MiB (``events.contract.validation``).
The raw topics accept up to ``RAW_MAX_MESSAGE_BYTES`` (4 MiB) on purpose: an
oversized event then reaches the worker and is dead-lettered with a reason
naming the limit, rather than vanishing with a broker error at a sender that
may not be ours. Beyond 4 MiB the broker itself refuses the message.

Partitions: ``DEFAULT_PARTITIONS`` (3) unless configured (``$PLANNING_TOPIC_PARTITIONS``
or ``--partitions``); the key is ``{cycle}/{borough}`` or ``{cycle}`` so what
must stay in order shares a partition. Partitions can only be added later,
and adding them moves keys, so pick the number before the first cycle.
"""

from __future__ import annotations

from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType
from kafka.errors import TopicAlreadyExistsError, for_code

from collections.abc import Iterable
from dataclasses import dataclass

from events.routing import (
    COLLECTOR_SEGMENT,
    DEAD_LETTER_FAMILY,
    DEFAULT_PARTITIONS,
    FAMILIES,
    collector_topic,
    dead_letter_topic,
    default_partitions,
    partition_key,
    sender_topic_prefix,
    topic_for,
    topic_prefix,
)
from pipelines.streaming.acls import grant_services
from pipelines.streaming.credentials import KafkaLogin, service_login

__all__ = [
    "TopicSpec", "topic_specs", "sender_specs", "ensure_topics", "create_topics", "describe_topics", "topic_for", "partition_key",
    "dead_letter_topic", "DEFAULT_PARTITIONS",
]

DAY_MS = 24 * 60 * 60 * 1000
RAW_MAX_MESSAGE_BYTES = 4 * 1024 * 1024

# family -> (retention in days, carries personal data, what it is for)
FAMILY_POLICY: dict[str, tuple[int, bool, str]] = {
    "consultation": (7, True, "consultation responses from every channel"),
    "survey": (7, True, "Public Attitude Survey interviews"),
    "partnership": (90, False, "CDRP audits, borough profiles and group meetings"),
    "timetable": (90, False, "process events of the planning cycle's timetable"),
    "corrections": (7, True, "retractions and erasure requests"),
    DEAD_LETTER_FAMILY: (30, True, "rejected messages with the reasons, for the data team"),
}


@dataclass(frozen=True)
class TopicSpec:
    name: str
    family: str
    event_types: tuple[str, ...]
    partitions: int
    retention_days: int
    personal_data: bool
    description: str

    @property
    def configs(self) -> dict[str, str]:
        configs = {
            "cleanup.policy": "delete",
            "retention.ms": str(self.retention_days * DAY_MS),
        }
        if self.family != DEAD_LETTER_FAMILY:
            configs["max.message.bytes"] = str(RAW_MAX_MESSAGE_BYTES)
        return configs


def family_spec(name: str, family: str, partitions: int | None = None) -> TopicSpec:
    """A topic carrying ``family`` (a sender's, the collector's, or the dead-letter topic)."""
    days, personal, description = FAMILY_POLICY[family]
    return TopicSpec(name, family, FAMILIES.get(family, ()), partitions or default_partitions(), days, personal,
                     description)


def topic_specs(prefix: str | None = None, partitions: int | None = None) -> list[TopicSpec]:
    """The topics every pipeline has: the collector's, one per family, then the dead-letter topic."""
    prefix = topic_prefix(prefix)
    specs = [family_spec(f"{prefix}.{COLLECTOR_SEGMENT}.{family}", family, partitions) for family in FAMILIES]
    specs.append(family_spec(dead_letter_topic(prefix), DEAD_LETTER_FAMILY, partitions))
    assert all(collector_topic(t, prefix) == s.name for s in specs for t in s.event_types)
    return specs


def sender_specs(sender: str, event_types: Iterable[str], prefix: str | None = None,
                 partitions: int | None = None) -> list[TopicSpec]:
    """A sender's own topics: one for each family its granted event types belong to, in family order."""
    wanted = set(event_types)
    return [family_spec(f"{sender_topic_prefix(sender, prefix)}{family}", family, partitions)
            for family, types in FAMILIES.items() if wanted & set(types)]


@dataclass(frozen=True)
class TopicState:
    name: str
    created: bool  # False: it existed already


def admin_client(bootstrap: str, login: KafkaLogin | None = None, client_id: str = "planning-topics"):
    """A kafka-python admin client logged in as ``admin`` (by default from ``service_login``)."""
    return KafkaAdminClient(bootstrap_servers=bootstrap, client_id=client_id,
                            **(login or service_login("admin")).kafka_python())


def ensure_topics(
    bootstrap: str, prefix: str | None = None, partitions: int | None = None, replication_factor: int = 1,
    login: KafkaLogin | None = None,
) -> list[TopicState]:
    """Create every topic that does not exist yet (existing topics are left as they are), and grant the
    worker and the collector their ACLs on this prefix (``pipelines.streaming.acls``)."""
    specs = topic_specs(prefix, partitions)
    admin = admin_client(bootstrap, login)
    try:
        states = create_topics(admin, specs, replication_factor)
        grant_services(admin, prefix)
    finally:
        admin.close()
    return states


def create_topics(admin: KafkaAdminClient, specs: list[TopicSpec], replication_factor: int = 1) -> list[TopicState]:
    """Create the topics of ``specs`` that do not exist yet and wait until they do."""
    if not specs:
        return []
    request = {
        s.name: {"num_partitions": s.partitions, "replication_factor": replication_factor, "configs": s.configs}
        for s in specs
    }
    response = admin.create_topics(request, timeout_ms=30_000, raise_errors=False)
    states = []
    for topic in response["topics"]:
        error = for_code(topic["error_code"])
        if error is TopicAlreadyExistsError:
            states.append(TopicState(topic["name"], created=False))
        elif topic["error_code"] == 0:
            states.append(TopicState(topic["name"], created=True))
        else:
            raise error(f"cannot create topic {topic['name']}: {topic.get('error_message') or error.__name__}")
    admin.wait_for_topics([s.name for s in specs], timeout_ms=30_000)
    order = [s.name for s in specs]
    return sorted(states, key=lambda state: order.index(state.name))


def describe_topics(bootstrap: str, prefix: str | None = None, login: KafkaLogin | None = None
                    ) -> list[dict[str, object]]:
    """What the broker holds for our topics: partitions and the configs we set (None if missing)."""

    specs = topic_specs(prefix)
    admin = admin_client(bootstrap, login)
    try:
        existing = {t["name"]: t for t in admin.describe_topics([s.name for s in specs]) if t.get("error_code", 0) == 0}
        resources = [ConfigResource(ConfigResourceType.TOPIC, name) for name in existing]
        configs = admin.describe_configs(resources, config_filter="all") if resources else {}
    finally:
        admin.close()
    topic_configs = configs.get("topic", {}) if isinstance(configs, dict) else {}
    rows = []
    for spec in specs:
        topic = existing.get(spec.name)
        values = topic_configs.get(spec.name, {})
        rows.append({
            "name": spec.name,
            "exists": topic is not None,
            "partitions": len(topic["partitions"]) if topic else None,
            "retention.ms": _config_value(values, "retention.ms"),
            "max.message.bytes": _config_value(values, "max.message.bytes"),
            "carries": ", ".join(spec.event_types) or "rejected messages",
            "spec": spec,
        })
    return rows


def _config_value(values: object, key: str) -> str | None:
    if not isinstance(values, dict) or key not in values:
        return None
    value = values[key]
    return value.get("value") if isinstance(value, dict) else str(value)
