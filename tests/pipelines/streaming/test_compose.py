"""The compose stack's files, checked by content: no Docker engine runs here, so what can drift is tested.

docker-compose.yml, the Dockerfile and dagster_home/dagster.compose.yaml must
agree with each other and with the code: pinned images, health checks the
start order waits on, `planning` commands that exist with the options given,
and a Dagster instance config that Dagster itself accepts.
"""

from __future__ import annotations

import re
import shlex
import shutil
import tomllib
from pathlib import Path

import pytest
import yaml
from psycopg.conninfo import conninfo_to_dict

from events.storage.backends import chosen_store

from pipelines.cli.main import _parser
from tests.support.paths import REPO_ROOT

REPO = REPO_ROOT
COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
DOCKERFILE = (REPO / "Dockerfile").read_text()
INSTANCE_CONFIG = REPO / "dagster_home" / "dagster.compose.yaml"
PLANNING_HOME = "/var/lib/planning"
EXACT = re.compile(r"^\d+\.\d+(\.\d+)?(-[a-z0-9.]+)?$")  # 16.10, 4.4.0, 3.11.13-slim-bookworm


def _command(service: str) -> list[str]:
    command = SERVICES[service].get("command")
    return shlex.split(command) if isinstance(command, str) else list(command or [])


def _environment(service: str) -> dict[str, str]:
    env = SERVICES[service].get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def test_every_service_is_present() -> None:
    assert set(SERVICES) == {"kafka-format", "kafka", "kafka-init", "store-init", "worker", "collector", "dagster-webserver",
                             "dagster-daemon", "postgres"}
    assert "version" not in COMPOSE  # the compose spec has no version key


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_every_image_is_pinned_to_an_exact_tag(service: str) -> None:
    image = SERVICES[service]["image"]
    name, _, tag = image.rpartition(":")
    assert name and tag, f"{service}: {image} has no tag"
    assert tag != "latest" and EXACT.match(tag), f"{service}: {image} is not an exact tag"
    if name == "apache/kafka":
        assert re.match(r"^4\.\d+\.\d+$", tag), "Kafka 4.x (KRaft only), exact major.minor.patch"
    if name == "postgres":
        assert re.match(r"^16\.\d+(-[a-z]+)?$", tag), "Postgres 16, exact minor"


def test_the_dockerfile_base_is_pinned_and_installs_the_stack_extra() -> None:
    (_, base) = re.findall(r"^FROM\s+(\S+)", DOCKERFILE, re.MULTILINE)  # the last stage is the image
    name, _, tag = base.partition(":")
    assert name == "python" and re.match(r"^3\.11\.\d+-slim(-[a-z]+)?$", tag), base
    assert "pip install '.[stack]'" in DOCKERFILE
    assert f"PLANNING_HOME={PLANNING_HOME}" in DOCKERFILE
    assert "cp dagster_home/dagster.compose.yaml \"$DAGSTER_HOME/dagster.yaml\"" in DOCKERFILE
    for folder in ("events", "projections", "pipelines", "dagster_home"):
        assert f"COPY {folder} ./{folder}" in DOCKERFILE and (REPO / folder).is_dir()


def test_the_image_has_govuk_frontend_from_the_lock_file_where_the_site_looks() -> None:
    """`planning serve` refuses to start the site without GOV.UK Frontend: a pinned Node stage installs it
    from package-lock.json (no test-only packages) and the image gets that one directory, named by
    $PLANNING_WEB_ASSETS (pipelines/web/app.py)."""
    stage, name = re.findall(r"^FROM\s+(\S+)\s+AS\s+(\S+)", DOCKERFILE, re.MULTILINE)[0]
    node, _, tag = stage.partition(":")
    assert node == "node" and re.match(r"^\d+\.\d+\.\d+-bookworm-slim$", tag), stage
    assert "COPY package.json package-lock.json ./" in DOCKERFILE and "npm ci --omit=dev" in DOCKERFILE
    (assets,) = re.findall(r"PLANNING_WEB_ASSETS=(\S+)", DOCKERFILE)
    assert f"COPY --from={name} /build/node_modules/govuk-frontend {assets}/govuk-frontend" in DOCKERFILE
    lock = (REPO / "package-lock.json").read_text()
    assert '"node_modules/govuk-frontend"' in lock
    assert _environment("collector")["PLANNING_DAGSTER_URL"].startswith("${PLANNING_DAGSTER_URL:-http")  # the builds' run links


