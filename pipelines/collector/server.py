"""Running the collector: uvicorn on a socket we bind ourselves, until SIGINT or SIGTERM.

The socket is bound before uvicorn starts, so a port in use is a refusal
with a message (``CannotListen``), and ``--port 0`` (a free port, for tests
and benches) can be told to the caller, who prints where it listens.

Stopping: uvicorn catches SIGINT and SIGTERM, stops accepting, lets the
requests in flight finish (at most ``GRACE_SECONDS``; a request stored is
answered) and returns; uvicorn then raises the signal again, to the handler
that was there before it. ``serve`` installs one that only notes the
signal, so either signal ends in a clean return and the caller closes the
store, which releases its writer lock.

The server itself takes up to ``MAX_CONNECTIONS`` connections and requests
at once (more are answered 503 in plain text by uvicorn): a guard against
running out of file descriptors, far above what the site or the collector
need. Each side bounds its own work below that: the collector holds at most
``Limits.bodies_at_once`` bodies (``pipelines.collector.app``: 503 with
``Retry-After`` beyond, which bounds its memory), and the web site renders
pages in a few threads of its own, queueing the rest (``pipelines.web.pages.view``).
So 50 or 500 keep-alive browsers are answered, late rather than refused,
and a flood of page requests does not take the collector's slots.
"""

from __future__ import annotations

import signal
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn
from starlette.applications import Starlette

MAX_CONNECTIONS = 1_000
GRACE_SECONDS = 10


class CannotListen(OSError):
    """The address cannot be listened on (in use, not this machine's, not allowed)."""


def listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=128)
    except OSError as error:
        raise CannotListen(f"cannot listen on {host}:{port}: {error.strerror or error}") from error


def address_of(sock: socket.socket, tls: bool) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"{'https' if tls else 'http'}://{shown}:{port}"


def uvicorn_server(app: Starlette, *, certfile: Path | None = None, keyfile: Path | None = None) -> uvicorn.Server:
    config = uvicorn.Config(
        app, lifespan="off", log_config=None, log_level="warning", access_log=False, server_header=False,
        limit_concurrency=MAX_CONNECTIONS, timeout_graceful_shutdown=GRACE_SECONDS,
        ssl_certfile=str(certfile) if certfile else None, ssl_keyfile=str(keyfile) if keyfile else None,
    )
    return uvicorn.Server(config)


@contextmanager
def _noting_signals() -> Iterator[list[int]]:
    """SIGINT and SIGTERM only noted (in the list yielded) while this holds; the handlers before are restored."""
    noted: list[int] = []
    handled = (signal.SIGINT, signal.SIGTERM)
    before = {sig: signal.signal(sig, lambda number, frame: noted.append(number)) for sig in handled}
    try:
        yield noted
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


def serve(server: uvicorn.Server, sock: socket.socket) -> list[int]:
    """Serve on ``sock`` until SIGINT or SIGTERM (from the main thread); the signals that stopped it."""
    with _noting_signals() as noted:
        server.run(sockets=[sock])
    return noted
