"""Give back to the store the events of its quarantined segments (``planning recover``).

A segment file the index does not know is moved to ``quarantine/`` by the next
writer (``EventStore``). Usually it is a batch a crash cut off before its
commit; but after a crash that also lost SQLite's write-ahead log, the index
forgets batches it had committed, and their complete segments are quarantined
with everything in them. Recovering appends every record of every quarantined
file whose ``event_id`` the index does not hold, in file order, as it was
stored: its ``recorded_at`` (when the pipeline first knew it), its ``sender``
and its sealed personal data stay as they were; only the position is new. So
recovering twice, or recovering a batch the sender has since sent again,
appends nothing more. The files stay in quarantine; ``planning verify`` shows
them as recovered once none of their events is missing.

Personal data sealed with a key the lost log held (a respondent first seen in
a forgotten batch) cannot be opened again: the record keeps its ciphertext and
its surrogate ``subject``, so the event counts, but its personal fields read as
absent, as an erased respondent's do. An erasure among the recovered records is
applied again, since its key shredding was lost with the log.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from events.contract.json_text import parse_json
from events.contract.validation import Accepted, body_digest, verdict
from events.storage.conversion import ENVELOPE, Record
from events.storage.personal_data import unseal_with
from events.storage.store import QUARANTINE, EventStore


@dataclass
class RecoveredFile:
    path: Path
    records: int = 0  # readable records in the file
    appended: int = 0
    already_stored: int = 0  # their event_id is in the index already (recovered before, or sent again)
    unreadable_lines: int = 0  # not a record (a line a crash cut short)
    keys_lost: int = 0  # appended with sealed personal data whose key is gone
    positions: tuple[int, int] | None = None  # where the appended records went
    erasures: int = 0  # erasures among the appended records, applied again


@dataclass
class Recovery:
    files: list[RecoveredFile] = field(default_factory=list)

    @property
    def appended(self) -> int:
        return sum(f.appended for f in self.files)


def recover(store: EventStore) -> Recovery:
    """Append the missing events of every quarantined file (``store`` opened as the writer)."""
    folder = store.root / QUARANTINE
    recovery = Recovery()
    if not folder.is_dir():
        return recovery
    for path in sorted(folder.iterdir(), key=lambda p: p.name.lstrip(".")):
        recovery.files.append(_recover_file(store, path))
    return recovery


def _recover_file(store: EventStore, path: Path) -> RecoveredFile:
    done = RecoveredFile(path)
    records: dict[str, Record] = {}
    with open(path, "rb") as lines:
        for line in lines:
            record = _record(line)
            if record is None:
                done.unreadable_lines += 1
            else:
                records.setdefault(record["event_id"], record)
    done.records = len(records)
    stored = store.known_event_ids(list(records))
    fresh = [record for event_id, record in records.items() if event_id not in stored]
    done.already_stored = len(records) - len(fresh)
    if not fresh:
        return done
    subjects = [r["subject"] for r in fresh if r.get("sealed") is not None]
    keys = store.live_keys(subjects)
    known = store.subjects_known(subjects)
    done.keys_lost = sum(1 for r in fresh if r.get("sealed") is not None and r["subject"] not in known)
    digests = {r["event_id"]: _body_sha256(r, keys) for r in fresh}
    done.positions = store.append_recovered(fresh, digests)
    done.appended = len(fresh)
    done.erasures = sum(1 for r in fresh if r["event_type"] == "respondent.erasure_requested")
    return done


def _record(line: bytes) -> Record | None:
    """A stored record, or None for a line that is not one."""
    try:
        record = parse_json(line)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    needed = (*ENVELOPE, "position", "recorded_at", "payload", "subject", "sealed")
    if not isinstance(record, dict) or any(name not in record for name in needed):
        return None
    return record


def _body_sha256(record: Record, keys: dict[str, bytes]) -> str:
    """The digest the index keeps of the event's body: the contract's canonical one when the body
    can be rebuilt whole (its personal data unsealed), else the digest of what is left of it. A
    resend of an event whose key was lost is then kept out as a conflict, the stored one kept."""
    body: dict[str, Any] = {name: record[name] for name in ENVELOPE}
    if record.get("synthetic") is True:
        body["synthetic"] = True
    personal = unseal_with(keys, record["subject"], record["sealed"]) or {}
    body["payload"] = {**record["payload"], **personal}
    checked = verdict(json.dumps(body).encode(), _instant(record["recorded_at"]))
    return checked.body_sha256 if isinstance(checked, Accepted) else body_digest(body)


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
