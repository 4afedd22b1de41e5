"""The collector's HTTP side (Starlette): `POST /v1/events` and `GET /v1/health`.

A request is checked in this order, and the first refusal answers it
(each refusal is JSON ``{"error", "message"}``, the message saying what to do):

1. 401 without ``Authorization: Bearer <secret>``, or with a secret that is
   no sender's current one (``WWW-Authenticate: Bearer``);
2. 403 when the secret's sender is revoked;
3. 503 (``Retry-After: 1``) when ``Limits.bodies_at_once`` requests are
   already being read or judged: the body is not read, so memory stays bounded;
4. 415 for a Content-Type other than JSON Lines or JSON;
5. 413 for a body over ``Limits.max_body_bytes`` (by ``Content-Length``
   before anything is read, else as the body streams in) or with more than
   ``Limits.max_events`` events; 408 for a body not received whole within
   ``Limits.body_seconds``; 400 for a body with no events, or a JSON body
   that is not one well-formed array;
6. 429 when the sender's token bucket cannot pay for the request's events
   (``Retry-After``: whole seconds).

Nothing of a refused request is stored. A request that passes is judged
event by event and stored, or handed to Kafka on the streaming stack
(``pipelines.collector.verdicts``, ``pipelines.collector.intake``): 200, 207 or
422 with the counts and a verdict per rejected line; 503 (``Retry-After``)
when the store cannot be written (nothing of it was stored) or Kafka did not
acknowledge every line.

Every answer carries ``X-Request-Id``: the sender's own (letters, digits,
``._-``, at most 64), which lets a resent request's broken lines be known as
dead letters already stored, or one the collector made. The request id is
part of each event's origin, ``http:<sender>/<request id>#<line>``.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from events.senders.registry import Sender

from pipelines.collector.body import BodyRefused, events_of, media_type
from pipelines.collector.intake import Intake, Unavailable
from pipelines.collector.limits import MAX_BODY_SECONDS, Limits, RateLimits
from pipelines.collector.verdicts import answer, judged

EVENTS_PATH = "/v1/events"
HEALTH_PATH = "/v1/health"
REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
REALM = 'Bearer realm="planning"'
STORE_RETRY_SECONDS = 60
BUSY_RETRY_SECONDS = 1  # a body in flight is read and judged within seconds: try again soon
# every refusal's status, and the word for it in the answer's "error"
ERRORS = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 408: "request_timeout", 413: "too_large",
          415: "unsupported_media_type",
          429: "too_many_requests", 503: "unavailable"}


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def refusal(status: int, message: str, request_id: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": ERRORS[status], "message": message, "request_id": request_id}, status_code=status,
                        headers={"X-Request-Id": request_id, **(headers or {})})


def request_id_of(header: str | None) -> str:
    return header if header is not None and REQUEST_ID.fullmatch(header) else uuid.uuid4().hex


def bearer_secret(header: str | None) -> str | None:
    scheme, _, secret = (header or "").strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return secret.strip() or None


async def read_body(request: Request, limit: int, seconds: float = MAX_BODY_SECONDS) -> bytes:
    """The whole body, refused (413) by its Content-Length before reading, or once more than ``limit`` bytes came,
    or (408) when it has not all come within ``seconds``."""
    too_large = BodyRefused(413, f"body: larger than {limit:,} bytes; split it into smaller requests")
    length = request.headers.get("content-length")
    if length is not None:
        if not length.strip().isdigit():
            raise BodyRefused(400, f"Content-Length: {length[:40]!r} is not a number of bytes")
        if int(length) > limit:
            raise too_large
    chunks, size = [], 0
    try:
        async with asyncio.timeout(seconds):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise too_large
                chunks.append(chunk)
    except TimeoutError:
        raise BodyRefused(408, f"body: not received whole within {seconds:g} s; send it again, "
                               "in smaller requests if the connection is slow") from None
    return b"".join(chunks)


def collector_app(
    intake: Intake,
    limits: Limits = Limits(),
    *,
    clock: Callable[[], datetime] = utc_now,
    monotonic: Callable[[], float] = time.monotonic,
) -> Starlette:
    """The ASGI app. ``clock`` is the knowledge time recorded (and "now" for the contract's rule on the
    future); ``monotonic`` drives the rate limits. Tests pin both."""
    rates = RateLimits(limits.rate, limits.burst, monotonic)
    in_flight = 0  # requests whose body is being read or judged; counted on the event loop only, so no lock

    async def post_events(request: Request) -> JSONResponse:
        nonlocal in_flight
        request_id = request_id_of(request.headers.get("x-request-id"))
        secret = bearer_secret(request.headers.get("authorization"))
        sender = None if secret is None else await intake.identify(secret)
        if sender is None:
            told = "no Bearer secret was sent" if secret is None else "the secret is not a sender's current secret"
            return refusal(401, f"{told}: send Authorization: Bearer <your sender's secret>; "
                           "the data team gives it with `planning senders add` or `rotate`", request_id,
                           {"WWW-Authenticate": REALM if secret is None else f'{REALM}, error="invalid_token"'})
        if not sender.active:
            return refusal(403, f"sender {sender.name} is revoked: ask the data team to register a new sender",
                           request_id)
        if in_flight >= limits.bodies_at_once:
            return refusal(503, f"the collector is already taking {limits.bodies_at_once} requests at once: send this "
                           f"one again in {BUSY_RETRY_SECONDS} s; nothing was stored", request_id,
                           {"Retry-After": str(BUSY_RETRY_SECONDS)})
        in_flight += 1
        try:
            return await taken(request, request_id, sender)
        finally:
            in_flight -= 1

    async def taken(request: Request, request_id: str, sender: Sender) -> JSONResponse:
        """A request of a known, active sender: read, counted, judged and stored (or refused)."""
        try:
            kind = media_type(request.headers.get("content-type"))
            body = await read_body(request, limits.max_body_bytes, limits.body_seconds)
            events = events_of(body, kind, limits.max_events)
        except BodyRefused as refused:
            return refusal(refused.status, refused.reason, request_id)
        wait = rates.take(sender.name, len(events))
        if wait is not None:
            return refusal(429, f"sender {sender.name} may send {limits.rate:,g} events per second "
                           f"(bursts of {limits.burst:,}): send this request again in {wait} s; nothing was stored",
                           request_id, {"Retry-After": str(wait)})
        received_at = clock()
        batch = await run_in_threadpool(judged, events, sender, request_id, received_at)
        try:
            outcome = await intake.take(batch, received_at)
        except Unavailable as unavailable:
            return refusal(503, f"{unavailable}: send it again later (resending is safe: an event is stored once)",
                           request_id, {"Retry-After": str(STORE_RETRY_SECONDS)})
        done = answer(request_id, sender.name, batch, outcome)
        return JSONResponse(done.to_json(), status_code=done.status, headers={"X-Request-Id": request_id})

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "mode": intake.mode})

    return Starlette(routes=[
        Route(EVENTS_PATH, post_events, methods=["POST"]),
        Route(HEALTH_PATH, health, methods=["GET"]),
    ])
