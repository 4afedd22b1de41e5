"""The PostgreSQL store's own schema, built by numbered migrations.

The store lives in a schema of its own (``planning_store``), so it can share a
database (the compose stack's, which Dagster also uses) without sharing tables.
Each migration runs in its own transaction and is recorded in
``planning_store.migrations``; ``migrate`` applies those not recorded yet, in
order, so running ``planning store init`` again changes nothing. A migration
once released is never edited: a change to the schema is a new migration.

The tables mirror the embedded store's index (``events.storage.store``), with
one difference: ``events`` holds each event's record itself, as the exact JSON
text a segment line of the embedded store would hold (``text``, not ``jsonb``,
which would reorder its keys), so builds read the same records on both backends.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import psycopg

from events.storage.refusals import StoreRefused

SCHEMA = "planning_store"


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    sql: str


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "events, dead letters, respondent keys and the store's settings", f"""
CREATE TABLE {SCHEMA}.meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);
-- One row per stored event. position is assigned under the store's append lock (never from a
-- sequence), so positions are gap-free and commit in order.
CREATE TABLE {SCHEMA}.events (
    position    bigint PRIMARY KEY CHECK (position > 0),
    event_id    text NOT NULL UNIQUE,   -- the idempotency key: a second row with the same id cannot exist
    body_sha256 text NOT NULL,          -- of the canonical body: the same id with another digest is a conflict
    sender      text,                   -- who delivered it (events.senders); NULL: unknown
    event_type  text NOT NULL,
    cycle       text,                   -- NULL only in a record an older contract let in
    recorded_at text NOT NULL,
    record      text NOT NULL           -- the record, personal data sealed, as a segment line holds it
);
CREATE INDEX events_by_cycle ON {SCHEMA}.events (cycle, position);
CREATE INDEX events_retractions ON {SCHEMA}.events (position) WHERE event_type = 'event.retracted';
CREATE TABLE {SCHEMA}.dead_letters (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at       text NOT NULL,
    origin            text NOT NULL,    -- file:line, or topic/partition@offset
    reasons           text NOT NULL,    -- JSON array, one reason per broken rule
    raw               bytea,            -- the bytes as received (first 64 KiB); NULL once redacted by an erasure
    sender            text,
    replayed_position bigint,
    replayed_at       text
);
CREATE INDEX dead_letters_by_origin ON {SCHEMA}.dead_letters (origin);
CREATE TABLE {SCHEMA}.respondent_keys (
    ref_digest bytea PRIMARY KEY,       -- HMAC-SHA256(pepper, respondent_ref)
    subject    text NOT NULL UNIQUE,    -- random surrogate written beside the sealed fields
    key        bytea,                   -- AES-256 key; NULL once erased
    erased_at  text
);
"""),
    # Cheaper index work for the append (bench/README.md, "The PostgreSQL store"): every stored id is a UUID
    # (the contract has only ever accepted UUIDs, and the store keeps str(UUID)), so the UNIQUE index holds
    # 16 bytes a key instead of 37; the digest is 32 bytes instead of 64 characters of hex. Both are read back
    # as before (the store's loaders, ``events.storage.postgres.store``). The table is rewritten in place.
    Migration(2, "event ids as uuid, body digests as bytes", f"""
ALTER TABLE {SCHEMA}.events
    ALTER COLUMN event_id TYPE uuid USING event_id::uuid,
    ALTER COLUMN body_sha256 TYPE bytea USING decode(body_sha256, 'hex');
"""),
    # How many events each sender delivered, kept by the append in its own transaction (under the append lock, so
    # no two appends update a row at once): the sensor and every build show these counts, and grouping every
    # event row for them cost seconds a time at 10M events. Filled here from the events already stored.
    Migration(3, "events counted by sender", f"""
-- the append lock, so no append commits between the count below and this migration's commit
SELECT pg_advisory_xact_lock(hashtext('{SCHEMA}.append'));
CREATE TABLE {SCHEMA}.sender_events (
    sender text PRIMARY KEY,            -- 'unknown': stored before senders were recorded
    events bigint NOT NULL CHECK (events >= 0)
);
INSERT INTO {SCHEMA}.sender_events (sender, events)
    SELECT coalesce(sender, 'unknown'), count(*) FROM {SCHEMA}.events GROUP BY 1;
"""),
)
LATEST = MIGRATIONS[-1].version


class SchemaOutOfDate(StoreRefused):
    """The database's store schema is missing or older than this code's; ``planning store init`` brings it up to date."""


def migrate(connection: psycopg.Connection) -> list[int]:
    """Create the store's schema if needed and apply the migrations it lacks, in order; the versions applied."""
    with connection.transaction():
        connection.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
        connection.execute(f"CREATE TABLE IF NOT EXISTS {SCHEMA}.migrations ("
                           " version integer PRIMARY KEY, description text NOT NULL,"
                           " applied_at timestamptz NOT NULL DEFAULT now())")
    applied = []
    for migration in MIGRATIONS:
        with connection.transaction():
            # one init at a time: a second waits here, then finds the migration recorded
            connection.execute("SELECT pg_advisory_xact_lock(hashtext('planning_store.migrations'))")
            done = connection.execute(f"SELECT 1 FROM {SCHEMA}.migrations WHERE version = %s", (migration.version,)).fetchone()
            if done:
                continue
            connection.execute(migration.sql)
            if migration.version == 1:  # the vault's pepper, made once with the store
                connection.execute(f"INSERT INTO {SCHEMA}.meta (key, value) VALUES ('pepper', %s)", (os.urandom(32).hex(),))
            connection.execute(f"INSERT INTO {SCHEMA}.migrations (version, description) VALUES (%s, %s)",
                               (migration.version, migration.description))
            applied.append(migration.version)
    return applied


def schema_version(connection: psycopg.Connection) -> int:
    """The latest migration applied to this database's store schema (0: none)."""
    exists = connection.execute("SELECT to_regclass(%s)", (f"{SCHEMA}.migrations",)).fetchone()[0]
    if exists is None:
        return 0
    return connection.execute(f"SELECT coalesce(max(version), 0) FROM {SCHEMA}.migrations").fetchone()[0]


def require_current(connection: psycopg.Connection, url: str) -> None:
    version = schema_version(connection)
    if version < LATEST:
        state = "has no event store" if version == 0 else f"holds an event store at schema version {version}"
        raise SchemaOutOfDate(f"the database {redacted_url(url)} {state}, and this version needs {LATEST}:"
                              " run `planning store init` first")


def redacted_url(url: str) -> str:
    """The URL without its password, to show in messages."""
    info = psycopg.conninfo.conninfo_to_dict(url)
    host, port, name = info.get("host", "localhost"), info.get("port", "5432"), info.get("dbname", "")
    return f"postgresql://{host}:{port}/{name}"


class StoreInitFailed(RuntimeError):
    """The database could not be reached, or a migration failed (and was rolled back whole)."""


def init_store(url: str) -> list[int]:
    """``planning store init``: connect and ``migrate``; the versions applied."""
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=30) as connection:
            return migrate(connection)
    except psycopg.Error as failure:
        raise StoreInitFailed(str(failure).strip()) from failure
