"""Rendering a page of this package: the site's ``render``, with what every page template uses
(``show``: how values are written; ``carry``: a link that keeps the chosen snapshot), and the
refusals a page gives (``Refused``), rendered as a page that says what to do instead."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
import inspect
from functools import partial, wraps
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from pipelines.web.pages import shown
from pipelines.web.pages.snapshot import Refused, carried
from pipelines.web.rendering import render

Endpoint = Callable[[Request], Awaitable[Response] | Response]
HEADINGS = {400: "This page cannot show that", 404: "Page not found", 503: "Nothing to show yet"}


def page(request: Request, template: str, context: dict[str, Any], *, status_code: int = 200) -> HTMLResponse:
    names = {"show": shown, "carry": partial(carried, request), **context}
    return render(request, f"pages/{template}", names, status_code=status_code)


def answering(endpoint: Endpoint) -> Endpoint:
    """``endpoint``, with its refusals answered as a page that says why and what to do.

    A page that reads a snapshot is a plain function, which Starlette runs in its thread pool, so
    that one page's DuckDB query never holds up the other requests; one that reads the request's
    body is a coroutine.
    """
    if inspect.iscoroutinefunction(endpoint):
        @wraps(endpoint)
        async def answered_later(request: Request) -> Response:
            try:
                return await endpoint(request)
            except Refused as refusal:
                return refused(request, refusal)

        return answered_later

    @wraps(endpoint)
    def answered(request: Request) -> Response:
        try:
            return endpoint(request)
        except Refused as refusal:
            return refused(request, refusal)

    return answered


def refused(request: Request, refusal: Refused) -> Response:
    return page(request, "refused.html", {"heading": HEADINGS.get(refusal.status, "Refused"), "told": refusal.told,
                                          "synthetic": False}, status_code=refusal.status)
