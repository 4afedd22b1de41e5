"""Rendering a page of this package: the site's ``render``, with what every page template uses
(``show``: how values are written; ``carry``: a link that keeps the chosen snapshot)."""

from __future__ import annotations

from functools import partial
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse

from pipelines.web.pages import shown
from pipelines.web.pages.snapshot import carried
from pipelines.web.rendering import render


def page(request: Request, template: str, context: dict[str, Any], *, status_code: int = 200) -> HTMLResponse:
    names = {"show": shown, "carry": partial(carried, request), **context}
    return render(request, f"pages/{template}", names, status_code=status_code)
