"""The web site's figures: each page type's server time, and a public borough page under 50 clients.

Both run `planning serve` as a subprocess on the built bench home (plain HTTP on loopback, as behind a
TLS proxy) and time requests from this process, so a figure is the server's time plus one loopback round
trip. Each is set against a raw baseline measured in the same run: for a page, the same snapshot read by
``open_reader`` and a SELECT of the table the page shows (no HTML); for the load, a static file served by
the same server to the same 50 clients (the HTTP stack alone).
"""

from __future__ import annotations

import http.client
import re
import secrets
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from bench.collector import Served
from bench.measure import Run, pct, row

PAGE_REPEATS = 30
PAGE_WARMUP = 3
CLIENTS = 50
REQUESTS_PER_CLIENT = 20
BOROUGH = "hackney"
SCOPE = "E09000012"  # Hackney, for the filtered table
FILTERED_TABLE = "theme_ranking"
DOWNLOAD_TABLE = "survey_indicators"
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]*)"')
COOKIE = re.compile(r"^([^=;]+)=([^;]*)")


class Client:
    """One keep-alive connection to the site, with its cookies (a signed-in client if ``sign_in`` was called)."""

    def __init__(self, address: tuple[str, int], *, reconnect: bool = True) -> None:
        self.address, self.reconnect = address, reconnect
        self.connection = http.client.HTTPConnection(*address, timeout=300)
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, bytes, dict[str, str]]:
        sent = {"Host": "127.0.0.1", **(headers or {})}
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        try:
            self.connection.request(method, path, body=body, headers=sent)
            response = self.connection.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            if not self.reconnect:
                raise
            # the server closes a keep-alive connection idle for 5 s (uvicorn's default): open it again, once
            self.connection.close()
            self.connection = http.client.HTTPConnection(*self.address, timeout=300)
            self.connection.request(method, path, body=body, headers=sent)
            response = self.connection.getresponse()
        data = response.read()
        for header in response.headers.get_all("set-cookie") or []:
            found = COOKIE.match(header)
            if found:
                self.cookies[found.group(1)] = found.group(2)
        return response.status, data, {k.lower(): v for k, v in response.getheaders()}

    def sign_in(self, name: str, password: str) -> None:
        status, page, _ = self.request("GET", "/sign-in")
        token = CSRF_FIELD.search(page.decode())
        if status != 200 or not token:
            raise RuntimeError(f"the sign-in page answered {status}")
        form = urlencode({"csrf_token": token.group(1), "name": name, "password": password, "next": "/"}).encode()
        status, _, _ = self.request("POST", "/sign-in", form, {"Content-Type": "application/x-www-form-urlencoded"})
        if status != 303:
            raise RuntimeError(f"signing in as {name} answered {status}")


def _accounts(home: Path) -> dict[str, tuple[str, str]]:
    """A panel and a data_team account in ``home`` (password changed, as at a first sign-in): role -> (name, password)."""
    from events.home import PlanningHome
    from pipelines.web.accounts import AccountBook

    book = AccountBook.of(PlanningHome(home))
    made = {}
    for role in ("panel", "data_team"):
        name, password = f"bench.{role}.{secrets.token_hex(3)}", secrets.token_urlsafe(16)
        one_time = book.add(name, role)
        book.change_password(name, one_time, password, password)
        made[role] = (name, password)
    return made


def _timed(repeats: int, warmup: int, call: Callable[[], Any]) -> list[float]:
    times = []
    for number in range(warmup + repeats):
        started = time.perf_counter()
        call()
        if number >= warmup:
            times.append(time.perf_counter() - started)
    return times


def _raw_select(projections: Path, cycle: str, table: str, where: str = "", params: tuple = ()) -> Callable[[], Any]:
    from projections.reading.snapshots import open_reader

    def select() -> None:
        db = open_reader(projections, cycles=[cycle])
        db.execute(f"SELECT * FROM {table} WHERE cycle = ? {where}", [cycle, *params]).fetchall()
        db.close()
    return select


def _raw_dead_letters(home: Path) -> Callable[[], Any]:
    from events.storage.store import EventStore

    def read() -> None:
        with EventStore(home / "store") as store:
            store.dead_letters()
    return read


