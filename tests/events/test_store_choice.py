"""PLANNING_STORE chooses the backend; both backends offer the one store interface."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from events.storage.backends import Store, UnknownStore, chosen_store, open_store
from events.storage.postgres.migrations import init_store
from events.storage.postgres.store import PostgresStore
from events.storage.store import EventStore

OPERATIONS = sorted(name for name in vars(Store) if not name.startswith("_"))


@pytest.mark.parametrize("backend", [EventStore, PostgresStore])
def test_each_backend_has_every_operation_of_the_interface(backend: type) -> None:
    missing = [name for name in OPERATIONS if not hasattr(backend, name)]
    assert not missing, f"{backend.__name__} lacks {missing}"
    for name in OPERATIONS:
        if callable(getattr(Store, name)):
            ours = [p for p in inspect.signature(getattr(Store, name)).parameters if p != "self"]
            theirs = [p for p in inspect.signature(getattr(backend, name)).parameters if p != "self"]
            assert theirs[:len(ours)] == ours, f"{backend.__name__}.{name} takes {theirs}, the interface {ours}"


def test_unset_or_empty_is_the_embedded_store(tmp_path: Path) -> None:
    assert chosen_store({}).embedded and chosen_store({"PLANNING_STORE": "  "}).embedded
    with open_store(tmp_path / "store", writer=True, environ={}) as store:
        assert isinstance(store, EventStore) and (tmp_path / "store" / "store.sqlite").is_file()


def test_a_postgresql_url_opens_the_postgresql_store(postgres_url: str, tmp_path: Path) -> None:
    init_store(postgres_url)
    with open_store(tmp_path / "store", environ={"PLANNING_STORE": postgres_url}) as store:
        assert isinstance(store, PostgresStore) and store.high_water_mark() == 0
    assert not (tmp_path / "store").exists()


def test_any_other_store_is_refused_naming_what_is_accepted() -> None:
    with pytest.raises(UnknownStore, match="PLANNING_STORE: 'sqlite' .* postgresql://"):
        chosen_store({"PLANNING_STORE": "sqlite:///x"})
