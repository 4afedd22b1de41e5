"""The web site as one Starlette app: the account pages, the site's pages (``pipelines.web.pages``), the
assets, behind the security headers, the guard and the audit trail (outermost first).

``planning serve`` runs it beside the HTTP collector on one port (``pipelines.cli.serve``): the collector's
``/v1/…`` routes keep their own Bearer authentication and are not part of this app, so the guard judges
the web site's routes only.

GOV.UK Frontend is served from the npm package ``npm ci`` installs (``node_modules/``, found at the
repository root, or where ``$PLANNING_WEB_ASSETS`` names a ``node_modules`` directory): no CDN at run time.
Its compiled CSS asks for ``/assets/images/``, so those are served too; not its ``/assets/fonts/``: GDS
Transport is for GOV.UK services only, and ``pipelines.web.typeface`` takes it out of the stylesheet.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from argon2 import PasswordHasher
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from events.home import PlanningHome
from pipelines.web import account, pages
from pipelines.web.account import provider_sign_in
from pipelines.web.accounts import AccountBook, utc_now
from pipelines.web.audience import Assets, Page
from pipelines.web.audit import AuditLog, AuditTrail
from pipelines.web.guard import Guard
from pipelines.web.headers import SecurityHeaders
from pipelines.web.oidc import IdentityProvider, provider_client
from pipelines.web.pages.kept import KeptContent
from pipelines.web.pages.published import PublicPages
from pipelines.web.rendering import render, rendered
from pipelines.web.typeface import GovukFiles

ASSETS_VARIABLE = "PLANNING_WEB_ASSETS"
REPO_ROOT = Path(__file__).resolve().parents[2]
GOVUK_DIST = Path("govuk-frontend") / "dist" / "govuk"
SITE_STATIC = Path(__file__).resolve().parent / "static"


class AssetsMissing(RuntimeError):
    """GOV.UK Frontend is not installed where the site looks for it; the message says what to run."""


def govuk_frontend(environ: dict[str, str] | None = None) -> Path:
    """GOV.UK Frontend's ``dist/govuk`` directory, or :class:`AssetsMissing`."""
    environ = os.environ if environ is None else environ
    given = environ.get(ASSETS_VARIABLE)
    node_modules = Path(given) if given else REPO_ROOT / "node_modules"
    found = node_modules / GOVUK_DIST
    if not (found / "govuk-frontend.min.css").is_file():
        where = f"${ASSETS_VARIABLE} ({given})" if given else f"the repository root ({REPO_ROOT})"
        raise AssetsMissing(f"GOV.UK Frontend is not installed: no {found}. Run `npm ci` in {where}"
                            f"{'' if given else f', or set ${ASSETS_VARIABLE} to a node_modules directory that has it'}")
    return found


async def _home(request: Request) -> Response:
    return await rendered(request, "account/home.html")


async def _not_found(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 404
    heading = "Page not found" if status == 404 else "This page cannot do that"
    told = ("if you typed the web address, check it is correct" if status == 404
            else f"it does not answer {request.method} requests")
    return await rendered(request, "account/refused.html", {"heading": heading, "told": told}, status_code=status)


def site_routes(govuk: Path, provider: IdentityProvider | None = None) -> list[BaseRoute]:
    """Every route of the site: each a ``Page`` (or public ``Assets``); the provider's two only with a provider."""
    routes: list[BaseRoute] = [*account.ROUTES, *(provider_sign_in.ROUTES if provider else []), *pages.ROUTES]
    if not any(isinstance(r, Page) and r.path == "/" for r in routes):
        routes.append(Page("/", _home, audience="public", name="home"))  # until the site's pages have a home of their own
    routes += [
        Assets("/assets/govuk", GovukFiles(directory=govuk), name="govuk"),
        Assets("/assets/images", StaticFiles(directory=govuk / "assets" / "images"), name="govuk_images"),
        Assets("/assets/site", StaticFiles(directory=SITE_STATIC), name="site"),
    ]
    return routes


class Site(Starlette):
    """The site's Starlette app, with the security headers outside even Starlette's own 500 answer."""

    def build_middleware_stack(self) -> ASGIApp:
        return SecurityHeaders(super().build_middleware_stack())


def web_app(home: PlanningHome, *, clock: Callable[[], datetime] = utc_now, govuk: Path | None = None,
            hasher: PasswordHasher | None = None, provider: IdentityProvider | None = None) -> Starlette:
    """The site over ``home``. ``clock`` (aware UTC) is "now" for sessions and pages; tests pin it. With
    ``provider``, people may also sign in through the authority's identity provider (``pipelines.web.oidc``)."""
    book = AccountBook.of(home, clock=clock, hasher=hasher)
    log = AuditLog.of(home, clock=clock)
    routes = site_routes(govuk or govuk_frontend(), provider)
    app = Site(
        routes=routes,
        middleware=[Middleware(Guard, routes=routes, book=book), Middleware(AuditTrail, log=log)],
        exception_handlers={404: _not_found, 405: _not_found},
    )
    app.state.home = home
    app.state.clock = clock
    app.state.accounts = book
    app.state.audit = log
    app.state.identity_provider = provider
    app.state.provider_client = provider_client(provider) if provider else None
    app.state.public_pages = PublicPages(home.projections)
    app.state.kept_content = KeptContent(home.projections, size=lambda piece: piece.size)
    return app
