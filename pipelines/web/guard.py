"""The guard: one middleware between every request and the site's routes, asking who is signed in and
whether they may open the route they asked for.

For each request it finds the route the router will take, reads the session cookie into a viewer
(``scope["planning.viewer"]``) and the CSRF token its forms need (``scope["planning.template_context"]``),
then refuses, before the route runs:

- a route that declares no audience (not a ``Page``): 403 to everyone, signed in or not;
- anonymous on a ``panel`` or ``data_team`` page: 303 to ``/sign-in?next=<the page>`` for GET and HEAD,
  401 otherwise;
- a signed-in account whose role may not see it: 403;
- an account with a one-time password: 303 to ``/account/password`` (only that page and sign-out are
  open to it until it has changed its password);
- a POST (any method other than GET, HEAD, OPTIONS) whose form has no valid ``csrf_token``: 403, and the
  route never runs, so nothing is stored.

A path no route matches goes on to the router, which answers 404. Files under ``/assets/`` (``Assets``,
public by kind) pass without a session being read.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Sequence
from urllib.parse import parse_qs, quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pipelines.web import sessions
from pipelines.web.accounts import AccountBook
from pipelines.web.audit import AUDIENCE_KEY
from pipelines.web.audience import VIEWER_KEY, Assets, Audience, Viewer, audience_of, may_see
from pipelines.web.rendering import CONTEXT_KEY, render, rendered

SESSION_KEY = "planning.session"  # the live Session, for the account pages
SIGN_IN_PATH = "/sign-in"
PASSWORD_PATH = "/account/password"
SIGN_OUT_PATH = "/sign-out"
OPEN_WHILE_MUST_CHANGE = frozenset({PASSWORD_PATH, SIGN_OUT_PATH})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_FORM_BYTES = 64 * 1024  # a form of the site is a few fields; more is refused before the route runs
FORM_TYPE = "application/x-www-form-urlencoded"


def loopback(request: Request) -> bool:
    """Whether the request came to a loopback host (by its Host header): only there may a cookie go without Secure."""
    return loopback_host(request.url.hostname or "")


def loopback_host(host: str) -> bool:
    """Whether ``host`` (a name or an address, IPv6 in brackets or not) is this machine's loopback."""
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cookie_header(name: str, value: str, request: Request, *, clear: bool = False) -> str:
    secure = "" if loopback(request) else "; Secure"
    ending = "; Max-Age=0" if clear else ""
    return f"{name}={'' if clear else value}; Path=/; HttpOnly; SameSite=Lax{secure}{ending}"


def relative_next(text: str | None) -> str:
    """Where to go after signing in: a path of this site only, never another site (``//evil``, ``/\\evil``)."""
    if not text or not text.startswith("/") or text.startswith(("//", "/\\")) or any(ord(c) < 32 for c in text):
        return "/"
    return text


class Guard:
    def __init__(self, app: ASGIApp, *, routes: Sequence[BaseRoute], book: AccountBook) -> None:
        self.app = app
        self.routes = routes
        self.book = book

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route, allowed = self._route(scope)
        if isinstance(route, Assets):  # files for anyone: no session to read, nothing to refuse
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        cookies = request.cookies
        token = cookies.get(sessions.SESSION_COOKIE)
        session = await run_in_threadpool(sessions.current, self.book, token) if token else None
        viewer = None if session is None else Viewer(session.account, session.role, session.has_password)
        scope[VIEWER_KEY] = viewer
        scope[SESSION_KEY] = session
        issued: list[str] = []
        if session is not None:
            csrf = session.csrf_token
        else:
            pre = cookies.get(sessions.PRE_SIGN_IN_COOKIE)
            if not pre and scope["path"] == SIGN_IN_PATH:
                pre = sessions.new_token()
                issued.append(cookie_header(sessions.PRE_SIGN_IN_COOKIE, pre, request))
            csrf = await run_in_threadpool(sessions.pre_sign_in_token, self.book, pre) if pre else ""
        scope.setdefault(CONTEXT_KEY, {})["csrf_token"] = csrf

        send = _with_cookies(send, issued)
        if route is None:  # no route: the router's 404
            await self.app(scope, receive, send)
            return
        refusal = await run_in_threadpool(self._refusal, request, route, viewer, session)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        if allowed and request.method not in SAFE_METHODS:  # a method the route has not is the router's 405
            body = await _form_body(receive)
            if body is None or not csrf or not hmac.compare_digest(_csrf_of(body), csrf):
                told = ("this form was not sent by a page of this site, or its page is too old: go back, reload "
                        "the page and send the form again")
                refused = await rendered(request, "account/refused.html",
                                         {"heading": "The form could not be accepted", "told": told}, status_code=403)
                await refused(scope, receive, send)
                return
            receive = _replaying(body, receive)
        scope[AUDIENCE_KEY] = audience_of(route)
        await self.app(scope, receive, send)

    def _route(self, scope: Scope) -> tuple[BaseRoute | None, bool]:
        """The route the router will take, and whether it takes the request's method."""
        partial = None
        for route in self.routes:
            match, _ = route.matches(scope)
            if match == Match.FULL:
                return route, True
            if match == Match.PARTIAL and partial is None:
                partial = route  # the path is this route's, the method is not: still its audience that decides
        return partial, False

    def _refusal(self, request: Request, route: BaseRoute, viewer: Viewer | None,
                 session: sessions.Session | None) -> Response | None:
        audience: Audience | None = audience_of(route)
        if audience is None:
            return _refused(request, 403, "This page is not open to anyone",
                            "it declares no audience; the data team must declare who may see it")
        if session is not None and session.must_change and request.url.path not in OPEN_WHILE_MUST_CHANGE:
            return RedirectResponse(f"{PASSWORD_PATH}?next={quote(_wanted(request), safe='')}", status_code=303)
        if may_see(viewer, audience):
            return None
        if viewer is None:
            if request.method in ("GET", "HEAD"):
                return RedirectResponse(f"{SIGN_IN_PATH}?next={quote(_wanted(request), safe='')}", status_code=303)
            return _refused(request, 401, "Sign in to do this", "sign in first, then send the form again")
        return _refused(request, 403, "You cannot open this page",
                        f"it is for the data team; your account ({viewer.name}) is a {viewer.role.replace('_', ' ')} "
                        "account. Ask the data team if you need it")


def _wanted(request: Request) -> str:
    query = request.url.query
    return relative_next(request.url.path + (f"?{query}" if query else ""))


def _refused(request: Request, status: int, heading: str, told: str) -> Response:
    return render(request, "account/refused.html", {"heading": heading, "told": told}, status_code=status)


def _with_cookies(send: Send, cookies: list[str]) -> Send:
    if not cookies:
        return send

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", []),
                                  *((b"set-cookie", c.encode("latin-1")) for c in cookies)]
        await send(message)

    return sending


async def _form_body(receive: Receive) -> bytes | None:
    """The whole body, or None when it is over ``MAX_FORM_BYTES``."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _csrf_of(body: bytes) -> str:
    """The form's one ``csrf_token``, or "" when there is none (or more than one)."""
    values = parse_qs(body.decode("latin-1"), keep_blank_values=True).get("csrf_token", [])
    return values[0] if len(values) == 1 else ""


def _replaying(body: bytes, receive: Receive) -> Receive:
    """A receive that gives the route the body the guard has read, then the connection's own messages."""
    sent = False

    async def replaying() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replaying
