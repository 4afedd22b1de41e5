"""A real single-node Apache Kafka 4.x broker for development and tests.

Why this exists: the pipeline's tests must run against the real broker (its
protocol versions, idempotence and restart behaviour), but the machines have
no Docker and reach no download site other than package registries. So the
broker's jars come from Maven Central through ``mvn`` (``broker.pom.xml``
beside this file), and the broker runs as ``java -cp <jars> kafka.Kafka``.

One broker runs in KRaft combined mode (broker and controller in one JVM,
node id 1) on 127.0.0.1. Everything it owns lives in its data dir::

    credentials.json    the service principals' passwords (0600), made at the first format
    server.properties   written (0600) on every start from BrokerConfig; holds the
                        broker's own login, hence private
    log4j2.properties   logging goes to stdout, which is broker.log
    broker.log          the broker's (and the storage tool's) output, appended
    broker.pid          the JVM's pid while it runs (for status/stop from a CLI)
    kafka-logs/         the topic data and KRaft metadata log; kept by restarts

Authentication and authorisation. The client listener (``CLIENT``) speaks
SASL_PLAINTEXT on loopback and accepts only SCRAM-SHA-512; there is no
PLAINTEXT listener, so no anonymous client gets past the handshake. ACLs are
enforced by KRaft's ``StandardAuthorizer`` with
``allow.everyone.if.no.acl.found=false``: a principal may do only what an ACL
grants it (``pipelines.streaming.access``). The super users are ``admin`` and
``controller``, nobody else -- in particular not ``User:ANONYMOUS``, which
KRaft set-ups often make a super user so that a PLAINTEXT controller
listener works. Here the controller listener also requires SASL, with the
PLAIN mechanism (SCRAM cannot authenticate controllers: SCRAM credentials
live in the metadata log the controller is about to read), and its one user
``controller`` is defined in the listener's JAAS config, so only a process
that can read this 0600 data dir can use it. The first SCRAM users (admin,
worker, collector) are created by ``kafka-storage format --add-scram``; the
format command takes them from a java ``@argfile`` (0600, deleted after), so
``ps`` never shows a password. Senders are added later, over the Admin API.

From the command line: ``planning broker start|stop|status`` (``pipelines/cli/stream.py``), on
``$PLANNING_HOME/kafka``.
"""

from __future__ import annotations

from kafka import KafkaAdminClient

import base64
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.streaming import credentials
from pipelines.streaming.credentials import CONTROLLER_PRINCIPAL, MECHANISM, KafkaLogin

POM = Path(__file__).with_name("broker.pom.xml")

# kafka.Kafka is the server; StorageTool formats the KRaft metadata log before first start.
SERVER_CLASS = "kafka.Kafka"
STORAGE_TOOL_CLASS = "kafka.tools.StorageTool"

# 512 MiB is plenty for a dev/test broker and leaves room for tests on a 2-core, 24 GiB machine.
JVM_OPTIONS = (
    "-Xms512m",
    "-Xmx512m",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
)

# Log4j's own shutdown hook is disabled so the broker's shutdown is still logged.
LOG4J2_PROPERTIES = """\
status = warn
shutdownHook = disable
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.out.ref = out
logger.request.name = kafka.request.logger
logger.request.level = warn
"""

AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
CLIENT_LISTENER = "CLIENT"

LOG_TAIL_LINES = 40
PID_FILE = "broker.pid"


class BrokerError(RuntimeError):
    """The broker could not be resolved, started or stopped; the message says why."""