def web_pages(run: Run) -> dict[str, Any]:
    run.ensure_built()
    home, projections, cycle = run.home, run.home / "projections", run.ds.cycles[-1]
    made = _accounts(home)
    served = Served(run, home)
    try:
        address = (served.connection.host, served.connection.port)
        anonymous, panel, team = Client(address), Client(address), Client(address)
        panel.sign_in(*made["panel"])
        team.sign_in(*made["data_team"])
        # page type: (client, path, the raw read of what it shows)
        pages = {
            "public index": (anonymous, "/boroughs", _raw_select(projections, cycle, "consultation_coverage")),
            "borough page": (anonymous, f"/boroughs/{BOROUGH}", _raw_select(
                projections, cycle, "theme_ranking", "AND scope = ?", (SCOPE,))),
            "Panel dashboard": (panel, f"/panel?cycle={cycle}", _raw_select(projections, cycle, "stage_status")),
            "Panel table, filtered": (panel, f"/panel/tables/{FILTERED_TABLE}?cycle={cycle}&scope={SCOPE}", _raw_select(
                projections, cycle, FILTERED_TABLE, "AND scope = ?", (SCOPE,))),
            "download (csv)": (panel, f"/panel/tables/{DOWNLOAD_TABLE}.csv?cycle={cycle}",
                               _raw_select(projections, cycle, DOWNLOAD_TABLE)),
            "dead letters": (team, "/data/dead-letters", _raw_dead_letters(home)),
        }
        figures = {}
        for kind, (client, path, raw) in pages.items():
            started = time.perf_counter()
            status, body, _ = client.request("GET", path)  # the first since the server started: made, then kept
            first = time.perf_counter() - started
            if status != 200:
                raise RuntimeError(f"{kind}: GET {path} answered {status}: {body[:300]!r}")
            ours = _timed(PAGE_REPEATS, PAGE_WARMUP, lambda: client.request("GET", path))
            baseline = _timed(PAGE_REPEATS, PAGE_WARMUP, raw)
            figures[kind] = {"path": path, "bytes": len(body), "first_ms": first * 1000, "p50_ms": pct(ours, 50) * 1000,
                             "p95_ms": pct(ours, 95) * 1000, "raw_p95_ms": pct(baseline, 95) * 1000}
    finally:
        served.stop()
    worst = max(f["p95_ms"] for f in figures.values())
    worst_raw = max(f["raw_p95_ms"] for f in figures.values())
    run.extra["web_pages"] = figures
    shown = "; ".join(f"{kind} p95 {f['p95_ms']:,.0f} ms" for kind, f in figures.items())
    raws = "; ".join(f"{kind} {f['raw_p95_ms']:,.1f} ms" for kind, f in figures.items())
    return row(
        "web pages",
        f"GET of each page type over one keep-alive connection: {shown}",
        f"`open_reader(cycles=[C])` + SELECT of the table each page shows (dead letters: `EventStore.dead_letters()`), "
        f"p95: {raws}",
        worst / worst_raw, f"worst p95 {worst:,.0f} ms", "p95 ≤ 200 ms (10M)", worst <= 200,
        f"cycle {cycle} of {len(run.ds.cycles)} published; {PAGE_WARMUP} requests then {PAGE_REPEATS} timed per page, "
        "one after the other; the time is the client's (server time plus one loopback round trip); the ratio is "
        "the worst page's p95 over the worst raw read's; the first request of each page since the server started "
        "(read from the snapshot and rendered, then kept until the next publish), untimed in the p95: "
        + "; ".join(f"{kind} {f['first_ms']:,.0f} ms" for kind, f in figures.items()),
        {"pages": figures, "worst_p95_ms": worst, "worst_raw_p95_ms": worst_raw, "cycle": cycle},
    )


def _load(address: tuple[str, int], path: str) -> tuple[list[float], int, float]:
    """``CLIENTS`` clients at once, each on its own connection, ``REQUESTS_PER_CLIENT`` GETs one after the other."""

    def client(_: int) -> tuple[list[float], int]:
        one, times, errors = Client(address, reconnect=False), [], 0
        for _ in range(REQUESTS_PER_CLIENT):
            started = time.perf_counter()
            try:
                status, _, _ = one.request("GET", path)
            except (OSError, http.client.HTTPException):
                status, one = 0, Client(address, reconnect=False)  # refused or closed: an error, then a new connection
            times.append(time.perf_counter() - started)
            errors += status != 200
        return times, errors

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        results = list(pool.map(client, range(CLIENTS)))
    seconds = time.perf_counter() - started
    return [t for times, _ in results for t in times], sum(e for _, e in results), seconds


def web_public_load(run: Run) -> dict[str, Any]:
    run.ensure_built()
    served = Served(run, run.home)
    try:
        address = (served.connection.host, served.connection.port)
        page = f"/boroughs/{BOROUGH}"
        static = "/assets/site/site.css"
        _load(address, page)  # warm-up: every worker's first snapshot open
        ours, errors, seconds = _load(address, page)
        raw, raw_errors, raw_seconds = _load(address, static)
    finally:
        served.stop()
    p95, raw_p95 = pct(ours, 95) * 1000, pct(raw, 95) * 1000
    count = CLIENTS * REQUESTS_PER_CLIENT
    return row(
        "web public load",
        f"GET {page} by {CLIENTS} clients at once, {REQUESTS_PER_CLIENT} each: p50 {pct(ours, 50) * 1000:,.0f} ms, "
        f"p95 {p95:,.0f} ms, {count / seconds:,.0f} pages/s, {errors} errors of {count}",
        f"GET {static} (a static file, same server, same clients): p95 {raw_p95:,.1f} ms, "
        f"{count / raw_seconds:,.0f} files/s, {raw_errors} errors",
        p95 / raw_p95, f"p95 {p95:,.0f} ms", "p95 ≤ 500 ms, no errors (10M)", p95 <= 500 and errors == 0,
        f"one warm-up round first; each client its own keep-alive connection; the clients are threads of the bench "
        f"process (their own cost is in both sides)",
        {"p95_ms": p95, "raw_p95_ms": raw_p95, "errors": errors, "raw_errors": raw_errors, "seconds": seconds,
         "raw_seconds": raw_seconds, "requests": count},
    )