def test_the_stack_extra_pins_dagster_postgres_to_the_dagster_release() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    (dagster,) = [d for d in project["dependencies"] if d.startswith("dagster==")]
    major, minor, patch = dagster.removeprefix("dagster==").split(".")
    # Dagster's libraries are versioned 0.(minor + 16).patch beside dagster 1.minor.patch.
    assert project["optional-dependencies"]["stack"] == [f"dagster-postgres==0.{int(minor) + 16}.{patch}"]
    assert major == "1"


def test_health_checks_on_kafka_and_postgres() -> None:
    kafka = SERVICES["kafka"]["healthcheck"]["test"]
    assert kafka == ["CMD", "/bin/bash", "/opt/planning-kafka/healthcheck.sh"]
    script = (REPO / "deploy" / "kafka" / "healthcheck.sh").read_text()
    assert "kafka-broker-api-versions.sh --bootstrap-server localhost:9092 --command-config" in script
    assert "umask 077" in script and "SCRAM-SHA-512" in script
    postgres = SERVICES["postgres"]["healthcheck"]["test"]
    assert "pg_isready" in " ".join(postgres)
    assert SERVICES["dagster-daemon"]["healthcheck"]["test"] == ["CMD", "dagster-daemon", "liveness-check"]


def test_kafka_is_a_single_kraft_node() -> None:
    env = _environment("kafka")
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:9093"
    assert "INTERNAL://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    assert len(env["CLUSTER_ID"]) == 22  # 16 bytes, base64url without padding


def test_every_planning_command_exists_with_its_options() -> None:
    parser = _parser()
    subcommands = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction").choices
    planning = {name: _command(name) for name in SERVICES if _command(name)[:1] == ["planning"]}
    assert set(planning) == {"kafka-init", "store-init", "worker", "collector"}
    for service, command in planning.items():
        assert command[1] in subcommands, f"{service}: planning {command[1]} does not exist"
        args = parser.parse_args(command[1:])  # unknown options exit here
        assert service == "store-init" or args.bootstrap == "kafka:9092"
    assert _command("store-init") == ["planning", "store", "init"]
    assert _command("kafka-init")[1] == "topics" and _command("worker")[1] == "worker" and _command("collector")[1] == "serve"


def test_dagster_commands_use_the_checked_in_workspace() -> None:
    for service in ("dagster-webserver", "dagster-daemon"):
        command = _command(service)
        workspace = command[command.index("-w") + 1]
        assert workspace == "/app/dagster_home/workspace.yaml"
        assert (REPO / "dagster_home" / "workspace.yaml").is_file() and "WORKDIR /app" in DOCKERFILE
    assert _command("dagster-daemon")[:2] == ["dagster-daemon", "run"]
    assert _command("dagster-webserver")[0] == "dagster-webserver"


def test_start_order_waits_on_health_and_completion() -> None:
    def conditions(service: str) -> dict[str, str]:
        return {name: spec["condition"] for name, spec in SERVICES[service]["depends_on"].items()}

    assert conditions("kafka") == {"kafka-format": "service_completed_successfully"}
    assert conditions("kafka-init") == {"kafka": "service_healthy"}
    assert conditions("store-init") == {"postgres": "service_healthy"}
    assert conditions("worker") == {"kafka": "service_healthy", "kafka-init": "service_completed_successfully",
                                    "store-init": "service_completed_successfully"}
    assert conditions("collector") == conditions("worker")
    assert conditions("dagster-webserver") == {"postgres": "service_healthy", "store-init": "service_completed_successfully"}
    assert conditions("dagster-daemon") == conditions("dagster-webserver")
    for once in ("kafka-init", "kafka-format", "store-init"):
        assert SERVICES[once]["restart"] == "no", once


