"""`planning serve`: the HTTP collector (docs/collector.md) and the web site (docs/web.md) on one port,
until Ctrl-C or SIGTERM.

``/v1/…`` is the collector's, with its own Bearer authentication; every other path is the web site's,
behind its guard (``pipelines.web``). Neither app sees the other's requests.

Where the events go: with ``--bootstrap``, or when the home's own broker runs
(`planning broker start`, `planning up`), the streaming stack's worker writes
the store, so the collector hands every line to Kafka as the ``collector``
principal (``pipelines.streaming.handover``; its password from the
environment or a 0600 file, never the command line:
``pipelines.streaming.credentials``). Otherwise, the embedded default, it is
the store's one writer for as long as it runs (holder ``planning serve``).
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from events.home import PlanningHome
from pipelines.cli import arguments
from pipelines.exit_codes import ExitCode

DEFAULT_PORT = 8080


def add_serve_command(commands: argparse._SubParsersAction) -> None:
    """Register `planning serve` on the `planning` parser."""
    from pipelines.collector.limits import DEFAULT_BURST, DEFAULT_RATE, MAX_BURST, MAX_EVENTS, MAX_RATE

    serve = commands.add_parser(
        "serve", help="run the HTTP collector (/v1/events) and the web site on one port (until Ctrl-C / SIGTERM)",
        description="Receive events over HTTP from registered senders (`planning senders add`): POST /v1/events "
                    "with their secret (Authorization: Bearer), JSON Lines or a JSON array. Each event is checked against "
                    "the contract and the sender's grants and appended to the event store, which the collector "
                    "writes alone while it runs (`planning ingest` refuses meanwhile); on the streaming stack "
                    "(--bootstrap, or the home's broker running) it is handed to Kafka for the stream worker "
                    "instead. Every other path is the web site (docs/web.md), its accounts managed with `planning users`. Prints where it listens. Ctrl-C or SIGTERM lets the requests in flight finish and "
                    "releases the store: exit 0. Exit 3 when the store is being written by another process, Kafka "
                    "cannot be reached, the address cannot be listened on, or GOV.UK Frontend is not installed (`npm ci`).")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default 127.0.0.1; another address needs --certfile and --keyfile)")
    serve.add_argument("--port", type=arguments.whole_number(0, 65_535), default=DEFAULT_PORT,
                       help=f"port to listen on (default {DEFAULT_PORT}; 0 picks a free one)")
    serve.add_argument("--rate", type=arguments.positive_number(MAX_RATE, "events per second"), default=DEFAULT_RATE, metavar="EVENTS",
                       help=f"events per second each sender may send, sustained (default {DEFAULT_RATE:,.0f}; "
                            "more is answered 429 with Retry-After)")
    serve.add_argument("--burst", type=arguments.whole_number(MAX_EVENTS, MAX_BURST), default=DEFAULT_BURST,
                       metavar="EVENTS", help=f"events each sender may send at once before --rate applies "
                                          f"(default {DEFAULT_BURST:,}; at least {MAX_EVENTS:,}, one full request)")
    serve.add_argument("--bootstrap", default=None, metavar="HOST:PORT",
                       help="hand the events to the Kafka at HOST:PORT, whose stream worker writes the store, logged "
                            "in as the collector principal; default: the home's broker when it runs, else the store itself")
    serve.add_argument("--certfile", type=Path, default=None, help="TLS certificate (PEM) to serve HTTPS with")
    serve.add_argument("--keyfile", type=Path, default=None, help="the TLS certificate's private key (PEM)")
    serve.set_defaults(run=_serve)


def _serve(args: argparse.Namespace, home: PlanningHome) -> int:
    from events.storage.store import StoreLocked
    from pipelines.collector.app import EVENTS_PATH, collector_app
    from pipelines.collector.intake import StoreIntake
    from pipelines.collector.limits import Limits
    from pipelines.collector.server import CannotListen, address_of, listening_socket, serve, uvicorn_server
    from pipelines.ingest.files import unwritable_reason

    from pipelines.web.guard import loopback_host

    if (args.certfile is None) != (args.keyfile is None):
        print("planning serve: give --certfile and --keyfile together", file=sys.stderr)
        return ExitCode.USAGE
    tls = args.certfile is not None
    if not tls and not loopback_host(args.host):
        print(f"planning serve: refusing to listen on {args.host} without TLS: senders' secrets would cross the "
              "network in clear. Give --certfile and --keyfile, or listen on 127.0.0.1 behind a TLS proxy.",
              file=sys.stderr)
        return ExitCode.USAGE
    for path in (args.certfile, args.keyfile):
        if path is not None and not path.is_file():
            print(f"planning serve: no such file: {path}", file=sys.stderr)
            return ExitCode.USAGE
    limits = Limits(rate=args.rate, burst=args.burst)
    from pipelines.web.app import AssetsMissing, govuk_frontend, web_app
    from pipelines.web.oidc import ProviderMisconfigured, identity_provider

    try:
        provider = identity_provider()
    except ProviderMisconfigured as misconfigured:
        print(f"planning serve: {misconfigured}", file=sys.stderr)
        return ExitCode.USAGE
    try:
        site = web_app(home, govuk=govuk_frontend(), provider=provider)
    except AssetsMissing as missing:
        print(f"planning serve: {missing}", file=sys.stderr)
        return ExitCode.FAILED
    try:
        sock = listening_socket(args.host, args.port)
    except CannotListen as error:
        print(f"planning serve: {error}", file=sys.stderr)
        return ExitCode.FAILED
    bootstrap = args.bootstrap or _home_broker(home)
    try:
        intake = _kafka_intake(home, bootstrap) if bootstrap else StoreIntake(home)
    except StoreLocked as locked:
        sock.close()
        print(f"planning serve: {locked}. {_while_locked(locked.holder)}", file=sys.stderr)
        return ExitCode.FAILED
    except CannotHandOver as refused:
        sock.close()
        print(f"planning serve: {refused}", file=sys.stderr)
        return ExitCode.FAILED
    except (OSError, sqlite3.Error) as error:
        sock.close()
        reason = unwritable_reason(error)
        if reason is None:
            raise
        print(f"planning serve: cannot write the event store at {home.store}: {reason}", file=sys.stderr)
        return ExitCode.CANNOT_WRITE
    from events.storage.backends import describe_store

    writing = (f"handing events to Kafka at {bootstrap} as the collector" if bootstrap
               else f"writing {describe_store(home.store)}")
    try:
        address = address_of(sock, tls)
        print(address, flush=True)
        print(f"planning serve: listening on {address}{EVENTS_PATH}, {writing} "
              f"({limits.rate:,g} events/s per sender, bursts of {limits.burst:,}); Ctrl-C stops", file=sys.stderr,
              flush=True)
        stopped_by = serve(uvicorn_server(one_port(collector_app(intake, limits), site), certfile=args.certfile, keyfile=args.keyfile), sock)
    finally:
        intake.close()
        sock.close()
    released = "every event handed over was acknowledged by Kafka" if bootstrap else "the event store is released"
    print(f"planning serve: stopped{' on a signal' if stopped_by else ''}; {released}", file=sys.stderr)
    return ExitCode.OK


COLLECTOR_PREFIX = "/v1/"


AsgiApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


def one_port(collector: AsgiApp, site: AsgiApp) -> AsgiApp:
    """One ASGI app: ``/v1/…`` to the collector, the rest to the web site."""

    async def dispatch(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and (scope["path"] + "/").startswith(COLLECTOR_PREFIX):
            await collector(scope, receive, send)
        else:
            await site(scope, receive, send)

    return dispatch


class CannotHandOver(RuntimeError):
    """The collector cannot log in to Kafka; the message says what to do."""


def _home_broker(home: PlanningHome) -> str | None:
    """The bootstrap of the home's own broker when it runs (the streaming stack), else None."""
    from pipelines.streaming.broker import status

    current = status(home.kafka)
    return current.bootstrap if current.running else None


