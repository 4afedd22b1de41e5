"""Who may do what on the broker: a Kafka user and ACLs per sender, and the services' ACLs.

A sender's identity on Kafka is its SCRAM user, named after the sender, whose
password is the sender's secret (the same secret ``planning serve`` takes as a
bearer token). The user may WRITE exactly the topics ``{prefix}.from.{sender}.{family}``
of the families its granted event types belong to (LITERAL ACLs, one per
topic), and nothing else: the broker refuses a write elsewhere with
``TopicAuthorizationFailed``. The worker then learns the sender from the
topic's name, which the sender cannot choose, and still checks each event's
type and borough against the grants (``events.senders.grants``), since a
topic carries a whole family.

The registry (``events.senders``) is the source of truth and keeps only a hash
of each secret; so the broker can be told about a sender only at the moment
its secret exists in plaintext: when ``planning senders add`` or ``rotate``
prints it (``provision``). ``withdraw`` (``revoke``) disables the user (its
credential becomes a random password nobody keeps; see ``_disable_user``) and
deletes its ACLs at once: a revoked sender's next write is refused. ``sync``, run when a
broker starts for a home, removes users and ACLs of senders the registry no
longer has active; it cannot add any (no plaintext secret), and says which
active senders have no Kafka user (rotate them to give them one).

The service principals' ACLs are granted with the topics (``pipelines.streaming.acls``).
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from kafka.admin import (
    ACL,
    ACLFilter,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    KafkaAdminClient,
    ResourcePatternFilter,
    ResourceType,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

from events.home import PlanningHome
from events.routing import sender_of_topic
from pipelines.streaming.acls import AccessError, allow, create_acls, principal
from pipelines.streaming.credentials import PASSWORD_ENV, SERVICE_PRINCIPALS, USER_ENV, KafkaLogin, local_login, service_login
from pipelines.streaming.topics import admin_client, create_topics, sender_specs

# SCRAM's iteration count for sender users: Kafka's minimum is 4096; more slows guessing from a stolen hash.
SCRAM_ITERATIONS = 8192
WITHDRAWN_ITERATIONS = 4097  # marks a withdrawn sender's credential: a random password nobody keeps
ACL_TIMEOUT = 30.0  # seconds for the broker to apply an ACL change the controller has committed


class SenderLike(Protocol):
    """What provisioning needs of ``events.senders.registry.Sender``."""

    name: str
    event_types: frozenset[str]
    active: bool


@dataclass(frozen=True)
class BrokerAccess:
    """Where the broker is, how the admin logs in, and which topic prefix the pipeline uses."""

    bootstrap: str
    login: KafkaLogin
    prefix: str | None = None

    @classmethod
    def of_home(cls, home: PlanningHome, prefix: str | None = None) -> BrokerAccess | None:
        """The broker of ``home``: its local broker when one runs (``planning broker start``/``planning up``),
        else the one ``$PLANNING_KAFKA`` names when the environment gives the admin's login
        (``$PLANNING_KAFKA_USER=admin``, as compose's kafka-init has); None when neither."""
        from pipelines.streaming.broker import status

        current = status(home.kafka)
        if current.running and current.bootstrap:
            return cls(current.bootstrap, local_login("admin", home.kafka), prefix)
        bootstrap = os.environ.get("PLANNING_KAFKA")
        if bootstrap and os.environ.get(USER_ENV) == "admin" and os.environ.get(PASSWORD_ENV):
            return cls(bootstrap, service_login("admin"), prefix)
        return None

    @classmethod
    def from_env(cls, bootstrap: str, prefix: str | None = None) -> BrokerAccess:
        """A broker named by address, the admin's login from the environment (``service_login``)."""
        return cls(bootstrap, service_login("admin"), prefix)

    def admin(self) -> KafkaAdminClient:
        return admin_client(self.bootstrap, self.login, client_id="planning-access")


def sender_acls(sender: SenderLike, prefix: str | None = None) -> list[ACL]:
    """WRITE on each of the sender's own topics, and nothing else."""
    return [allow(sender.name, ACLOperation.WRITE, ResourceType.TOPIC, spec.name)
            for spec in sender_specs(sender.name, sender.event_types, prefix)]


def _check_name(name: str) -> None:
    if name in SERVICE_PRINCIPALS or name == "controller" or "." in name or not name:
        raise AccessError(f"{name!r} cannot be a sender's Kafka user: it is a service principal or not a sender name")


def provision(access: BrokerAccess, sender: SenderLike, secret: str) -> list[str]:
    """Give ``sender`` its Kafka user (password: its secret), its topics, and WRITE on exactly those.

    Idempotent, and also what ``rotate`` calls: the user's password is replaced (new connections need
    the new secret) and ACLs of families no longer granted are removed. Returns the sender's topics."""
    _check_name(sender.name)
    if not sender.active:
        raise AccessError(f"sender {sender.name} is revoked: it gets no Kafka user")
    specs = sender_specs(sender.name, sender.event_types, access.prefix)
    admin = access.admin()
    try:
        _upsert_user(admin, sender.name, secret)
        create_topics(admin, specs)
        wanted = sender_acls(sender, access.prefix)
        for acl in _acls_of(admin, sender.name):
            if acl.resource_pattern not in {w.resource_pattern for w in wanted}:
                _delete_acl(admin, acl)
        if wanted:
            create_acls(admin, wanted)
        _await(lambda: {a.resource_pattern for a in _acls_of(admin, sender.name)} == {w.resource_pattern for w in wanted},
               f"the broker to apply the ACLs of sender {sender.name}")
    finally:
        admin.close()
    return [spec.name for spec in specs]


def _await(done: Callable[[], bool], what: str, timeout: float = ACL_TIMEOUT) -> None:
    """Wait until the broker shows a change: the controller commits it first, and the broker's authorizer
    applies it a moment later; a client that comes at once must not be refused (nor let in)."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AccessError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


def withdraw(access: BrokerAccess, name: str) -> None:
    """Disable the sender's Kafka user and delete every ACL it holds: its next request is refused."""
    _check_name(name)
    admin = access.admin()
    try:
        _disable_user(admin, name)
    finally:
        admin.close()


def sync(access: BrokerAccess, senders: Iterable[SenderLike]) -> SyncReport:
    """Remove the Kafka users and ACLs of senders that are not active in the registry.

    A user counts as a sender's when the registry knows the name, or when it holds an ACL on this
    prefix's ``from.`` topics; other users (e.g. of another pipeline on the same cluster) are left alone."""
    known = {sender.name: sender for sender in senders}
    active = {name for name, sender in known.items() if sender.active}
    admin = access.admin()
    try:
        users = _live_users(admin)
        holders = {acl.principal.removeprefix("User:") for acl in _acls_on_sender_topics(admin, access.prefix)}
        candidates = (holders | (users & set(known))) - active - set(SERVICE_PRINCIPALS)
        for name in sorted(candidates):
            _disable_user(admin, name)
        without_user = sorted(active - users)
    finally:
        admin.close()
    return SyncReport(removed=sorted(candidates), without_user=without_user)


@dataclass(frozen=True)
class SyncReport:
    removed: list[str]        # users (and their ACLs) deleted: revoked or unknown senders
    without_user: list[str]   # active senders with no Kafka user: `planning senders rotate` gives them one


def _upsert_user(admin: KafkaAdminClient, name: str, secret: str) -> None:
    upsert = UserScramCredentialUpsertion(name, ScramMechanism.SCRAM_SHA_512, secret, iterations=SCRAM_ITERATIONS,
                                          salt=os.urandom(24))
    errors = {user: error for user, error in admin.alter_user_scram_credentials([upsert]).items() if error}
    if errors:
        raise AccessError(f"the broker refused the Kafka user of sender {name}: {errors[name]}")


def _disable_user(admin: KafkaAdminClient, name: str) -> None:
    """Make the user unable to log in, and delete every ACL it holds.

    The credential is overwritten with a random password nobody keeps (marked by its iteration
    count), not deleted: with Kafka 4.4.0, once a SCRAM credential had been deleted, the restarted
    broker refused every SCRAM login, the admin's included (tests/pipelines/streaming/test_broker.py's
    restart, run after a revocation, showed it)."""
    disabled = UserScramCredentialUpsertion(name, ScramMechanism.SCRAM_SHA_512, secrets.token_bytes(32),
                                            iterations=WITHDRAWN_ITERATIONS, salt=os.urandom(24))
    errors = {user: error for user, error in admin.alter_user_scram_credentials([disabled]).items() if error}
    if errors:
        raise AccessError(f"the broker refused to disable the Kafka user of sender {name}: {errors[name]}")
    admin.delete_acls([ACLFilter(principal=principal(name), host=None, operation=ACLOperation.ANY,
                                 permission_type=ACLPermissionType.ANY,
                                 resource_pattern=ResourcePatternFilter(ResourceType.ANY, None,
                                                                        ACLResourcePatternType.ANY))])
    _await(lambda: not _acls_of(admin, name), f"the broker to drop the ACLs of sender {name}")


def _live_users(admin: KafkaAdminClient) -> set[str]:
    """The SCRAM users someone can log in as (not disabled by ``_disable_user``)."""
    return {user for user, info in admin.describe_user_scram_credentials().items()
            if any(c["iterations"] != WITHDRAWN_ITERATIONS for c in info["credential_infos"])}


def _acls_of(admin: KafkaAdminClient, name: str) -> list[ACL]:
    acls, _error = admin.describe_acls(ACLFilter(
        principal=principal(name), host=None, operation=ACLOperation.ANY, permission_type=ACLPermissionType.ANY,
        resource_pattern=ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY)))
    return list(acls)


