"""The local broker is a real Kafka: it round-trips records, keeps them over a
restart, and a broker started from the command line can be stopped by pid file.
It takes SASL/SCRAM only and enforces ACLs: anonymous clients and wrong passwords are refused,
no secret is readable by others or shown by ``ps``."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import KafkaTimeoutError

from pipelines.streaming.broker import Broker, status, stop_from_pidfile
from pipelines.streaming.credentials import KafkaLogin
from tests.support.kafka import free_ports
from tests.support.paths import REPO_ROOT
from tests.support.stream import admin

pytestmark = pytest.mark.kafka



def _new_topic(bootstrap: str) -> str:
    """A uniquely named one-partition topic (auto-creation is off on this broker)."""
    name = f"test-broker-{uuid.uuid4().hex[:8]}"
    client = KafkaAdminClient(bootstrap_servers=bootstrap, **admin())
    try:
        client.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])
    finally:
        client.close()
    return name


def _produce(bootstrap: str, topic: str, value: bytes) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, **admin())
    try:
        producer.send(topic, value).get(timeout=30)
    finally:
        producer.close()


def _read_all(bootstrap: str, topic: str) -> list[bytes]:
    """Every record in partition 0, read from the start up to the end offset."""
    partition = TopicPartition(topic, 0)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                             enable_auto_commit=False, **admin())
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


def test_restart_keeps_data_and_logins_even_after_a_revocation(kafka_broker: Broker, tmp_path: Path) -> None:
    """Kafka 4.4.0 refused every SCRAM login after restarting once a credential had been deleted;
    a revoked sender's user is disabled instead (pipelines.streaming.access), and this shows it holds."""
    from pipelines.streaming.access import BrokerAccess, withdraw
    from tests.support.kafka import register_sender, sender_login

    topic = _new_topic(kafka_broker.bootstrap)
    _produce(kafka_broker.bootstrap, topic, b"survives restart")
    kept = register_sender(kafka_broker, tmp_path / "home", "restart", "kept-sender")
    gone = register_sender(kafka_broker, tmp_path / "home", "restart", "gone-sender")
    withdraw(BrokerAccess(kafka_broker.bootstrap, kafka_broker.config.login(), "restart"), gone.sender)
    kafka_broker.restart()
    assert _read_all(kafka_broker.bootstrap, topic) == [b"survives restart"]  # the admin logs in
    _connect(kafka_broker.bootstrap, **sender_login(kept).kafka_python())
    with pytest.raises(KafkaTimeoutError, match="Unable to bootstrap"):
        _connect(kafka_broker.bootstrap, **sender_login(gone).kafka_python())


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
        passwords = json.loads((data_dir / "credentials.json").read_text())
        assert set(passwords) == {"admin", "worker", "collector", "controller"}
        for private in ("credentials.json", "server.properties"):
            assert stat.S_IMODE((data_dir / private).stat().st_mode) == 0o600, private
        assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
        assert not list(data_dir.glob("*.args"))  # the format's argfile is gone
        assert passwords["admin"] not in result.stdout + result.stderr

        assert stop_from_pidfile(data_dir) is True
        assert status(data_dir).running is False
        assert not (data_dir / "broker.pid").exists()
        assert stop_from_pidfile(data_dir) is False
    finally:
        stop_from_pidfile(data_dir)  # never leave a stray JVM behind a failed assert


def _connect(bootstrap: str, **login: object) -> None:
    client = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000, bootstrap_timeout_ms=5000,
                              client_id="test-refused", **login)
    try:
        client.list_topics()
    finally:
        client.close()


REFUSED_LOGIN = "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512"


def test_an_anonymous_client_is_refused(kafka_broker: Broker) -> None:
    """No PLAINTEXT listener: a client without SASL never gets past the handshake."""
    with pytest.raises(KafkaTimeoutError, match="Unable to bootstrap"):
        _connect(kafka_broker.bootstrap)
    _connect(kafka_broker.bootstrap, **admin())  # the same call, logged in, works


def test_a_wrong_password_is_refused(kafka_broker: Broker) -> None:
    before = kafka_broker.config.log_file.read_text(errors="replace").count(REFUSED_LOGIN)
    with pytest.raises(KafkaTimeoutError, match="Unable to bootstrap"):
        _connect(kafka_broker.bootstrap, **KafkaLogin("admin", "not-the-password").kafka_python())
    assert kafka_broker.config.log_file.read_text(errors="replace").count(REFUSED_LOGIN) > before


def test_the_controller_listener_refuses_anonymous_clients_and_nobody_anonymous_is_a_super_user(
        kafka_broker: Broker) -> None:
    properties = dict(line.split("=", 1) for line in kafka_broker.config.properties_file.read_text().splitlines()
                      if "=" in line and not line.startswith("#"))
    assert properties["authorizer.class.name"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    assert properties["super.users"] == "User:admin;User:controller"
    assert properties["allow.everyone.if.no.acl.found"] == "false"
    assert "PLAINTEXT:" not in properties["listener.security.protocol.map"].replace("SASL_PLAINTEXT:", "")
    assert properties["listener.name.client.sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert properties["listener.name.controller.sasl.enabled.mechanisms"] == "PLAIN"
    controller = f"127.0.0.1:{kafka_broker.config.controller_port}"
    with pytest.raises(KafkaTimeoutError, match="Unable to bootstrap"):
        _connect(controller)


def test_no_secret_is_on_a_command_line(kafka_broker: Broker) -> None:
    """`ps` shows every process's arguments to every user: the broker's must hold no password."""
    passwords = json.loads(kafka_broker.config.credentials_file.read_text()).values()
    command_line = Path(f"/proc/{kafka_broker.pid}/cmdline").read_bytes().decode()
    assert "kafka.Kafka" in command_line
    assert not [p for p in passwords if p in command_line]
