"""A real collector for a test: uvicorn on a free port of 127.0.0.1, in a thread, with pinned clocks.

The app, the server and the store are the ones `planning serve` runs
(``pipelines.collector``); only the clocks are the test's: knowledge time is
``RECEIVED_AT`` (so no test depends on the day it runs) and the rate limits
run on a ``FakeMonotonic`` the test moves. Requests go over a real socket
(``http.client``).
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from events.home import PlanningHome
from events.senders.registry import SenderRegistry
from pipelines.collector.app import EVENTS_PATH, collector_app
from pipelines.collector.intake import Intake, StoreIntake
from pipelines.collector.limits import Limits
from pipelines.collector.server import listening_socket, uvicorn_server

RECEIVED_AT = datetime(2026, 8, 1, 9, 0, tzinfo=timezone.utc)  # after the factory's events (2026-07-14)
NDJSON = "application/x-ndjson"


@dataclass
class FakeMonotonic:
    now: float = 1_000.0

    def __call__(self) -> float:
        return self.now


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]  # names in lower case
    body: Any  # the JSON answer

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass
class Collector:
    host: str
    port: int
    monotonic: FakeMonotonic

    def post(self, body: bytes, secret: str | None, content_type: str | None = NDJSON,
             headers: dict[str, str] | None = None, path: str = EVENTS_PATH) -> Reply:
        sent = dict(headers or {})
        if secret is not None:
            sent["Authorization"] = f"Bearer {secret}"
        if content_type is not None:
            sent["Content-Type"] = content_type
        connection = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            connection.request("POST", path, body=body, headers=sent)
            return read_reply(connection.getresponse())
        finally:
            connection.close()

    def get(self, path: str) -> Reply:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            connection.request("GET", path)
            return read_reply(connection.getresponse())
        finally:
            connection.close()


def read_reply(response: http.client.HTTPResponse) -> Reply:
    raw = response.read()
    return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, json.loads(raw) if raw else None)


@contextmanager
def running_collector(home: PlanningHome, limits: Limits = Limits(), intake: Intake | None = None) -> Iterator[Collector]:
    """The collector until the block ends: on the embedded default, writing ``home``'s store, unless given
    another ``intake`` (which it closes)."""
    monotonic = FakeMonotonic()
    intake = intake or StoreIntake(home)
    sock = listening_socket("127.0.0.1", 0)
    server = uvicorn_server(collector_app(intake, limits, clock=lambda: RECEIVED_AT, monotonic=monotonic))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="collector", daemon=True)
    thread.start()  # the socket listens already: a request sent before uvicorn accepts waits in the backlog
    try:
        yield Collector("127.0.0.1", sock.getsockname()[1], monotonic)
    finally:
        server.should_exit = True
        thread.join()
        intake.close()
        sock.close()


def add_sender(home: PlanningHome, name: str, event_types: list[str], boroughs: list[str] | None) -> str:
    """Register a sender in ``home``'s registry; its secret."""
    with SenderRegistry.of(home) as registry:
        return registry.add(name, event_types, boroughs)


def ndjson(*events: dict[str, Any] | bytes) -> bytes:
    return b"".join((e if isinstance(e, bytes) else json.dumps(e).encode()) + b"\n" for e in events)
