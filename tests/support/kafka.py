"""Pytest fixtures for tests that need the real Kafka broker (pipelines.streaming.broker).

tests/conftest.py pulls these in with ``from tests.support.kafka import *``.
The broker is never skipped: a test that needs Kafka and cannot get it fails,
with the reason (java or mvn missing, the broker's log tail, ...).

The broker requires SASL/SCRAM and enforces ACLs, as in production. For the
session, ``$PLANNING_KAFKA_CREDENTIALS`` names its credentials file, so every
service client (the worker subprocess, ``ensure_topics``, the admin helpers of
tests.support.stream) logs in as the principal it would be in production.
Senders are registered with ``register_sender``: in a home's registry and on
the broker (a SCRAM user, its topics and their ACLs), as ``planning senders
add`` does while a broker runs.

PYTEST_DONT_REWRITE: this module has no asserts to rewrite, and the marker stops
pytest warning that it was imported (by conftest or a test) before being loaded
as a plugin.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from events.emitter import SenderCredentials
from events.routing import FAMILIES
from events.senders.registry import SenderRegistry
from pipelines.streaming.access import BrokerAccess, provision
from pipelines.streaming.broker import Broker, BrokerConfig, free_ports, start
from pipelines.streaming.credentials import CREDENTIALS_ENV, KafkaLogin

__all__ = ["free_ports", "kafka_broker", "register_sender", "sender_login", "ALL_TYPES", "TEST_SENDER"]

ALL_TYPES = tuple(t for types in FAMILIES.values() for t in types)
TEST_SENDER = "test-sender"


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """A fresh single-node broker for the session: .bootstrap, .stop(), .kill(), .restart(); its admin
    login is ``.config.login()``.

    Free ports and a tmp data dir keep it apart from a developer's own broker.
    A test that stops or kills it must restart() it before returning.
    """
    port, controller_port = free_ports(2)
    config = BrokerConfig(data_dir=tmp_path_factory.mktemp("kafka"),
                          port=port, controller_port=controller_port)
    broker = start(config)  # raises BrokerError with the reason; no skip
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CREDENTIALS_ENV, str(config.credentials_file))
        try:
            yield broker
        finally:
            broker.stop()


def register_sender(broker: Broker, home_root: Path, prefix: str, name: str = TEST_SENDER,
                    event_types: Iterable[str] = ALL_TYPES, boroughs: Iterable[str] | None = None
                    ) -> SenderCredentials:
    """Add a sender to the registry of the home at ``home_root`` and give it its Kafka user, topics and
    ACLs under ``prefix``; its credentials. Every type and every borough unless told otherwise."""
    with SenderRegistry(Path(home_root) / "store") as registry:
        secret = registry.add(name, event_types, boroughs)
        sender = registry.get(name)
    assert sender is not None
    provision(BrokerAccess(broker.bootstrap, broker.config.login(), prefix), sender, secret)
    return SenderCredentials(name, secret)


def sender_login(credentials: SenderCredentials) -> KafkaLogin:
    """A sender's credentials as a login for the raw clients of tests.support.stream."""
    return KafkaLogin(credentials.sender, credentials.secret)
