"""The security headers every response of the site carries, whatever answered it: a page, a redirect, a
refusal, a 404, a static file.

The Content-Security-Policy allows scripts, styles, fonts and images from the site itself only, with no
'unsafe-inline': a script or style injected into a page does not run. So no template has an inline
``<script>`` or ``style=`` attribute; GOV.UK's one inline script (marking the body ``js-enabled``) is a
file, ``/assets/site/js-enabled.js``. ``frame-ancestors 'none'`` and ``X-Frame-Options: DENY`` keep the
site out of other sites' frames; ``form-action 'self'`` keeps its forms posting to itself.

Pages are ``Cache-Control: no-store``, signed in or not: a signed-in page may hold what only its
audience may see, and every form holds a CSRF token. Assets under ``/assets/`` may be cached a day.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    "font-src 'none'",  # the site serves no fonts: system typefaces only (docs/decisions.md)
    "connect-src 'self'",
    "object-src 'none'",
    "frame-ancestors 'none'",
    "form-action 'self'",
    "base-uri 'none'",
))
EVERY_RESPONSE = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}
ASSETS_PREFIX = "/assets/"
PAGE_CACHING = "no-store"
ASSET_CACHING = "public, max-age=86400"
HSTS = "max-age=31536000"  # only on HTTPS: a browser must not be told to insist on TLS the site does not serve


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        asset = scope["path"].startswith(ASSETS_PREFIX)
        https = scope.get("scheme") == "https"

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in EVERY_RESPONSE.items():
                    headers[name] = value
                headers["Cache-Control"] = ASSET_CACHING if asset and message["status"] == 200 else PAGE_CACHING
                if https:
                    headers["Strict-Transport-Security"] = HSTS
            await send(message)

        await self.app(scope, receive, sending)
