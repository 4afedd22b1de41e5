"""The service principals' ACLs on a topic prefix, granted whenever the topics are ensured.

- ``worker``: READ the ``{prefix}.from.`` and ``{prefix}.collector.`` topics
  (prefixed: a sender added later is covered), READ its consumer groups
  ``{prefix}-worker-…``, WRITE the dead-letter topic;
- ``collector``: WRITE the ``{prefix}.collector.`` topics (prefixed).

``admin`` is a super user and needs none. READ and WRITE imply DESCRIBE, and
WRITE on a topic implies the idempotent producer's cluster permission.
Senders' ACLs are ``pipelines.streaming.access``'s.
"""

from __future__ import annotations

from kafka.admin import (
    ACL,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    KafkaAdminClient,
    ResourcePattern,
    ResourceType,
)

from events.routing import COLLECTOR_SEGMENT, SENDERS_SEGMENT, dead_letter_topic, topic_prefix


class AccessError(RuntimeError):
    """The broker refused to create or remove a user or an ACL; the message says which and why."""


def principal(name: str) -> str:
    return f"User:{name}"


def allow(user: str, operation: ACLOperation, resource: ResourceType, name: str,
          pattern: ACLResourcePatternType = ACLResourcePatternType.LITERAL) -> ACL:
    """ALLOW ``user`` to do ``operation`` on the resource, from any host."""
    return ACL(principal=principal(user), host="*", operation=operation,
               permission_type=ACLPermissionType.ALLOW,
               resource_pattern=ResourcePattern(resource, name, pattern))


def create_acls(admin: KafkaAdminClient, acls: list[ACL]) -> None:
    result = admin.create_acls(acls)
    if result["failed"]:
        raise AccessError(f"the broker refused {len(result['failed'])} ACL(s): {result['failed'][0]!r}")


def service_acls(prefix: str | None = None) -> list[ACL]:
    """The worker's and the collector's ACLs on one topic prefix."""
    prefix = topic_prefix(prefix)
    prefixed = ACLResourcePatternType.PREFIXED
    return [
        allow("worker", ACLOperation.READ, ResourceType.TOPIC, f"{prefix}.{SENDERS_SEGMENT}.", prefixed),
        allow("worker", ACLOperation.READ, ResourceType.TOPIC, f"{prefix}.{COLLECTOR_SEGMENT}.", prefixed),
        allow("worker", ACLOperation.READ, ResourceType.GROUP, f"{prefix}-worker-", prefixed),
        allow("worker", ACLOperation.WRITE, ResourceType.TOPIC, dead_letter_topic(prefix)),
        allow("collector", ACLOperation.WRITE, ResourceType.TOPIC, f"{prefix}.{COLLECTOR_SEGMENT}.", prefixed),
    ]


def grant_services(admin: KafkaAdminClient, prefix: str | None = None) -> None:
    """Give the worker and the collector their ACLs on ``prefix`` (creating an existing ACL is a no-op)."""
    create_acls(admin, service_acls(prefix))
