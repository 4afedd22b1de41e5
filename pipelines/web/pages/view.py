"""Rendering a page of this package: the site's ``render``, with what every page template uses
(``show``: how values are written; ``carry``: a link that keeps the chosen snapshot), and the
refusals a page gives (``Refused``), rendered as a page that says what to do instead.

Pages are read and rendered off the event loop, in ``PAGE_THREADS`` threads of the site's own
(``page_threads``): the DuckDB reads and the Jinja rendering never hold up the static files or the
collector's requests on the same server, and a page request beyond those threads waits its turn
rather than being refused. The threads are the site's bound on the work it does at once; how many
requests may wait is the server's (``pipelines.collector.server.MAX_CONNECTIONS``). The collector
runs its own work in other threads, so a flood of page requests never takes them.

A public page that is the same for every reader who is not signed in is answered from the ones
rendered for the current snapshot (``pipelines.web.pages.published``); a page kept is answered on
the event loop, with no thread. A Panel page keeps what it shows of the snapshot in the same way
(``kept_page``, ``pipelines.web.pages.kept``) and renders the reader's own page around it per request.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from functools import partial, wraps
from typing import Any

import anyio.to_thread
from anyio import CapacityLimiter
from starlette.requests import Request
from markupsafe import Markup
from starlette.responses import HTMLResponse, Response

from pipelines.web.audience import viewer_of
from pipelines.web.pages import shown
from pipelines.web.pages.kept import KeptContent
from pipelines.web.pages.published import PublicPages
from pipelines.web.pages.snapshot import Refused, carried
from pipelines.web.rendering import environment, render

Endpoint = Callable[[Request], Awaitable[Response] | Response]
HEADINGS = {400: "This page cannot show that", 404: "Page not found", 503: "Nothing to show yet"}
PAGE_THREADS = 8  # DuckDB reads let go of the GIL, rendering does not: more threads would only wait for it


def page(request: Request, template: str, context: dict[str, Any], *, status_code: int = 200) -> HTMLResponse:
    names = {"show": shown, "carry": partial(carried, request), **context}
    return render(request, f"pages/{template}", names, status_code=status_code)


@dataclass(frozen=True)
class Content:
    """What a Panel page shows of the snapshot, rendered: the page's title and its content (no header)."""

    title: str
    body: Markup

    @property
    def size(self) -> int:
        return len(self.body)


@dataclass(frozen=True)
class Download:
    """A download's file, as made from the snapshot."""

    body: bytes
    filename: str

    @property
    def size(self) -> int:
        return len(self.body)


def content(request: Request, template: str, title: str, context: dict[str, Any]) -> Content:
    """``template`` (a page's content, no header) rendered from ``context`` and the page's query only: it is given
    no viewer and no session, so what it renders names nobody and can be kept for every reader."""
    names = {"show": shown, "carry": partial(carried, request), "viewer": None, **context}
    return Content(title, Markup(environment.get_template(f"pages/{template}").render(names)))


def kept_content(request: Request) -> KeptContent[Content | Download]:
    return request.app.state.kept_content


def asked(request: Request) -> Hashable:
    """What a page reads from its request: its path and its query (in a fixed order)."""
    return request.url.path, tuple(sorted(request.query_params.multi_items()))


def kept_page(request: Request, active: str, make: Callable[[], Content]) -> HTMLResponse:
    """The Panel page whose content ``make`` renders, kept per snapshot and query; the page around it (the header
    naming the reader, the sign-out form's CSRF token, the Panel's links) rendered for this request."""
    made = kept_content(request).made(("page", asked(request)), make)
    assert isinstance(made, Content)
    return page(request, "panel/kept.html", {"title": made.title, "content": made.body, "active": active})


def page_threads(request: Request) -> CapacityLimiter:
    """The site's threads for pages: made on its event loop at its first page."""
    state = request.app.state
    if getattr(state, "page_threads", None) is None:
        state.page_threads = CapacityLimiter(PAGE_THREADS)
    return state.page_threads


def public_pages(request: Request) -> PublicPages:
    return request.app.state.public_pages


async def in_page_thread(request: Request, work: Callable[..., Any], *args: Any) -> Any:
    """``work(*args)`` in one of the site's page threads, waiting for one if all are busy."""
    return await anyio.to_thread.run_sync(work, *args, limiter=page_threads(request))


def answering(endpoint: Endpoint, *, once_per_snapshot: bool = False) -> Endpoint:
    """``endpoint``, with its refusals answered as a page that says why and what to do.

    A page that reads a snapshot is a plain function, run in the site's page threads
    (``in_page_thread``); one that reads the request's body is a coroutine, and puts its own
    reading and rendering there. ``once_per_snapshot``: a public page that is the same for every
    reader not signed in, kept per published snapshot.
    """
    if inspect.iscoroutinefunction(endpoint):
        @wraps(endpoint)
        async def answered_later(request: Request) -> Response:
            try:
                return await endpoint(request)
            except Refused as refusal:
                return await in_page_thread(request, refused, request, refusal)

        return answered_later

    def answered(request: Request) -> Response:
        try:
            return endpoint(request)
        except Refused as refusal:
            return refused(request, refusal)

    def answered_once(request: Request) -> Response:
        return public_pages(request).rendered(request.url.path, partial(answered, request))

    @wraps(endpoint)
    async def in_thread(request: Request) -> Response:
        if once_per_snapshot and viewer_of(request) is None:
            kept = public_pages(request).kept(request.url.path)
            if kept is not None:
                return kept
            return await in_page_thread(request, answered_once, request)
        return await in_page_thread(request, answered, request)

    return in_thread


def refused(request: Request, refusal: Refused) -> Response:
    return page(request, "refused.html", {"heading": HEADINGS.get(refusal.status, "Refused"), "told": refusal.told,
                                          "synthetic": False}, status_code=refusal.status)
