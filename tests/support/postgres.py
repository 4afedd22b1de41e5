"""Pytest fixtures for tests that need a real PostgreSQL (the PostgreSQL event store).

tests/conftest.py pulls these in with ``from tests.support.postgres import *``.
One cluster runs per test session: Debian's PostgreSQL 15 binaries, ``initdb`` run
as the ``postgres`` user (it refuses root) in a temporary directory that user owns,
listening on a free loopback port, stopped and removed afterwards. Each test gets
a database of its own (``postgres_url``). It is never skipped: a test that needs
PostgreSQL and cannot get it fails, with the reason and the server's log.
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

POSTGRES_BIN = Path(os.environ.get("PLANNING_TEST_POSTGRES_BIN", "/usr/lib/postgresql/15/bin"))
SERVER_USER = "postgres"  # initdb refuses to run as root
_databases = itertools.count(1)


@dataclass(frozen=True)
class Cluster:
    data_dir: Path
    port: int
    log: Path | None = None
    options: str = ""

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SERVER_USER}@127.0.0.1:{self.port}/{database}"

    def restart(self) -> None:
        """Stop the server (``-m fast``: every connection is cut, as in a failover or an upgrade) and start it
        again on the same port, waiting until it takes connections."""
        assert self.log is not None, "a cluster the fixture started"
        _run(_as_server_user(POSTGRES_BIN / "pg_ctl", "-D", self.data_dir, "-l", self.log, "-o", self.options,
                             "-m", "fast", "-w", "-t", "60", "restart"), self.log)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _as_server_user(*command: str | Path) -> list[str]:
    arguments = [str(part) for part in command]
    return ["runuser", "-u", SERVER_USER, "--", *arguments] if os.geteuid() == 0 else arguments


def _run(command: list[str], log: Path) -> None:
    finished = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if finished.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:] if log.is_file() else ""
        pytest.fail(f"PostgreSQL could not start: {' '.join(command)} exited {finished.returncode}\n"
                    f"{finished.stdout}{finished.stderr}{tail}", pytrace=False)


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[Cluster]:
    """A running PostgreSQL cluster for the session (fails, never skips, when it cannot start)."""
    if not (POSTGRES_BIN / "initdb").is_file():
        pytest.fail(f"PostgreSQL is not installed: no {POSTGRES_BIN / 'initdb'} (install Debian's postgresql package,"
                    " as the README's test set-up command does)", pytrace=False)
    root = Path(tempfile.mkdtemp(prefix="planning-postgres-"))
    data_dir, log = root / "data", root / "server.log"
    if os.geteuid() == 0:
        shutil.chown(root, SERVER_USER)
    port = _free_port()
    try:
        _run(_as_server_user(POSTGRES_BIN / "initdb", "-D", data_dir, "-U", SERVER_USER, "-A", "trust",
                             "--no-sync", "-E", "UTF8", "--locale", "C"), log)
        options = (f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
                   " -c wal_recycle=off -c max_connections=50")
        _run(_as_server_user(POSTGRES_BIN / "pg_ctl", "-D", data_dir, "-l", log, "-o", options, "-w", "-t", "60", "start"), log)
        yield Cluster(data_dir, port, log, options)
    finally:
        subprocess.run(_as_server_user(POSTGRES_BIN / "pg_ctl", "-D", data_dir, "-m", "fast", "-w", "stop"),
                       capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_cluster: Cluster) -> str:
    """The URL of a new, empty database of this test's own on the session's cluster."""
    name = f"store_{os.getpid()}_{next(_databases)}"
    with psycopg.connect(postgres_cluster.url(), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return postgres_cluster.url(name)


__all__ = ["Cluster", "postgres_cluster", "postgres_url"]
