"""Stage a cycle's events from the store into a private DuckDB file.

The store's segments are read by DuckDB directly (``read_json``, or the event
cache that holds them), cut at the build's two instants (events/contract/instants.py),
and shaped by ``sql/_staging.sql``. The few records SQL cannot take as stored
(an older schema_version, a response's sealed demographics) become events
through ``events.storage.conversion.to_event``, as the store's own reads do. The
sealed personal data stays sealed with one exception: the four demographic
fields of each response are staged into ``response_demographics`` for
inclusion monitoring (see :func:`stage_demographics`). A build stages only
the relations its tables read (projections/building/staging_plan.py), so a
build without ``inclusion`` never asks the vault for them. The staging file is
private to the build and deleted when the build is published; no reference,
comment or other personal field reaches it. ``build_info`` says whether the
store holds synthetic data (``synthetic``), so every snapshot carries the label.

A retracted event never reaches a build: retractions are resolved first, and
the retracted events leave ``store_events`` before any of their values is
read, converted or cast (a count of 10^30 an older contract let in, once
retracted, can fail nothing). A record whose envelope cannot be typed is left
out and listed in ``untypable_events`` (position and event_id) unless retracted.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import duckdb

from events.storage.conversion import to_event
from events.contract.instants import Instants
from events.contract.json_text import parse_json
from events.contract.models import CURRENT_SCHEMA_VERSION
from events.storage.backends import Store, record_files
from events.storage.personal_data import split_personal, unseal_with
from events.contract.vocabulary import BOROUGHS, DEMOGRAPHIC_DIMENSIONS, THEMES
from projections.connection import connect, sql_string
from projections.building.event_cache import CACHE_COLUMNS, TYPED, create_store_events_table, read_segments_sql
from projections.building.retractions import canonical_id, permitted, retracted_ids
from projections.building.staging_plan import needed_by, staging_statements
from projections.building.timetable import default_windows
from projections.tables import PANEL_TABLE_NAMES

Demographics = tuple[str, list[str | None]]  # (the respondent's surrogate, their group in each dimension)
# an event_id as retractions.canonical_id writes it ({…}, urn:uuid:…, capitals or no hyphens name the same event)
CANONICAL_ID = "coalesce(TRY_CAST(regexp_replace(event_id, '^urn:uuid:', '', 'i') AS UUID)::VARCHAR, event_id)"
ISO_TEXT = "strftime({0} AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%S.%fZ') AS {0}"

def stage_cycle(
    store: Store, staging_path: Path, cycle: str, instants: Instants, *, cache: Path | None = None, upto: int | None = None,
    tables: Iterable[str] = PANEL_TABLE_NAMES,
) -> dict[str, int]:
    """Build staging.duckdb for one cycle, from the event cache (or, with no cache, straight
    from the store's segments: the full rebuild), with what ``tables`` read (every Panel
    table's by default; projections/building/staging_plan.py). Returns counts for the build's metadata."""
    needed = needed_by(tables, also=["events"])  # events: the build's metadata counts them
    position = store.high_water_mark() if upto is None else upto
    with connect(staging_path) as db, ExitStack() as records:
        # synthetic: the store's kind of data (events.storage.store), carried by every output built from this build
        db.execute(
            "CREATE TABLE build_info AS SELECT ?::VARCHAR AS cycle, ?::DATE AS on_date, ?::TIMESTAMPTZ AS on_end,"
            " ?::TIMESTAMPTZ AS as_of, now() AS built_at, ?::BIGINT AS store_position, ?::BOOLEAN AS synthetic",
            [cycle, instants.on, instants.on_end, instants.as_of, position, store.synthetic],
        )
        db.execute("CREATE TABLE boroughs AS SELECT unnest(?::VARCHAR[]) AS borough", [list(BOROUGHS)])
        db.execute("CREATE TABLE themes AS SELECT unnest(?::VARCHAR[]) AS theme", [list(THEMES)])
        db.execute("CREATE TABLE demographic_groups (dimension VARCHAR, group_name VARCHAR, group_order INTEGER)")
        db.executemany(
            "INSERT INTO demographic_groups VALUES (?, ?, ?)",
            [(d, g, i) for d, groups in DEMOGRAPHIC_DIMENSIONS.items() for i, g in enumerate(groups)],
        )
        db.execute("CREATE TABLE default_windows (stage VARCHAR, stage_order INTEGER, opens_on DATE, due_on DATE)")
        windows = default_windows(cycle)  # none for a cycle the calendar cannot hold
        if windows:
            db.executemany("INSERT INTO default_windows VALUES (?, ?, ?, ?)", windows)
        # a TEMP table: no Panel table reads the raw copy, only the statements below, so it is never
        # written to the staging file nor checkpointed (at 1M events that saved a sixth of a cycle's staging)
        create_store_events_table(db, temporary=True)
        if cache is not None:
            db.execute(f"ATTACH {sql_string(cache)} AS cache (READ_ONLY)")
            source, parameters = "SELECT * FROM cache.store_events", []
        else:
            # only the segments that can hold this cycle's events or a retraction (the store's index says which),
            # never a damaged one (events.storage.integrity); from PostgreSQL, those records copied out in bulk
            files = records.enter_context(record_files(store, 0, position, cycle))
            source, parameters = read_segments_sql(files) if files else ("SELECT * FROM store_events WHERE false", [])
        # this cycle's events and every retraction (a retraction may name an event of any cycle); from the
        # cache as two scans, each of which DuckDB narrows by its own column (an OR of the two reads every row whole)
        if cache is not None:
            wanted = (f"SELECT * FROM ({source}) WHERE cycle = ? UNION ALL SELECT * FROM ({source})"
                      " WHERE event_type = 'event.retracted' AND cycle IS DISTINCT FROM ?")
            wanted_parameters = [*parameters, cycle, *parameters, cycle]
        else:
            wanted = f"SELECT * FROM ({source}) WHERE cycle = ? OR event_type = 'event.retracted'"
            wanted_parameters = [*parameters, cycle]
        db.execute(
            f"INSERT INTO store_events SELECT * FROM ({wanted})"
            f" WHERE {TYPED} AND position <= ? AND occurred_at < ? AND recorded_at <= ?"
            " ORDER BY position",
            [*wanted_parameters, position, instants.on_end, instants.as_of],
        )
        # what an older contract let in with an envelope no table can hold (its cycle unknown, or this one)
        db.execute(
            f"CREATE TABLE untypable_events AS SELECT position, event_id FROM ({source})"
            f" WHERE NOT ({TYPED}) AND position <= ? AND coalesce(recorded_at <= ?, true) AND coalesce(cycle = ?, true)"
            " ORDER BY position",
            [*parameters, position, instants.as_of, cycle],
        )
        if cache is not None:
            db.execute("DETACH cache")
        # retractions first (no upcaster changes a retraction's payload), so no retracted event is ever read
        pairs = db.execute(
            "SELECT event_id, payload->>'target_event_id' FROM store_events WHERE event_type = 'event.retracted'"
        ).fetchall()
        ids = [canonical for pair in pairs for canonical in map(canonical_id, pair) if canonical]
        pairs = permitted(pairs, store.senders_of(ids))  # a sender retracts only its own events
        db.execute("CREATE TABLE retracted AS SELECT unnest(?::VARCHAR[]) AS event_id", [sorted(retracted_ids(pairs))])
        for table in ("store_events", "untypable_events"):
            db.execute(f"DELETE FROM {table} WHERE {CANONICAL_ID} IN (SELECT event_id FROM retracted)")
        unseal = "response_demographics" in needed  # the vault is asked only for a table that reads them
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="unseal") as unsealing:
            # the responses' demographics are unsealed in Python while DuckDB, which lets go of the GIL, stages
            demographics = convert_records(db, store, cycle, demographics=unseal, unsealing=unsealing)
            for relation, statement in staging_statements().items():
                if relation in needed:
                    db.execute(statement)
            if unseal:
                stage_demographics(db, demographics.result())
        events = db.execute("SELECT count(*) FROM events").fetchone()[0]
        untypable = db.execute("SELECT count(*) FROM untypable_events").fetchone()[0]
    return {"store_position": position, "cycle_events": events, "untypable_events": untypable}


def convert_records(
    db: duckdb.DuckDBPyConnection, store: Store, cycle: str, *, demographics: bool, unsealing: Executor,
) -> Future[dict[str, Demographics]]:
    """The records SQL cannot stage as stored become events through ``events.storage.conversion.to_event``
    (unsealed, then upcast), the store's own read path; SQL stages every other record in bulk.

    * a record at an older schema_version: its staged payload and version become the upcast
      event's, without the personal fields (``events/contract/upcasting.py``; the store keeps it as sent);
    * a response of the cycle with sealed personal data: its respondent's demographics are
      returned by event id, for ``stage_demographics``; with ``demographics=False`` (no requested
      table reads them) such a response is left as SQL stages it, and the vault is not asked for its key.
      At the current schema_version the respondent is wholly in the sealed fields (``split_personal``)
      and no upcaster applies, so only those are unsealed: the rest of the record is not read.

    The older records are converted before this returns (the staging SQL reads their upcast payloads);
    the current responses are unsealed by ``unsealing``, which never touches ``db`` or the store: their
    rows and keys are read first.
    """
    # records as the segments hold them: instants as ISO text (made by DuckDB: Python datetimes
    # with a time zone cost more than the rest of this pass), the payload parsed below
    columns = [ISO_TEXT.format(name) if kind == "TIMESTAMPTZ" else name for name, kind in CACHE_COLUMNS.items()]
    rows = db.execute(
        f"SELECT {', '.join(columns)} FROM store_events WHERE schema_version <> ? ORDER BY position", [CURRENT_SCHEMA_VERSION],
    ).fetchall()
    records = [dict(zip(CACHE_COLUMNS, row)) for row in rows]
    responses = db.execute(
        "SELECT event_id, subject, sealed FROM store_events WHERE ? AND schema_version = ?"
        " AND event_type = 'consultation.response_received' AND cycle = ? AND sealed IS NOT NULL ORDER BY position",
        [demographics, CURRENT_SCHEMA_VERSION, cycle],
    ).fetchall()
    # the keys of this cycle's respondents only, not every respondent's in the store
    sealed = [record["subject"] for record in records if record["sealed"] is not None] + [subject for _, subject, _ in responses]
    keys = store.live_keys(sealed) if sealed and store.vault else {}
    upcast_payloads, unsealed = [], {}
    for record in records:
        record["payload"] = parse_json(record["payload"])
        event = to_event(record, keys)
        clear, _ = split_personal(event["event_type"], event["payload"])
        upcast_payloads.append([json.dumps(clear), event["schema_version"], record["position"]])
        respondent = event["payload"].get("respondent")
        if demographics and event["event_type"] == "consultation.response_received" and respondent:
            unsealed[event["event_id"]] = (record["subject"], [respondent.get(d) for d in DEMOGRAPHIC_DIMENSIONS])
    if upcast_payloads:
        db.executemany("UPDATE store_events SET payload = ?, schema_version = ? WHERE position = ?", upcast_payloads)
    return unsealing.submit(unseal_responses, keys, responses, unsealed)


def unseal_responses(
    keys: dict[str, bytes], responses: list[tuple[str, str, str]], unsealed: dict[str, Demographics]
) -> dict[str, Demographics]:
    """``unsealed`` with the demographics of each response (event_id, subject, sealed blob) added; a response
    whose key is gone (its respondent erased) has none."""
    for event_id, subject, blob in responses:
        respondent = (unseal_with(keys, subject, blob) or {}).get("respondent")
        if respondent:
            unsealed[event_id] = (subject, [respondent.get(d) for d in DEMOGRAPHIC_DIMENSIONS])
    return unsealed


def stage_demographics(db: duckdb.DuckDBPyConnection, demographics: dict[str, Demographics]) -> None:
    """The demographics of the cycle's counted responses, for inclusion monitoring only.

    Only the four demographic fields are kept (never the reference or the
    comment), keyed by the respondent's surrogate, in the private staging
    file that is deleted when the build is published. An erased respondent's
    key is gone, so their demographics are simply not stated; a retracted
    response's are not staged.
    """
    columns: dict[str, list] = {"event_id": [], "subject": [], **{d: [] for d in DEMOGRAPHIC_DIMENSIONS}}
    counted = db.execute("SELECT event_id FROM responses ORDER BY position").fetchall() if demographics else []
    for (event_id,) in counted:
        if event_id not in demographics:
            continue
        subject, groups = demographics[event_id]
        columns["event_id"].append(event_id)
        columns["subject"].append(subject)
        for dimension, group in zip(DEMOGRAPHIC_DIMENSIONS, groups):
            columns[dimension].append(group)
    names = list(columns)
    db.execute(
        "CREATE TABLE response_demographics AS SELECT "
        + ", ".join(f"unnest(${i + 1}::VARCHAR[]) AS {name}" for i, name in enumerate(names)),
        [columns[n] for n in names],
    )