def _kafka_intake(home: PlanningHome, bootstrap: str):
    from pipelines.collector.handing_over import KafkaIntake
    from pipelines.streaming.credentials import MissingCredentials, service_login

    try:
        login = service_login("collector", home.kafka)
    except MissingCredentials as missing:
        raise CannotHandOver(f"cannot log in to Kafka at {bootstrap} as the collector: {missing}") from None
    try:
        return KafkaIntake(home, bootstrap, login)
    except Exception as error:  # no broker there, refused, timed out: say so plainly
        raise CannotHandOver(f"cannot reach Kafka at {bootstrap} as the collector: {error!r}; start the streaming "
                             "stack (`planning up`), or leave out --bootstrap to write the store itself") from error


def _while_locked(holder: str) -> str:
    """What to do when ``holder`` (as the lock file names it) writes the store the collector would write."""
    if "worker" in holder:
        from pipelines.streaming.worker import holder_bootstrap

        bootstrap = holder_bootstrap(holder)
        return ("The stream worker writes this store: start the collector on its Kafka with "
                f"`planning serve --bootstrap {bootstrap or 'HOST:PORT'}`, and it hands the events over to it.")
    return f"Only one process may write the store at a time: start the collector when {holder} has finished."


def while_serving(holder: str) -> str:
    """What `planning ingest` can do while the collector writes the store (``holder`` as the lock file names it)."""
    return ("While the HTTP collector runs it is the only writer: POST the file to it as a registered sender "
            f"(docs/collector.md), or stop the collector ({holder}) with Ctrl-C or SIGTERM, run the ingest, "
            "then start it again.")
