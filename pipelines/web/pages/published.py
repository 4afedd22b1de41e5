"""Public pages rendered once per published snapshot, then answered from memory.

A public page shows only the current snapshot's published aggregates, the same for every reader who is
not signed in, so reading the snapshot (DuckDB) and rendering the page (Jinja) again for each of 50
readers of ``/boroughs/hackney`` is work thrown away. The page's body is kept, keyed by the snapshot's
identity and the page's address, until another snapshot is published (``pipelines.web.pages.kept``, which
also keeps the content of signed-in pages). Asking whether a page is kept is one ``stat`` of the pointer
file, no read, so a page already kept is answered without a thread (``kept``).

Only a 200 is kept: a 404 for a name that is no borough is rendered each time, so what is held stays
bounded by the real pages.

What is kept is the page's body. The headers are every response's own, set on the way out
(``pipelines.web.headers``: the same fixed policy for every response, no nonce), and a signed-in reader's
page is never kept whole: its header names the account and its sign-out form holds the session's CSRF token.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from starlette.responses import HTMLResponse, Response

from pipelines.web.pages.kept import KeptContent


@dataclass(frozen=True)
class Kept:
    body: bytes
    media_type: str | None
    status_code: int

    def response(self) -> HTMLResponse:
        return HTMLResponse(self.body, media_type=self.media_type)


class PublicPages:
    """The public pages of one site, kept per published snapshot. Safe to use from any thread."""

    def __init__(self, projections: Path) -> None:
        self._pages: KeptContent[Kept] = KeptContent(projections, size=lambda page: len(page.body))

    def kept(self, page: str) -> Response | None:
        """The page at address ``page`` as rendered for the current snapshot, if it was."""
        found = self._pages.kept(page)
        return None if found is None else found.response()

    def rendered(self, page: str, render: Callable[[], Response]) -> Response:
        """The page at ``page``: the one kept for the current snapshot, else ``render()``'s (kept if a 200)."""
        fresh: list[Response] = []

        def rendered_now() -> Kept:
            response = render()
            fresh.append(response)
            return Kept(bytes(response.body), response.media_type, response.status_code)

        found = self._pages.made(page, rendered_now, keep=lambda kept: kept.status_code == 200)
        return fresh[0] if fresh else found.response()
