"""Pages are rendered on the server from Jinja templates (``pipelines/web/templates/``), autoescaped.

Every template extends ``base.html`` (the GOV.UK page layout) and fills its ``title`` and ``content``
blocks. ``render`` gives each template the request and its viewer; the sign-in side adds what its forms
need (the CSRF token) through ``CONTEXT_KEY`` in the request's scope. A coroutine (an account page, the
guard's refusals) renders with ``rendered``, in a worker thread, so that Jinja never runs on the event loop.

Text written for docs/tables.md (a table's description) marks names as Markdown inline code, `like_this`;
the ``inline_code`` filter shows them as ``<code>``, the rest of the text escaped as always.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse

from pipelines.web.audience import viewer_of

TEMPLATES = Path(__file__).resolve().parent / "templates"
CONTEXT_KEY = "planning.template_context"  # extra names for every template, set by middleware
INLINE_CODE = re.compile(r"`([^`]+)`")

environment = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def inline_code(text: str) -> Markup:
    """``text`` escaped, its Markdown `code` spans as ``<code>`` elements (the backticks not shown)."""
    parts = INLINE_CODE.split(str(text))  # text, code, text, code, ..., text
    return Markup("").join(escape(part) if i % 2 == 0 else Markup("<code>%s</code>") % part
                           for i, part in enumerate(parts))


environment.filters["inline_code"] = inline_code


def render(request: Request, template: str, context: dict[str, Any] | None = None, *,
           status_code: int = 200, headers: dict[str, str] | None = None) -> HTMLResponse:
    names = {"request": request, "viewer": viewer_of(request), **request.scope.get(CONTEXT_KEY, {}), **(context or {})}
    return HTMLResponse(environment.get_template(template).render(names), status_code=status_code, headers=headers)


async def rendered(request: Request, template: str, context: dict[str, Any] | None = None, *,
                   status_code: int = 200, headers: dict[str, str] | None = None) -> HTMLResponse:
    """``render`` in a worker thread."""
    return await run_in_threadpool(render, request, template, context, status_code=status_code, headers=headers)