@dataclass
class BrokerConfig:
    """Where a broker keeps its data and which loopback ports it listens on."""

    data_dir: Path
    port: int = 9092
    controller_port: int = 9093
    host: str = "127.0.0.1"
    # Where the resolved classpath is cached; None means the user's cache dir,
    # so fresh data dirs (one per test session) don't pay for mvn again.
    cache_dir: Path | None = None

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).resolve()

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "kafka-logs"

    @property
    def properties_file(self) -> Path:
        return self.data_dir / "server.properties"

    @property
    def log4j_file(self) -> Path:
        return self.data_dir / "log4j2.properties"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "broker.log"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / PID_FILE

    @property
    def credentials_file(self) -> Path:
        return self.data_dir / credentials.CREDENTIALS_FILE

    def passwords(self) -> dict[str, str]:
        """The service principals' passwords, made on first use (0600 file in the data dir)."""
        return credentials.generate(self.credentials_file)

    def login(self, role: str = "admin") -> KafkaLogin:
        """How a service principal of this broker logs in (from its credentials file)."""
        return KafkaLogin(role, self.passwords()[role])

    def server_properties(self) -> dict[str, str]:
        """KRaft combined mode with a dynamic quorum of one (formatted with --standalone), SCRAM and ACLs."""
        client = f"{self.host}:{self.port}"
        controller = f"{self.host}:{self.controller_port}"
        passwords = self.passwords()
        admin, controller_password = passwords["admin"], passwords[CONTROLLER_PRINCIPAL]
        return {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.bootstrap.servers": controller,
            "listeners": f"{CLIENT_LISTENER}://{client},CONTROLLER://{controller}",
            "advertised.listeners": f"{CLIENT_LISTENER}://{client},CONTROLLER://{controller}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": CLIENT_LISTENER,
            "listener.security.protocol.map": f"CONTROLLER:SASL_PLAINTEXT,{CLIENT_LISTENER}:SASL_PLAINTEXT",
            # clients: SCRAM only; the broker talks to itself as admin
            "sasl.enabled.mechanisms": MECHANISM,
            "listener.name.client.sasl.enabled.mechanisms": MECHANISM,
            "sasl.mechanism.inter.broker.protocol": MECHANISM,
            "listener.name.client.scram-sha-512.sasl.jaas.config":
                f'org.apache.kafka.common.security.scram.ScramLoginModule required '
                f'username="admin" password="{admin}";',
            # the controller listener: PLAIN, one user defined right here
            "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
            "sasl.mechanism.controller.protocol": "PLAIN",
            "listener.name.controller.plain.sasl.jaas.config":
                f'org.apache.kafka.common.security.plain.PlainLoginModule required '
                f'username="{CONTROLLER_PRINCIPAL}" password="{controller_password}" '
                f'user_{CONTROLLER_PRINCIPAL}="{controller_password}";',
            "authorizer.class.name": AUTHORIZER,
            "super.users": f"User:admin;User:{CONTROLLER_PRINCIPAL}",
            "allow.everyone.if.no.acl.found": "false",
            "log.dirs": str(self.log_dir),
            "num.partitions": "1",
            # A single broker can hold only one replica of the internal topics.
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            # Tests should not wait 3 s for the first consumer-group rebalance.
            "group.initial.rebalance.delay.ms": "0",
            # After kill() the restarted node cannot re-register until the killed
            # incarnation's session expires (default 9 s); 3 s keeps fault tests quick.
            "broker.session.timeout.ms": "3000",
            "broker.heartbeat.interval.ms": "1000",
            # Topics are created explicitly, so a typo fails instead of making a topic.
            "auto.create.topics.enable": "false",
        }


@dataclass
class BrokerStatus:
    running: bool
    pid: int | None = None
    bootstrap: str | None = None


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "planning-pipeline" / "kafka"


def _require(program: str) -> str:
    path = shutil.which(program)
    if path is None:
        hint = {"java": "install a Java 17+ runtime (apt-get install openjdk-17-jre-headless)",
                "mvn": "install Maven (apt-get install maven)"}.get(program, "")
        raise BrokerError(f"{program} not found on PATH: {hint}")
    return path


def resolve_classpath(cache_dir: Path, pom: Path = POM) -> str:
    """The broker's classpath, resolved by mvn once per version of the pom.

    The cache file is named after the pom's sha256, so editing the pom (e.g. a
    Kafka upgrade) re-resolves; so does a cached jar gone from ~/.m2.
    """
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()[:16]
    cache_file = Path(cache_dir) / f"classpath-{digest}.txt"
    if cache_file.exists():
        classpath = cache_file.read_text().strip()
        if classpath and all(Path(jar).exists() for jar in classpath.split(os.pathsep)):
            return classpath

    mvn = _require("mvn")
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    partial = cache_file.with_suffix(f".{os.getpid()}.tmp")
    command = [mvn, "-B", "-q", "-f", str(pom), "dependency:build-classpath",
               f"-Dmdep.outputFile={partial}"]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0 or not partial.exists():
        partial.unlink(missing_ok=True)
        output = _tail(re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr).splitlines())
        raise BrokerError(f"mvn could not resolve the Kafka broker's jars from {pom} "
                          f"(exit {result.returncode}); its output ends with:\n{output}")
    classpath = partial.read_text().strip()
    _check_main_classes(classpath)
    os.replace(partial, cache_file)  # atomic: concurrent sessions never read half a file
    return classpath


def _check_main_classes(classpath: str) -> None:
    """Fail now, not at java launch, if the pom stopped providing the broker's main classes."""
    wanted = {name.replace(".", "/") + ".class" for name in (SERVER_CLASS, STORAGE_TOOL_CLASS)}
    for jar in classpath.split(os.pathsep):
        if "kafka" in Path(jar).name:
            with zipfile.ZipFile(jar) as archive:
                wanted -= set(archive.namelist())
    if wanted:
        raise BrokerError(f"the classpath resolved from {POM} lacks {sorted(wanted)}")