def test_the_worker_and_dagster_share_the_planning_home_volume() -> None:
    assert {"planning-home", "postgres-data", "kafka-data"} <= set(COMPOSE["volumes"])
    for service in ("worker", "collector", "kafka-init", "store-init", "dagster-webserver", "dagster-daemon"):
        assert f"planning-home:{PLANNING_HOME}" in SERVICES[service]["volumes"], service
        assert _environment(service)["PLANNING_HOME"] == PLANNING_HOME
    assert "postgres-data:/var/lib/postgresql/data" in SERVICES["postgres"]["volumes"]
    assert "kafka-data:/var/lib/kafka/data" in SERVICES["kafka"]["volumes"]
    assert "kafka-data:/var/lib/kafka/data" in SERVICES["kafka-format"]["volumes"]
    assert _environment("kafka")["KAFKA_LOG_DIRS"] == "/var/lib/kafka/data"


# --- Kafka with authentication, authorisation and TLS -------------------------------------------------

SECRET = re.compile(r"\$\{(PLANNING_KAFKA_[A-Z_]+|DAGSTER_PG_PASSWORD):\?[^}]+\}")


def _listeners() -> dict[str, str]:
    env = _environment("kafka")
    return dict(pair.split(":", 1) for pair in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))


def test_kafka_takes_scram_only_and_enforces_acls_with_no_anonymous_super_user() -> None:
    env = _environment("kafka")
    assert env["KAFKA_AUTHORIZER_CLASS_NAME"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    assert env["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
    assert env["KAFKA_SUPER_USERS"] == "User:admin;User:controller"
    assert env["KAFKA_SASL_ENABLED_MECHANISMS"] == "SCRAM-SHA-512"
    assert env["KAFKA_LISTENER_NAME_EXTERNAL_SASL_ENABLED_MECHANISMS"] == "SCRAM-SHA-512"
    assert env["KAFKA_LISTENER_NAME_CONTROLLER_SASL_ENABLED_MECHANISMS"] == "PLAIN"
    assert set(_listeners().values()) <= {"SASL_PLAINTEXT", "SASL_SSL"}  # no PLAINTEXT, no SSL without SASL


def test_only_the_tls_listener_is_published_to_the_host() -> None:
    listeners = _listeners()
    ports = {name: address.rsplit(":", 1)[1] for name, address in
             (item.split("://") for item in _environment("kafka")["KAFKA_LISTENERS"].split(","))}
    published = [mapping.rsplit(":", 1)[1] for mapping in SERVICES["kafka"]["ports"]]
    assert published == [ports["EXTERNAL"]] and listeners["EXTERNAL"] == "SASL_SSL"
    assert _environment("kafka")["KAFKA_LISTENER_NAME_EXTERNAL_SSL_KEYSTORE_LOCATION"].startswith("/etc/kafka/tls/")
    for service in SERVICES:
        if service != "kafka":
            assert not any(p.endswith((":9092", ":9093", ":9094")) for p in SERVICES[service].get("ports", [])), service


def test_every_kafka_secret_comes_from_the_environment_and_is_required() -> None:
    text = (REPO / "docker-compose.yml").read_text()
    for service in ("kafka", "kafka-format", "kafka-init", "store-init", "worker", "collector"):
        for key, value in _environment(service).items():
            if "PASSWORD" in key or "JAAS" in key:
                assert SECRET.search(value), f"{service}: {key} is not a required ${{VAR:?}} from the environment"
    for variable in ("PLANNING_KAFKA_ADMIN_PASSWORD", "PLANNING_KAFKA_WORKER_PASSWORD",
                     "PLANNING_KAFKA_COLLECTOR_PASSWORD", "PLANNING_KAFKA_CONTROLLER_PASSWORD",
                     "PLANNING_KAFKA_KEYSTORE_PASSWORD"):
        assert f"${{{variable}:?" in text, variable


def test_the_worker_and_the_topic_init_log_in_as_their_own_principals() -> None:
    assert _environment("worker")["PLANNING_KAFKA_USER"] == "worker"
    assert "PLANNING_KAFKA_WORKER_PASSWORD" in _environment("worker")["PLANNING_KAFKA_PASSWORD"]
    assert _environment("collector")["PLANNING_KAFKA_USER"] == "collector"
    assert "PLANNING_KAFKA_COLLECTOR_PASSWORD" in _environment("collector")["PLANNING_KAFKA_PASSWORD"]
    assert _environment("kafka-init")["PLANNING_KAFKA_USER"] == "admin"
    assert "PLANNING_KAFKA_ADMIN_PASSWORD" in _environment("kafka-init")["PLANNING_KAFKA_PASSWORD"]


def test_the_format_gives_the_service_users_without_a_password_on_a_command_line() -> None:
    assert SERVICES["kafka-format"]["image"] == SERVICES["kafka"]["image"]
    assert SERVICES["kafka-format"]["entrypoint"] == ["/bin/bash", "/opt/planning-kafka/format.sh"]
    script = (REPO / "deploy" / "kafka" / "format.sh").read_text()
    assert 'java "@$work/format.args"' in script and "umask 077" in script
    assert "for user in admin worker collector" in script and "--add-scram" in script


def _env_references(node: object) -> set[str]:
    if isinstance(node, dict):
        if set(node) == {"env"}:
            return {node["env"]}
        return set().union(*(_env_references(v) for v in node.values())) if node else set()
    if isinstance(node, list):
        return set().union(*(_env_references(v) for v in node)) if node else set()
    return set()


def test_the_dagster_instance_config_is_postgres_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dagster._core.instance.config import dagster_instance_config
    from dagster._serdes.config_class import ConfigurableClassData

    raw = yaml.safe_load(INSTANCE_CONFIG.read_text())
    credentials = raw["storage"]["postgres"]["postgres_db"]
    assert all(isinstance(value, dict) and set(value) == {"env"} for key, value in credentials.items() if key != "scheme"), \
        "no credential is written in the file"
    # SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3, which dagster-postgres does not bring.
    assert credentials["scheme"] == "postgresql+psycopg2"
    referenced = _env_references(raw)
    assert referenced == {"DAGSTER_PG_USERNAME", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_HOST", "DAGSTER_PG_DB", "DAGSTER_PG_PORT"}
    for service in ("dagster-webserver", "dagster-daemon"):  # every variable the file reads is set for both
        env = _environment(service)
        assert referenced <= set(env), service
        assert env["DAGSTER_PG_HOST"] == "postgres" and env["DAGSTER_HOME"] == "/opt/dagster/home"
        assert env["DAGSTER_PG_PASSWORD"].startswith("${DAGSTER_PG_PASSWORD:?")  # required, never defaulted
    postgres = _environment("postgres")
    dagster = _environment("dagster-daemon")
    assert postgres["POSTGRES_USER"] == dagster["DAGSTER_PG_USERNAME"] and postgres["POSTGRES_DB"] == dagster["DAGSTER_PG_DB"]
    assert postgres["POSTGRES_PASSWORD"] == dagster["DAGSTER_PG_PASSWORD"]

    # Dagster's own schema accepts it (storage, run queue, launcher, compute logs).
    for name, value in {"DAGSTER_PG_USERNAME": "planning", "DAGSTER_PG_PASSWORD": "x", "DAGSTER_PG_HOST": "postgres",
                        "DAGSTER_PG_DB": "dagster", "DAGSTER_PG_PORT": "5432"}.items():
        monkeypatch.setenv(name, value)
    shutil.copyfile(INSTANCE_CONFIG, tmp_path / "dagster.yaml")
    config, custom_class = dagster_instance_config(str(tmp_path))
    assert custom_class is None
    assert set(config["storage"]) == {"postgres"}
    assert config["run_queue"]["max_concurrent_runs"] == 1
    assert config["run_queue"]["dequeue_interval_seconds"] == 1  # a queued build starts within a second
    assert config["telemetry"]["enabled"] is False
    for key, expected in {"run_launcher": "DefaultRunLauncher", "compute_logs": "LocalComputeLogManager",
                          "local_artifact_storage": "LocalArtifactStorage"}.items():
        section = config[key]
        loaded = ConfigurableClassData(section["module"], section["class"], yaml.safe_dump(section.get("config") or {}))
        assert type(loaded.rehydrate(object)).__name__ == expected
        if section.get("config", {}).get("base_dir"):
            assert section["config"]["base_dir"].startswith(PLANNING_HOME + "/")  # on the shared volume


def test_the_collector_is_published_over_https_only() -> None:
    """Other hosts reach the collector: it serves HTTPS with a certificate from a mounted directory, and the
    command refuses a non-loopback address without one (pipelines/cli/serve.py)."""
    command = _command("collector")
    args = _parser().parse_args(command[1:])
    assert args.host == "0.0.0.0" and args.certfile is not None and args.keyfile is not None
    assert str(args.certfile).startswith("/etc/planning/tls/") and str(args.keyfile).startswith("/etc/planning/tls/")
    assert [mapping.rsplit(":", 1)[1] for mapping in SERVICES["collector"]["ports"]] == [str(args.port)]
    tls = [v for v in SERVICES["collector"]["volumes"] if v.endswith(":/etc/planning/tls:ro")]
    assert len(tls) == 1 and tls[0].startswith("${PLANNING_COLLECTOR_TLS_DIR:?")



# --- the event store on PostgreSQL, and workers that scale ------------------------------------------

PLANNING_SERVICES = ("kafka-init", "store-init", "worker", "collector", "dagster-webserver", "dagster-daemon")


def test_every_planning_process_uses_the_postgresql_store_in_its_own_schema() -> None:
    postgres = _environment("postgres")
    for service in PLANNING_SERVICES:
        env = _environment(service)
        choice = chosen_store(env)
        assert not choice.embedded, f"{service}: PLANNING_STORE does not name PostgreSQL"
        info = conninfo_to_dict(choice.url)
        assert (info["host"], info["port"], info["dbname"], info["user"]) == \
            ("postgres", "5432", postgres["POSTGRES_DB"], postgres["POSTGRES_USER"]), service
        assert "password" not in info, f"{service}: a password in the URL"  # PGPASSWORD, from the environment
        assert env["PGPASSWORD"] == postgres["POSTGRES_PASSWORD"] and SECRET.search(env["PGPASSWORD"]), service
    # an erased key's bytes do not stay in a recycled WAL segment (docs/decisions.md, "The PostgreSQL store")
    assert _command("postgres") == ["postgres", "-c", "wal_recycle=off"]


def test_the_worker_service_can_be_scaled() -> None:
    """`docker compose up --scale worker=3`: nothing in the service may be one-of-a-kind."""
    worker = SERVICES["worker"]
    assert not {"container_name", "ports", "hostname"} & set(worker), "a scaled service cannot fix these"
    assert "replicas" not in (worker.get("deploy") or {})  # --scale decides
    assert _command("worker")[:2] == ["planning", "worker"] and "--group" not in _command("worker")
    assert chosen_store(_environment("worker")).url is not None  # no writer lock: PostgreSQL takes many writers