def _delete_acl(admin: KafkaAdminClient, acl: ACL) -> None:
    admin.delete_acls([ACLFilter(principal=acl.principal, host=acl.host, operation=acl.operation,
                                 permission_type=acl.permission_type,
                                 resource_pattern=ResourcePatternFilter(acl.resource_pattern.resource_type,
                                                                        acl.resource_pattern.resource_name,
                                                                        acl.resource_pattern.pattern_type))])


def _acls_on_sender_topics(admin: KafkaAdminClient, prefix: str | None) -> list[ACL]:
    acls, _error = admin.describe_acls(ACLFilter(
        principal=None, host=None, operation=ACLOperation.ANY, permission_type=ACLPermissionType.ANY,
        resource_pattern=ResourcePatternFilter(ResourceType.TOPIC, None, ACLResourcePatternType.ANY)))
    return [acl for acl in acls if sender_of_topic(acl.resource_pattern.resource_name, prefix) is not None
            and acl.principal.removeprefix("User:") not in SERVICE_PRINCIPALS]


def prepare(access: BrokerAccess, home: PlanningHome) -> tuple[list, SyncReport]:
    """At broker start for a home: the topics and the services' ACLs, then ``sync`` with its registry."""
    from events.senders.registry import SenderRegistry
    from pipelines.streaming.topics import ensure_topics

    states = ensure_topics(access.bootstrap, access.prefix, login=access.login)
    with SenderRegistry.of(home) as registry:
        report = sync(access, registry.all())
    return states, report