def _tail(lines: list[str], count: int = LOG_TAIL_LINES) -> str:
    return "\n".join(lines[-count:]) or "(empty)"


def _log_tail(path: Path) -> str:
    try:
        return _tail(path.read_text(errors="replace").splitlines())
    except FileNotFoundError:
        return "(no log file)"


def _random_cluster_id() -> str:
    """Like Kafka's Uuid.randomUuid(): 16 random bytes, URL-safe base64, no leading '-'."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):
            return cluster_id


def free_ports(count: int) -> list[int]:
    """Distinct loopback ports free right now (all held open together, so no duplicates)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _ensure_port_free(host: str, port: int) -> None:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the JVM does
        try:
            probe.bind((host, port))
        except OSError as error:
            raise BrokerError(f"cannot start a broker on {host}:{port}: {error.strerror}") from None


def _pid_alive(pid: int) -> bool:
    """True while pid is a live (not zombie) Kafka server process."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    # The cmdline check guards against a stale pid file whose pid was reused.
    return state != "Z" and SERVER_CLASS.encode() in cmdline.split(b"\0")


def _read_pid(data_dir: Path) -> int | None:
    try:
        return int((Path(data_dir) / PID_FILE).read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


@dataclass
class Broker:
    """A running broker started by start(); stop(), kill() and restart() control it."""

    config: BrokerConfig
    classpath: str
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def bootstrap(self) -> str:
        return self.config.bootstrap

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Block until the broker answers a DescribeCluster as an unfenced broker."""
        deadline = time.monotonic() + timeout
        last_error = "no attempt made"
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise BrokerError(
                    f"broker exited with code {self.process.returncode} before becoming ready; "
                    f"last lines of {self.config.log_file}:\n{_log_tail(self.config.log_file)}")
            try:
                _probe(self.config.host, self.config.port, self.config.login())
                return
            except Exception as error:  # any failure just means "not yet"
                last_error = f"{type(error).__name__}: {error}"
                time.sleep(0.25)
        raise BrokerError(
            f"broker did not become ready in {timeout:.0f} s at {self.bootstrap} ({last_error}); "
            f"last lines of {self.config.log_file}:\n{_log_tail(self.config.log_file)}")

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM for a clean shutdown (flushes logs, ends the leader epoch); SIGKILL after timeout."""
        if self.process is not None:
            _terminate(self.process.pid, timeout, self.process)
            self.process = None
        self.config.pid_file.unlink(missing_ok=True)

    def kill(self) -> None:
        """SIGKILL, as a crash would: for fault-tolerance tests."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None
        self.config.pid_file.unlink(missing_ok=True)

    def restart(self, timeout: float = 60.0) -> None:
        """Stop (if running) and start again on the same data dir and ports."""
        self.stop()
        self.process = _launch(self.config, self.classpath)
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.kill()
            raise


def _probe(host: str, port: int, login: KafkaLogin) -> None:
    """Raise unless the admin can log in and fetch cluster metadata showing an unfenced broker."""

    # A plain connect first: cheap, and spares kafka-python's retry logging while the JVM boots.
    socket.create_connection((host, port), timeout=1).close()
    admin = KafkaAdminClient(bootstrap_servers=f"{host}:{port}", bootstrap_timeout_ms=3000,
                             request_timeout_ms=5000, client_id="broker-readiness-probe",
                             **login.kafka_python())
    try:
        cluster = admin.describe_cluster()
    finally:
        admin.close()
    if not any(not broker.get("is_fenced", False) for broker in cluster["brokers"]):
        raise BrokerError(f"no unfenced broker yet: {cluster['brokers']}")


def _terminate(pid: int, timeout: float, process: subprocess.Popen[bytes] | None = None) -> None:
    if process is not None and process.poll() is not None:
        return  # already exited (and reaped): nothing to signal
    try:
        os.kill(pid, signal.SIGTERM)
        if _wait_gone(pid, timeout, process):
            return
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    if not _wait_gone(pid, 10.0, process):
        raise BrokerError(f"broker pid {pid} survived SIGKILL")


def _wait_gone(pid: int, timeout: float, process: subprocess.Popen[bytes] | None) -> bool:
    if process is not None:  # our child: wait() also reaps it
        try:
            process.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            return True
        time.sleep(0.1)
    return False


def _write_config(config: BrokerConfig) -> None:
    config.data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(config.data_dir, 0o700)  # the broker's passwords and data are the data team's alone
    lines = [f"{key}={value}" for key, value in config.server_properties().items()]
    credentials.write_private(config.properties_file, "# Written by pipelines/streaming/broker.py on each start.\n"
                              + "\n".join(lines) + "\n")
    config.log4j_file.write_text(LOG4J2_PROPERTIES)


