"""Which Kafka topic an event travels on, and under which key.

The routing is part of the contract, so it lives in ``events/`` where both
senders (``events.emitter``) and the pipeline (``pipelines.streaming.topics``, the
stream worker) can import it; nothing here needs Kafka.

One raw topic per event *family*: the families differ in volume, in who
sends them, and above all in whether personal data travels on them, which
decides how long the broker may keep them (see ``pipelines.streaming.topics``).

The partition key is ``"{cycle}/{borough}"`` when the payload names a single
borough, else ``"{cycle}"``. Kafka keeps order within a partition, so
everything about one borough in one cycle (a CDRP audit and the audit that
supersedes it, two profiles of the same borough) is read in the order it was
sent, and process events of a cycle (opened, approved, signed off, adopted,
published) are read in timetable order. Order *across* topics is not
promised and nothing relies on it: the store orders by its own position and
projections resolve supersession by ``occurred_at``.
"""

from __future__ import annotations

import os
from typing import Any


DEFAULT_PREFIX = "planning"
PREFIX_ENV = "PLANNING_TOPIC_PREFIX"

# family -> the event types it carries (every event type in exactly one family)
FAMILIES: dict[str, tuple[str, ...]] = {
    "consultation": ("consultation.response_received",),
    "survey": ("survey.response_recorded",),
    "partnership": ("cdrp.audit_submitted", "borough.profile_recorded", "group.meeting_held"),
    "timetable": (
        "cycle.opened",
        "programme.approved",
        "stage.signed_off",
        "feedback.published",
        "priorities.adopted",
        "plan.published",
    ),
    "corrections": ("event.retracted", "respondent.erasure_requested"),
}
DEAD_LETTER_FAMILY = "deadletters"

# That every event type of the contract has exactly one family is tests/events/test_routing.py's to check: this
# module does not load the contract, so that every `planning` command's parser (which reads MAX_PARTITIONS) stays light.
_FAMILY_OF: dict[str, str] = {t: family for family, types in FAMILIES.items() for t in types}


class UnknownEventType(ValueError):
    pass


def topic_prefix(prefix: str | None = None) -> str:
    """The namespace of the topics: ``planning`` unless ``$PLANNING_TOPIC_PREFIX`` says otherwise
    (one cluster can then carry a test or staging pipeline beside the real one)."""
    return prefix or os.environ.get(PREFIX_ENV) or DEFAULT_PREFIX


def family_of(event_type: str) -> str:
    try:
        return _FAMILY_OF[event_type]
    except KeyError:
        raise UnknownEventType(f"event_type: {event_type!r} is not an event type") from None


def topic_for(event_type: str, prefix: str | None = None) -> str:
    """``consultation.response_received`` -> ``planning.consultation``."""
    return f"{topic_prefix(prefix)}.{family_of(event_type)}"


def raw_topics(prefix: str | None = None) -> list[str]:
    """Every raw topic, in family order."""
    return [f"{topic_prefix(prefix)}.{family}" for family in FAMILIES]


def dead_letter_topic(prefix: str | None = None) -> str:
    return f"{topic_prefix(prefix)}.{DEAD_LETTER_FAMILY}"


DEFAULT_PARTITIONS = 3
MAX_PARTITIONS = 1_000  # far beyond any borough-keyed stream; a typo like 30000 is refused, not created
PARTITIONS_ENV = "PLANNING_TOPIC_PARTITIONS"


class PartitionsRefused(ValueError):
    """``$PLANNING_TOPIC_PARTITIONS`` is set to something that is not a number of partitions."""


def default_partitions() -> int:
    """``$PLANNING_TOPIC_PARTITIONS``, else ``DEFAULT_PARTITIONS``; a value that is not a whole number from 1 to
    ``MAX_PARTITIONS`` is refused by name before any topic is created."""
    configured = (os.environ.get(PARTITIONS_ENV) or "").strip()
    if not configured:
        return DEFAULT_PARTITIONS
    if not configured.isdigit() or not 1 <= int(configured) <= MAX_PARTITIONS:
        raise PartitionsRefused(f"{PARTITIONS_ENV}: {configured[:40]!r} is not a whole number from 1 to {MAX_PARTITIONS:,}; "
                         f"set it to the partitions new topics should have, or unset it for {DEFAULT_PARTITIONS}")
    return int(configured)


def partition_key(event: dict[str, Any]) -> str:
    """``"{cycle}/{borough}"`` when the payload has one borough, else ``"{cycle}"``."""
    cycle = str(event.get("cycle", ""))
    payload = event.get("payload")
    borough = payload.get("borough") if isinstance(payload, dict) else None
    return f"{cycle}/{borough}" if isinstance(borough, str) and borough else cycle


# --- who sent it: topics of their own ----------------------------------------------------------
#
# A consumer never learns which principal produced a message, and a header or field a sender
# writes proves nothing. So each registered sender writes only topics of its own,
# ``{prefix}.from.{sender}.{family}`` (the broker's ACLs let no other principal write them), and the
# worker reads the sender from the topic's name. The HTTP collector, which authenticates senders
# itself, writes ``{prefix}.collector.{family}`` with the sender in the ``planning-sender`` header;
# only the collector's principal may write those topics, so only there is the header believed.

SENDERS_SEGMENT = "from"
COLLECTOR_SEGMENT = "collector"
SENDER_HEADER = "planning-sender"


def sender_topic_prefix(sender: str, prefix: str | None = None) -> str:
    """``cdrp-harrow`` -> ``planning.from.cdrp-harrow.`` (sender names hold no dots)."""
    return f"{topic_prefix(prefix)}.{SENDERS_SEGMENT}.{sender}."


def sender_topic(sender: str, event_type: str, prefix: str | None = None) -> str:
    """(``cdrp-harrow``, ``cdrp.audit_submitted``) -> ``planning.from.cdrp-harrow.partnership``."""
    return sender_topic_prefix(sender, prefix) + family_of(event_type)


def collector_topic(event_type: str, prefix: str | None = None) -> str:
    """``consultation.response_received`` -> ``planning.collector.consultation``."""
    return f"{topic_prefix(prefix)}.{COLLECTOR_SEGMENT}.{family_of(event_type)}"


def sender_of_topic(topic: str, prefix: str | None = None) -> str | None:
    """The sender whose own topic this is (``planning.from.cdrp-harrow.partnership`` -> ``cdrp-harrow``), else None."""
    head = f"{topic_prefix(prefix)}.{SENDERS_SEGMENT}."
    if not topic.startswith(head):
        return None
    sender, dot, family = topic[len(head):].partition(".")
    return sender if dot and sender and family in FAMILIES else None


def collector_topics(prefix: str | None = None) -> list[str]:
    """Every collector topic, in family order (the worker reads them all)."""
    return [f"{topic_prefix(prefix)}.{COLLECTOR_SEGMENT}.{family}" for family in FAMILIES]


def is_collector_topic(topic: str, prefix: str | None = None) -> bool:
    """Whether ``topic`` is one of the collector's, the only topics whose ``planning-sender`` header is believed."""
    return topic in collector_topics(prefix)
