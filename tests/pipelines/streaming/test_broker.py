"""The local broker is a real Kafka: it round-trips records, keeps them over a
restart, and a broker started from the command line can be stopped by pid file."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

from pipelines.streaming.broker import Broker, status, stop_from_pidfile
from tests.support.kafka import free_ports
from tests.support.paths import REPO_ROOT

pytestmark = pytest.mark.kafka



def _new_topic(bootstrap: str) -> str:
    """A uniquely named one-partition topic (auto-creation is off on this broker)."""
    name = f"test-broker-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])
    finally:
        admin.close()
    return name


def _produce(bootstrap: str, topic: str, value: bytes) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    try:
        producer.send(topic, value).get(timeout=30)
    finally:
        producer.close()


def _read_all(bootstrap: str, topic: str) -> list[bytes]:
    """Every record in partition 0, read from the start up to the end offset."""
    partition = TopicPartition(topic, 0)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                             enable_auto_commit=False)
    try:
        consumer.assign([partition])
        consumer.seek_to_beginning(partition)
        end = consumer.end_offsets([partition])[partition]
        values: list[bytes] = []
        while consumer.position(partition) < end:
            for records in consumer.poll(timeout_ms=1000).values():
                values.extend(record.value for record in records)
        return values
    finally:
        consumer.close()


def test_produced_message_is_consumed(kafka_broker: Broker) -> None:
    topic = _new_topic(kafka_broker.bootstrap)
    _produce(kafka_broker.bootstrap, topic, b"hello")
    assert _read_all(kafka_broker.bootstrap, topic) == [b"hello"]


def test_restart_keeps_data(kafka_broker: Broker) -> None:
    topic = _new_topic(kafka_broker.bootstrap)
    _produce(kafka_broker.bootstrap, topic, b"survives restart")
    kafka_broker.restart()
    assert _read_all(kafka_broker.bootstrap, topic) == [b"survives restart"]


def test_stop_from_pidfile_stops_a_cli_started_broker(tmp_path: Path) -> None:
    data_dir = tmp_path / "planning-home" / "kafka"  # `planning broker` keeps its data in $PLANNING_HOME/kafka
    port, controller_port = free_ports(2)
    command = [sys.executable, "-m", "pipelines.cli", "broker", "start",
               "--port", str(port), "--controller-port", str(controller_port)]
    try:
        result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
                                env={**os.environ, "PLANNING_HOME": str(data_dir.parent)})
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == f"127.0.0.1:{port}"
        running = status(data_dir)
        assert running.running and running.bootstrap == f"127.0.0.1:{port}"

        assert stop_from_pidfile(data_dir) is True
        assert status(data_dir).running is False
        assert not (data_dir / "broker.pid").exists()
        assert stop_from_pidfile(data_dir) is False
    finally:
        stop_from_pidfile(data_dir)  # never leave a stray JVM behind a failed assert
