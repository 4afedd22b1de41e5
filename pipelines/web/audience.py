"""Who may open a page. Every route of the site is a ``Page`` that says who it is for, so the guard has one
question to ask of any request and a route without an audience cannot exist.

Audiences, widest first: ``public`` (anyone, signed in or not), ``panel`` (a Planning Panel member, or the
data team), ``data_team`` (the data team only). A viewer is the signed-in account, or nobody.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.routing import Mount, Route
from starlette.types import ASGIApp

from pipelines.web.roles import AUDIENCES, Audience, Role

# what each role may see, besides the public pages
SEES: dict[Role, frozenset[Audience]] = {
    "panel": frozenset({"public", "panel"}),
    "data_team": frozenset({"public", "panel", "data_team"}),
}
VIEWER_KEY = "planning.viewer"  # where the sign-in middleware leaves the viewer, in the ASGI scope


@dataclass(frozen=True)
class Viewer:
    """The account a request is signed in as."""

    name: str
    role: Role
    has_password: bool = True  # False: signs in through the identity provider only (no password to change)


class Page(Route):
    """A route that says who it is for."""

    def __init__(self, path: str, endpoint: Callable[..., Any], *, audience: Audience,
                 methods: Sequence[str] = ("GET",), name: str | None = None) -> None:
        if audience not in AUDIENCES:
            raise ValueError(f"audience: {audience!r} is not one of {', '.join(AUDIENCES)}")
        super().__init__(path, endpoint, methods=list(methods), name=name)
        self.audience: Audience = audience


class Assets(Mount):
    """Files anyone may fetch (GOV.UK Frontend's CSS, JS, fonts and images; the site's own): public by kind."""

    audience: Audience = "public"

    def __init__(self, path: str, files: ASGIApp, *, name: str | None = None) -> None:
        super().__init__(path, app=files, name=name)


def audience_of(route: object) -> Audience | None:
    """The route's audience, or None for a route that declares none (the guard refuses it to everyone)."""
    return route.audience if isinstance(route, (Page, Assets)) else None


def may_see(viewer: Viewer | None, audience: Audience | None) -> bool:
    if audience == "public":
        return True
    return viewer is not None and audience is not None and audience in SEES[viewer.role]


def viewer_of(request: Request) -> Viewer | None:
    return request.scope.get(VIEWER_KEY)
