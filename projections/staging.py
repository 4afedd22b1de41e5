"""Stage a cycle's events from the store into a private DuckDB file.

The store's segments are read by DuckDB directly (``read_json``), cut at the
build's two instants (events/instants.py), and shaped by ``sql/_staging.sql``.
The sealed personal data stays sealed with one exception: the four demographic
fields of each response are unsealed into ``response_demographics`` for
inclusion monitoring (see :func:`stage_demographics`). The staging file is
private to the build and deleted when the build is published; no reference,
comment or other personal field reaches it.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from events.instants import Instants
from events.models import CURRENT_SCHEMA_VERSION
from events.upcasting import upcast
from events.store import EventStore
from events.personal_data import unseal_with
from events.vocabulary import BOROUGHS, DEMOGRAPHIC_DIMENSIONS, THEMES
from projections.connection import connect
from projections.event_cache import create_store_events_table, read_segments_sql
from projections.retractions import retracted_ids
from projections.sql_files import run_sql_file
from projections.timetable import default_windows


def stage_cycle(
    store: EventStore, staging_path: Path, cycle: str, instants: Instants, *, cache: Path | None = None, upto: int | None = None
) -> dict[str, int]:
    """Build staging.duckdb for one cycle, from the event cache (or, with no cache, straight
    from the store's segments: the full rebuild). Returns counts for the build's metadata."""
    position = store.high_water_mark() if upto is None else upto
    with connect(staging_path) as db:
        db.execute(
            "CREATE TABLE build_info AS SELECT ?::VARCHAR AS cycle, ?::DATE AS on_date, ?::TIMESTAMPTZ AS on_end,"
            " ?::TIMESTAMPTZ AS as_of, now() AS built_at, ?::BIGINT AS store_position",
            [cycle, instants.on, instants.on_end, instants.as_of, position],
        )
        db.execute("CREATE TABLE boroughs AS SELECT unnest(?::VARCHAR[]) AS borough", [list(BOROUGHS)])
        db.execute("CREATE TABLE themes AS SELECT unnest(?::VARCHAR[]) AS theme", [list(THEMES)])
        db.execute("CREATE TABLE demographic_groups (dimension VARCHAR, group_name VARCHAR, group_order INTEGER)")
        db.executemany(
            "INSERT INTO demographic_groups VALUES (?, ?, ?)",
            [(d, g, i) for d, groups in DEMOGRAPHIC_DIMENSIONS.items() for i, g in enumerate(groups)],
        )
        db.execute("CREATE TABLE default_windows (stage VARCHAR, stage_order INTEGER, opens_on DATE, due_on DATE)")
        db.executemany("INSERT INTO default_windows VALUES (?, ?, ?, ?)", default_windows(cycle))
        create_store_events_table(db)
        if cache is not None:
            db.execute(f"ATTACH '{cache}' AS cache (READ_ONLY)")
            source, parameters = "SELECT * FROM cache.store_events", []
        else:
            # only the segments that can hold this cycle's events or a retraction (the store's index says which)
            files = [str(s.path) for s in store.segments_for_cycle(cycle, upto=position)] or None
            source, parameters = read_segments_sql(files) if files else ("SELECT * FROM store_events WHERE false", [])
        # this cycle's events and every retraction (a retraction may name an event of any cycle)
        db.execute(
            f"INSERT INTO store_events SELECT * FROM ({source})"
            " WHERE position <= ? AND occurred_at < ? AND recorded_at <= ? AND (cycle = ? OR event_type = 'event.retracted')"
            " ORDER BY position",
            [*parameters, position, instants.on_end, instants.as_of, cycle],
        )
        if cache is not None:
            db.execute("DETACH cache")
        upcast_older_versions(db)
        pairs = db.execute(
            "SELECT event_id, payload->>'target_event_id' FROM store_events WHERE event_type = 'event.retracted'"
        ).fetchall()
        db.execute("CREATE TABLE retracted AS SELECT unnest(?::VARCHAR[]) AS event_id", [sorted(retracted_ids(pairs))])
        run_sql_file(db, "_staging")
        stage_demographics(db, store)
        events = db.execute("SELECT count(*) FROM events").fetchone()[0]
    return {"store_position": position, "cycle_events": events}


def upcast_older_versions(db: duckdb.DuckDBPyConnection) -> None:
    """Events stored at an older schema_version are read as the current one (events/upcasting.py).

    The store keeps them as sent; only this build's staging copy is upcast.
    """
    older = db.execute(
        "SELECT position, event_type, schema_version, payload FROM store_events WHERE schema_version <> ?",
        [CURRENT_SCHEMA_VERSION],
    ).fetchall()
    for position, event_type, version, payload in older:
        body = upcast({"event_type": event_type, "schema_version": version, "payload": json.loads(payload)})
        if body["schema_version"] != CURRENT_SCHEMA_VERSION:
            raise RuntimeError(f"no upcaster takes {event_type} from version {body['schema_version']} to {CURRENT_SCHEMA_VERSION}")
        db.execute(
            "UPDATE store_events SET payload = ?, schema_version = ? WHERE position = ?",
            [json.dumps(body["payload"]), body["schema_version"], position],
        )


def stage_demographics(db: duckdb.DuckDBPyConnection, store: EventStore) -> None:
    """Unseal the demographics of the cycle's responses, for inclusion monitoring only.

    Only the four demographic fields are kept (never the reference or the
    comment), keyed by the respondent's surrogate, in the private staging
    file that is deleted when the build is published. An erased respondent's
    key is gone, so their demographics are simply not stated.
    """
    sealed_rows = db.execute(
        "SELECT r.event_id, r.subject, s.sealed FROM responses AS r JOIN store_events AS s USING (event_id)"
        " WHERE s.sealed IS NOT NULL ORDER BY r.position"
    ).fetchall() if store.vault else []
    # the keys of this cycle's respondents only, not every respondent's in the store
    keys = store.live_keys([subject for _, subject, _ in sealed_rows]) if sealed_rows else {}
    columns: dict[str, list] = {"event_id": [], "subject": [], **{d: [] for d in DEMOGRAPHIC_DIMENSIONS}}
    for event_id, subject, sealed in sealed_rows:
        personal = unseal_with(keys, subject, sealed)
        if not personal:
            continue
        respondent = personal.get("respondent") or {}
        columns["event_id"].append(event_id)
        columns["subject"].append(subject)
        for dimension in DEMOGRAPHIC_DIMENSIONS:
            columns[dimension].append(respondent.get(dimension))
    names = list(columns)
    db.execute(
        "CREATE TABLE response_demographics AS SELECT "
        + ", ".join(f"unnest(${i + 1}::VARCHAR[]) AS {name}" for i, name in enumerate(names)),
        [columns[n] for n in names],
    )
