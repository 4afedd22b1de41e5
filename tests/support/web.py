"""A real web site for a test: uvicorn on a free port of 127.0.0.1, in a thread, on a clock the test moves.

The app is the one `planning serve` runs (``pipelines.web.app.web_app``); only the clock and the password
hasher's cost are the test's (Argon2id with small parameters: a hash of the real cost would only slow the
tests). Requests go over a real socket (``http.client``), from a ``Browser`` that keeps cookies as a
browser would and can say which Host it asked for (to be a loopback host or not).
"""

from __future__ import annotations

import http.client
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode

from argon2 import PasswordHasher

from events.home import PlanningHome
from pipelines.collector.server import listening_socket, uvicorn_server
from pipelines.web.accounts import AccountBook
from pipelines.web.app import web_app
from pipelines.web.oidc import IdentityProvider

NOW = datetime(2026, 8, 1, 9, 0, tzinfo=timezone.utc)
CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]*)"')


@dataclass
class Clock:
    now: datetime = NOW

    def __call__(self) -> datetime:
        return self.now

    def move(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass(frozen=True)
class Reply:
    status: int
    headers: list[tuple[str, str]]  # names in lower case, in order, repeated ones repeated (Set-Cookie)
    text: str
    body: bytes = b""  # the bytes as they came (a download's)

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k == name.lower()), None)

    def cookies_set(self) -> dict[str, str]:
        """Each Set-Cookie's name and its whole header value."""
        return {v.split("=", 1)[0]: v for k, v in self.headers if k == "set-cookie"}

    @property
    def csrf_token(self) -> str:
        found = CSRF_FIELD.search(self.text)
        assert found, f"no csrf_token field in the page:\n{self.text[:2000]}"
        return found.group(1)


@dataclass
class Browser:
    port: int
    host: str = "127.0.0.1"  # the Host header sent: a loopback host by default
    cookies: dict[str, str] = field(default_factory=dict)

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> Reply:
        sent = {"Host": f"{self.host}:{self.port}", **(headers or {})}
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            body = response.read()
            reply = Reply(response.status, [(k.lower(), v) for k, v in response.getheaders()],
                          body.decode("utf-8", "replace"), body)
        finally:
            connection.close()
        for name, value in reply.cookies_set().items():
            cookie_value = value.split(";", 1)[0].split("=", 1)[1]
            if "Max-Age=0" in value:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = cookie_value
        return reply

    def get(self, path: str) -> Reply:
        return self.request("GET", path)

    def post(self, path: str, fields: dict[str, str]) -> Reply:
        return self.request("POST", path, urlencode(fields).encode(),
                            {"Content-Type": "application/x-www-form-urlencoded"})

    def sign_in(self, name: str, password: str, next_page: str = "/") -> Reply:
        token = self.get("/sign-in").csrf_token
        return self.post("/sign-in", {"csrf_token": token, "name": name, "password": password, "next": next_page})

    def form_token(self, path: str = "/account/password") -> str:
        return self.get(path).csrf_token


@dataclass
class Site:
    port: int
    clock: Clock
    accounts: AccountBook

    def browser(self, host: str = "127.0.0.1") -> Browser:
        return Browser(self.port, host)

    def account(self, name: str, role: str, password: str | None = None) -> str:
        """Add an account; its password: ``password`` (already changed, as if at a first sign-in) or the one-time one."""
        one_time = self.accounts.add(name, role)
        if password is None:
            return one_time
        self.accounts.change_password(name, one_time, password, password)
        return password


@contextmanager
def running_site(home: PlanningHome, clock: Clock | None = None,
                 provider: IdentityProvider | None = None) -> Iterator[Site]:
    clock = clock or Clock()
    app = web_app(home, clock=clock, hasher=CHEAP, provider=provider)
    sock = listening_socket("127.0.0.1", 0)
    server = uvicorn_server(app)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="web", daemon=True)
    thread.start()
    try:
        yield Site(sock.getsockname()[1], clock, app.state.accounts)
    finally:
        server.should_exit = True
        thread.join()
        sock.close()
