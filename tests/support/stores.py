"""One fixture for tests that hold for either event store: the embedded one and the PostgreSQL one.

A test that asks for ``open_store`` runs twice, once per backend (``backend``), and opens its
store the way the pipeline does, through ``events.storage.backends.open_store`` with
``PLANNING_STORE`` unset or naming a fresh PostgreSQL database of the session's cluster
(tests/support/postgres.py), migrated as ``planning store init`` does. So a behaviour is written
once and both backends must show it, as a recorder's test cases are shared by its back ends.
Tests of what only one backend has (segment files, the writer lock, many writers) ask for
that backend directly instead.

``stored_bytes_of`` gives every byte the backend keeps on disk, for tests that look for
personal data in the files: the store directory, or the cluster's data directory (tables
and write-ahead log).

tests/conftest.py pulls the fixtures in with ``from tests.support.stores import *``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest

from events.storage.backends import STORE_ENV, Store, open_store as open_chosen_store
from events.storage.postgres.migrations import init_store

BACKENDS = ("embedded", "postgresql")
OpenStore = Callable[..., Any]  # (writer=False) -> a store; the fixture closes it; .url is the database or None


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def store_environ(backend: str, request: pytest.FixtureRequest) -> dict[str, str]:
    """The environment that selects this test's backend: no ``PLANNING_STORE``, or a new migrated database."""
    if backend == "embedded":
        return {}
    url = request.getfixturevalue("postgres_url")
    init_store(url)
    return {STORE_ENV: url}


@pytest.fixture
def open_store(store_environ: dict[str, str], tmp_path: Path) -> Iterator[OpenStore]:
    """Opens the backend's store (the embedded one under ``tmp_path/store``) as often as a test asks."""
    opened: list[Store] = []

    def opener(writer: bool = False, holder: str = "planning tests") -> Any:
        store = open_chosen_store(tmp_path / "store", writer=writer, holder=holder, environ=store_environ)
        opened.append(store)
        return store

    opener.url = store_environ.get(STORE_ENV)  # type: ignore[attr-defined]
    yield opener
    for store in opened:
        store.close()


def stored_bytes_of(url: str | None, root: Path, *, after_erasure: bool = False) -> bytes:
    """Every file's bytes the store keeps: under ``root`` for the embedded store (``url`` None), else
    the cluster's data directory. ``after_erasure``: first switch the write-ahead log and checkpoint
    twice, so that (with ``wal_recycle = off``) the segments holding erased rows are removed, as
    docs/decisions.md ("The PostgreSQL store", erasure) says a running cluster does by itself."""
    if url is None:
        return b"".join(p.read_bytes() for p in root.rglob("*") if p.is_file())
    with psycopg.connect(url, autocommit=True) as admin:
        for _ in range(2 if after_erasure else 0):
            admin.execute("SELECT pg_switch_wal()")
            admin.execute("CHECKPOINT")
        admin.execute("CHECKPOINT")
        data_dir = Path(admin.execute("SHOW data_directory").fetchone()[0])
    return b"".join(p.read_bytes() for p in data_dir.rglob("*") if p.is_file())


@contextmanager
def pipeline_on(environ: dict[str, str]) -> Iterator[None]:
    """The pipeline in this process (builds, sensor, checks) on the store ``environ`` selects: every caller
    opens ``open_store``, which reads ``PLANNING_STORE``."""
    with pytest.MonkeyPatch.context() as patch:
        if STORE_ENV in environ:
            patch.setenv(STORE_ENV, environ[STORE_ENV])
        else:
            patch.delenv(STORE_ENV, raising=False)
        yield


__all__ = ["BACKENDS", "OpenStore", "backend", "open_store", "pipeline_on", "store_environ", "stored_bytes_of"]
