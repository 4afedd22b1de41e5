"""Pytest fixtures for tests that need the real Kafka broker (pipelines.streaming.broker).

tests/conftest.py pulls these in with ``from tests.support.kafka import *``.
The broker is never skipped: a test that needs Kafka and cannot get it fails,
with the reason (java or mvn missing, the broker's log tail, ...).

PYTEST_DONT_REWRITE: this module has no asserts to rewrite, and the marker stops
pytest warning that it was imported (by conftest or a test) before being loaded
as a plugin.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pipelines.streaming.broker import Broker, BrokerConfig, free_ports, start

__all__ = ["free_ports", "kafka_broker"]


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """A fresh single-node broker for the session: .bootstrap, .stop(), .kill(), .restart().

    Free ports and a tmp data dir keep it apart from a developer's own broker.
    A test that stops or kills it must restart() it before returning.
    """
    port, controller_port = free_ports(2)
    config = BrokerConfig(data_dir=tmp_path_factory.mktemp("kafka"),
                          port=port, controller_port=controller_port)
    broker = start(config)  # raises BrokerError with the reason; no skip
    try:
        yield broker
    finally:
        broker.stop()