def _java_command(config: BrokerConfig, classpath: str, main_class: str) -> list[str]:
    return [_require("java"), *JVM_OPTIONS, f"-Dlog4j2.configurationFile={config.log4j_file}",
            "-cp", classpath, main_class]


def _format_storage(config: BrokerConfig, classpath: str) -> None:
    """Format the log dir once, with the service principals' SCRAM users; a formatted dir keeps its
    cluster id and users across restarts."""
    if (config.log_dir / "meta.properties").exists():
        return
    passwords = config.passwords()
    scram = [f"{MECHANISM}=[name={name},password={passwords[name]}]" for name in credentials.SERVICE_PRINCIPALS]
    arguments = [*JVM_OPTIONS, f"-Dlog4j2.configurationFile={config.log4j_file}", "-cp", classpath,
                 STORAGE_TOOL_CLASS, "format", "--config", str(config.properties_file),
                 "--cluster-id", _random_cluster_id(),
                 "--standalone",  # 4.x: a dynamic quorum of this one controller
                 *(part for user in scram for part in ("--add-scram", user))]
    with config.log_file.open("ab") as log, _argfile(config.data_dir, arguments) as argfile:
        log.write(f"\n=== formatting {config.log_dir} ===\n".encode())
        log.flush()
        result = subprocess.run([_require("java"), f"@{argfile}"], stdout=log, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        raise BrokerError(f"kafka storage format failed (exit {result.returncode}); "
                          f"last lines of {config.log_file}:\n{_log_tail(config.log_file)}")


@contextmanager
def _argfile(directory: Path, arguments: list[str]):
    """A java @argfile (0600) holding ``arguments``: the JVM reads them, ``ps`` shows only ``@file``."""
    path = directory / f"format.{os.getpid()}.args"
    quoted = ('"' + argument.replace("\\", "\\\\").replace('"', '\\"') + '"' for argument in arguments)
    credentials.write_private(path, "\n".join(quoted) + "\n")
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def _launch(config: BrokerConfig, classpath: str) -> subprocess.Popen[bytes]:
    """Start the JVM in its own session, so it outlives a CLI and ignores the terminal's ^C."""
    _ensure_port_free(config.host, config.port)
    _ensure_port_free(config.host, config.controller_port)
    _write_config(config)
    _format_storage(config, classpath)
    with config.log_file.open("ab") as log:
        log.write(f"\n=== starting broker at {config.bootstrap} ===\n".encode())
        log.flush()
        process = subprocess.Popen(
            [*_java_command(config, classpath, SERVER_CLASS), str(config.properties_file)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            cwd=config.data_dir, start_new_session=True)
    config.pid_file.write_text(f"{process.pid}\n")
    return process


def start(config: BrokerConfig, timeout: float = 60.0) -> Broker:
    """Start a broker and return once a client can use it (BrokerError otherwise)."""
    running = status(config.data_dir)
    if running.running:
        raise BrokerError(f"a broker is already running from {config.data_dir} "
                          f"(pid {running.pid}, {running.bootstrap})")
    classpath = resolve_classpath(config.cache_dir or default_cache_dir())
    broker = Broker(config, classpath, _launch(config, classpath))
    try:
        broker.wait_ready(timeout)
    except BaseException:
        broker.kill()
        raise
    return broker


def status(data_dir: Path) -> BrokerStatus:
    """Whether the broker recorded in data_dir's pid file is running, and where."""
    pid = _read_pid(data_dir)
    if pid is None or not _pid_alive(pid):
        return BrokerStatus(running=False)
    return BrokerStatus(running=True, pid=pid, bootstrap=_bootstrap_from(Path(data_dir)))


def _bootstrap_from(data_dir: Path) -> str | None:
    for line in (data_dir / "server.properties").read_text().splitlines():
        if line.startswith("listeners="):
            for listener in line.partition("=")[2].split(","):
                if listener.startswith(f"{CLIENT_LISTENER}://"):
                    return listener.removeprefix(f"{CLIENT_LISTENER}://")
    return None


def stop_from_pidfile(data_dir: Path, timeout: float = 30.0) -> bool:
    """Stop the broker recorded in data_dir's pid file; False if none was running."""
    current = status(data_dir)
    pid_file = Path(data_dir) / PID_FILE
    if not current.running or current.pid is None:
        pid_file.unlink(missing_ok=True)
        return False
    _terminate(current.pid, timeout)
    pid_file.unlink(missing_ok=True)
    return True
