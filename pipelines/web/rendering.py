"""Pages are rendered on the server from Jinja templates (``pipelines/web/templates/``), autoescaped.

Every template extends ``base.html`` (the GOV.UK page layout) and fills its ``title`` and ``content``
blocks. ``render`` gives each template the request and its viewer; the sign-in side adds what its forms
need (the CSRF token) through ``CONTEXT_KEY`` in the request's scope.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from pipelines.web.audience import viewer_of

TEMPLATES = Path(__file__).resolve().parent / "templates"
CONTEXT_KEY = "planning.template_context"  # extra names for every template, set by middleware

environment = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def render(request: Request, template: str, context: dict[str, Any] | None = None, *,
           status_code: int = 200, headers: dict[str, str] | None = None) -> HTMLResponse:
    names = {"request": request, "viewer": viewer_of(request), **request.scope.get(CONTEXT_KEY, {}), **(context or {})}
    return HTMLResponse(environment.get_template(template).render(names), status_code=status_code, headers=headers)
