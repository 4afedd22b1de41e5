"""The registry of senders: secrets issued once and kept only as a hash, names never reused,
revocation and rotation, grants checked when they are given."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pytest

from events.senders.registry import REGISTRY_FILE, BadGrant, SenderExists, SenderRegistry, UnknownSender, operator

HARROW, BARNET = "E09000015", "E09000003"
PINNED = datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
def registry(tmp_path: Path):
    with SenderRegistry(tmp_path, clock=lambda: PINNED) as opened:
        yield opened


def test_a_secret_identifies_its_sender_and_only_its_hash_is_kept(registry: SenderRegistry, tmp_path: Path) -> None:
    secret = registry.add("cdrp-harrow", ["cdrp.audit_submitted"], [HARROW])
    sender = registry.identify(secret)
    assert sender is not None and sender.name == "cdrp-harrow" and sender.active
    assert sender.event_types == {"cdrp.audit_submitted"} and sender.boroughs == {HARROW}
    assert sender.created_at == "2026-11-30T09:00:00Z"
    assert secret.startswith("pps_") and len(secret) >= 40
    stored = b"".join(p.read_bytes() for p in tmp_path.glob(REGISTRY_FILE + "*"))
    assert secret.encode() not in stored
    assert registry.identify(secret + "x") is None and registry.identify("") is None
    assert oct((tmp_path / REGISTRY_FILE).stat().st_mode & 0o777) == "0o600"


def test_every_sender_gets_a_different_secret(registry: SenderRegistry) -> None:
    secrets = {registry.add(f"cdrp-{n}", ["cdrp.audit_submitted"], None) for n in range(20)}
    assert len(secrets) == 20


def test_rotate_gives_a_new_secret_and_the_old_one_stops_working(registry: SenderRegistry) -> None:
    old = registry.add("pas-vendor", ["survey.response_recorded"], None)
    new = registry.rotate("pas-vendor")
    assert new != old
    assert registry.identify(old) is None
    assert registry.identify(new).name == "pas-vendor"
    assert registry.get("pas-vendor").rotated_at == "2026-11-30T09:00:00Z"


def test_a_revoked_sender_is_still_known_by_its_secret_but_inactive(registry: SenderRegistry) -> None:
    secret = registry.add("webhooks", ["consultation.response_received"], None)
    revoked = registry.revoke("webhooks")
    assert not revoked.active and revoked.revoked_at == "2026-11-30T09:00:00Z"
    assert registry.identify(secret).active is False
    with pytest.raises(UnknownSender, match="revoked"):
        registry.rotate("webhooks")


def test_a_name_is_never_given_twice(registry: SenderRegistry) -> None:
    registry.add("cdrp-harrow", ["cdrp.audit_submitted"], [HARROW])
    with pytest.raises(SenderExists, match="name: sender cdrp-harrow exists already"):
        registry.add("cdrp-harrow", ["cdrp.audit_submitted"], [BARNET])
    registry.revoke("cdrp-harrow")
    with pytest.raises(SenderExists, match="revoked"):
        registry.add("cdrp-harrow", ["cdrp.audit_submitted"], [HARROW])


@pytest.mark.parametrize(
    ("name", "types", "boroughs", "message"),
    [
        ("CDRP Harrow", ["cdrp.audit_submitted"], None, "name: 'CDRP Harrow' is not a sender name"),
        ("cdrp.harrow", ["cdrp.audit_submitted"], None, "name: 'cdrp.harrow' is not a sender name"),
        ("worker", ["cdrp.audit_submitted"], None, "reserved"),
        ("cdrp-harrow", [], None, "event types: give at least one"),
        ("cdrp-harrow", ["cdrp.audit"], None, "event types: cdrp.audit is not an event type"),
        ("cdrp-harrow", ["cdrp.audit_submitted"], ["E09000001"], "boroughs: E09000001 is not a London borough code"),
        ("cdrp-harrow", ["cdrp.audit_submitted"], [], "boroughs: give at least one"),
    ],
)
def test_a_bad_grant_is_refused_naming_the_field(registry: SenderRegistry, name, types, boroughs, message) -> None:
    with pytest.raises(BadGrant, match=message):
        registry.add(name, types, boroughs)
    assert registry.all() == []


def test_unknown_names_are_refused_with_what_to_do(registry: SenderRegistry) -> None:
    for change in (registry.rotate, registry.revoke):
        with pytest.raises(UnknownSender, match="planning senders list"):
            change("nobody")


def test_the_registry_is_read_afresh_by_another_connection(registry: SenderRegistry, tmp_path: Path) -> None:
    with SenderRegistry(tmp_path) as reader:
        secret = registry.add("cdrp-harrow", ["cdrp.audit_submitted"], [HARROW])
        assert reader.identify(secret).active
        registry.revoke("cdrp-harrow")
        assert reader.identify(secret).active is False


def test_the_operator_has_every_grant() -> None:
    who = operator("alice")
    assert who.name == "operator:alice" and who.is_operator and who.boroughs is None and who.active
    assert "respondent.erasure_requested" in who.event_types


def test_the_table_keeps_no_secret_column() -> None:
    db = sqlite3.connect(":memory:")
    from events.senders.registry import SCHEMA

    db.executescript(SCHEMA)
    columns = {row[1] for row in db.execute("PRAGMA table_info(senders)")}
    assert "secret" not in columns and "secret_sha256" in columns
