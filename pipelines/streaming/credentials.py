"""Who the pipeline's own processes are on Kafka, and where their passwords come from.

The broker requires SASL/SCRAM-SHA-512 from every client (``pipelines.streaming.broker``).
Besides the senders (``pipelines.streaming.access``) there are four service principals:

=============  ===========================================================
``admin``      super user: creates topics, users and ACLs; never a sender
``worker``     reads the sender and collector topics, writes dead letters
``collector``  writes the collector topics (``planning serve`` hands over)
``controller`` the KRaft controller listener only (PLAIN, never on the client port)
=============  ===========================================================

Where a client's password comes from, first match wins -- never the command
line, where ``ps`` would show it to every user of the machine:

1. ``$PLANNING_KAFKA_USER`` and ``$PLANNING_KAFKA_PASSWORD`` (compose passes
   each container its own);
2. the JSON file ``$PLANNING_KAFKA_CREDENTIALS`` (``{"worker": "…", …}``);
3. ``$PLANNING_HOME/kafka/credentials.json``, written (mode 0600) by the local
   broker when it formats its storage.

Why a password must exist in plaintext somewhere: SCRAM lets the broker keep
only a salted hash, but the *client* has to prove it knows the password on
every connection, so each client process must be able to read it; a 0600
file owned by the data team's account (or a container's environment) is the
least exposure that still lets the services start unattended. Sender secrets
are different: the pipeline stores only their SHA-256 (``events.senders``) and
the broker only a SCRAM hash; the plaintext exists once, printed by
``planning senders add``/``rotate``, and afterwards only on the sender's side.

``$PLANNING_KAFKA_CA`` (a CA bundle) switches every client to SASL_SSL, for a
broker reached over TLS (the compose stack's host listener).
"""

from __future__ import annotations

import json
import os
import secrets
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MECHANISM = "SCRAM-SHA-512"
SERVICE_PRINCIPALS = ("admin", "worker", "collector")
CONTROLLER_PRINCIPAL = "controller"
CREDENTIALS_FILE = "credentials.json"
USER_ENV, PASSWORD_ENV = "PLANNING_KAFKA_USER", "PLANNING_KAFKA_PASSWORD"
CREDENTIALS_ENV = "PLANNING_KAFKA_CREDENTIALS"
CA_ENV = "PLANNING_KAFKA_CA"


class MissingCredentials(RuntimeError):
    """No password for a Kafka principal was found; the message says where to put one."""


@dataclass(frozen=True)
class KafkaLogin:
    """A SCRAM user and its password, and the CA file when the listener speaks TLS."""

    user: str
    password: str = field(repr=False)
    cafile: str | None = None

    @property
    def protocol(self) -> str:
        return "SASL_SSL" if self.cafile else "SASL_PLAINTEXT"

    def kafka_python(self) -> dict[str, Any]:
        """Keyword arguments for kafka-python's producer, consumer and admin client."""
        config: dict[str, Any] = {"security_protocol": self.protocol, "sasl_mechanism": MECHANISM,
                                  "sasl_plain_username": self.user, "sasl_plain_password": self.password}
        if self.cafile:
            config["ssl_cafile"] = self.cafile
        return config

    def aiokafka(self) -> dict[str, Any]:
        """Keyword arguments for aiokafka's clients."""
        config: dict[str, Any] = {"security_protocol": self.protocol, "sasl_mechanism": MECHANISM,
                                  "sasl_plain_username": self.user, "sasl_plain_password": self.password}
        if self.cafile:
            config["ssl_context"] = ssl.create_default_context(cafile=self.cafile)
        return config

    def faust(self) -> Any:
        import faust

        context = ssl.create_default_context(cafile=self.cafile) if self.cafile else None
        return faust.SASLCredentials(username=self.user, password=self.password, mechanism=MECHANISM,
                                     ssl_context=context)


def new_password() -> str:
    return secrets.token_urlsafe(32)


def generate(path: Path) -> dict[str, str]:
    """Passwords for the service principals and the controller, written to ``path`` with mode 0600.

    An existing file is kept as it is (a broker formatted with it needs the same passwords)."""
    if path.exists():
        return read(path)
    passwords = {name: new_password() for name in (*SERVICE_PRINCIPALS, CONTROLLER_PRINCIPAL)}
    write_private(path, json.dumps(passwords, indent=2) + "\n")
    return passwords


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read, never readable by others even for an instant."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(text)
    os.replace(partial, path)


def read(path: Path) -> dict[str, str]:
    try:
        passwords = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise MissingCredentials(f"no Kafka credentials file at {path}") from None
    except json.JSONDecodeError as error:
        raise MissingCredentials(f"{path} is not a JSON object of principal -> password ({error})") from None
    if not isinstance(passwords, dict) or not all(isinstance(v, str) for v in passwords.values()):
        raise MissingCredentials(f"{path} is not a JSON object of principal -> password")
    return passwords


def local_login(role: str, kafka_dir: Path) -> KafkaLogin:
    """The login of ``role`` on the local broker whose data dir is ``kafka_dir`` (its own file, whatever the
    environment says: the environment may name another broker's)."""
    passwords = read(Path(kafka_dir) / CREDENTIALS_FILE)
    if role not in passwords:
        raise MissingCredentials(f"{Path(kafka_dir) / CREDENTIALS_FILE} has no password for the Kafka principal {role!r}")
    return KafkaLogin(role, passwords[role], os.environ.get(CA_ENV) or None)


def service_login(role: str, kafka_dir: Path | None = None) -> KafkaLogin:
    """The login of service principal ``role`` (admin, worker, collector), from the sources above."""
    cafile = os.environ.get(CA_ENV) or None
    user, password = os.environ.get(USER_ENV), os.environ.get(PASSWORD_ENV)
    if user and password:
        return KafkaLogin(user, password, cafile)
    candidates = [Path(p) for p in (os.environ.get(CREDENTIALS_ENV),) if p]
    if kafka_dir is not None:
        candidates.append(Path(kafka_dir) / CREDENTIALS_FILE)
    else:
        candidates.append(Path(os.environ.get("PLANNING_HOME", ".planning")).resolve() / "kafka" / CREDENTIALS_FILE)
    for path in candidates:
        if path.exists():
            passwords = read(path)
            if role in passwords:
                return KafkaLogin(role, passwords[role], cafile)
            raise MissingCredentials(f"{path} has no password for the Kafka principal {role!r}")
    raise MissingCredentials(
        f"no password for the Kafka principal {role!r}: set ${USER_ENV} and ${PASSWORD_ENV}, or "
        f"${CREDENTIALS_ENV} to a JSON file of principal -> password (the local broker writes one: "
        f"$PLANNING_HOME/kafka/{CREDENTIALS_FILE})")
