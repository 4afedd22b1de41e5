"""A real OpenID Connect provider for a test: a second Starlette app on a free port of 127.0.0.1.

It is what an authority's provider (Entra ID, Keycloak, ADFS) is to the site, and no more: a discovery
document, a JWKS, an authorization endpoint and a token endpoint, with ID tokens signed (RS256) by a key
made in the test. Whoever the test says is at the keyboard (``signs_in_as``) is signed in at once, with
no page of the provider's own. The token endpoint checks what a real one does: the client's id and
secret (HTTP Basic), a code used once, the redirect URI the code was issued for, and the PKCE verifier
against its S256 challenge; each request it answers is kept in ``seen``.

To test the site's checks, the provider can be told to lie (``Lies``): sign with a key not in its JWKS,
name another audience or issuer (in its tokens, or in its discovery document too), send back another nonce, an expired token, or no ID token at all.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode

from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from pipelines.collector.server import listening_socket, uvicorn_server
from pipelines.web.oidc import IdentityProvider

CLIENT_ID = "planning-site"
CLIENT_SECRET = "a client secret only the test knows"
KEY_ID = "test-key-1"


@dataclass
class Lies:
    """What the provider gets wrong on purpose (nothing, by default)."""

    foreign_key: bool = False  # sign with a key its JWKS does not hold (under the same key id)
    audience: str | None = None
    issuer: str | None = None
    announced_issuer: str | None = None  # the discovery document's issuer, and its tokens', another than its address
    nonce: str | None = None
    expired: bool = False
    no_id_token: bool = False
    refuse: str | None = None  # answer the authorization request with this error (e.g. access_denied)
    broken: bool = False  # the token endpoint fails (500)


@dataclass
class LocalProvider:
    port: int
    key: RSAKey
    signs_in_as: str = "subject-0001"
    lies: Lies = field(default_factory=Lies)
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    seen: list[dict[str, str]] = field(default_factory=list)

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def for_site(self, name: str = "the Authority's account") -> IdentityProvider:
        """How `planning serve` would be told of this provider."""
        return IdentityProvider(self.issuer, CLIENT_ID, CLIENT_SECRET, name)

    # --- the endpoints ---------------------------------------------------------------------------

    async def discovery(self, request: Request) -> Response:
        return JSONResponse({
            "issuer": self.lies.announced_issuer or self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
        })

    async def jwks(self, request: Request) -> Response:
        return JSONResponse({"keys": [self.key.as_dict(private=False, kid=KEY_ID, use="sig", alg="RS256")]})

    async def authorize(self, request: Request) -> Response:
        asked = dict(request.query_params)
        self.seen.append({"endpoint": "authorize", **asked})
        back = asked["redirect_uri"]
        if self.lies.refuse:
            return RedirectResponse(f"{back}?{urlencode({'error': self.lies.refuse, 'state': asked['state']})}", 302)
        if asked.get("client_id") != CLIENT_ID or asked.get("response_type") != "code":
            return JSONResponse({"error": "invalid_request"}, 400)
        code = secrets.token_urlsafe(16)
        self.codes[code] = {"redirect_uri": back, "nonce": asked.get("nonce", ""), "subject": self.signs_in_as,
                            "challenge": asked.get("code_challenge", ""), "method": asked.get("code_challenge_method", "")}
        return RedirectResponse(f"{back}?{urlencode({'code': code, 'state': asked['state']})}", 302)

    async def token(self, request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode()))
        self.seen.append({"endpoint": "token", **form, "authorization": request.headers.get("authorization", "")})
        expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if self.lies.broken:
            return Response("upstream trouble", 500)
        if request.headers.get("authorization") != expected:
            return JSONResponse({"error": "invalid_client"}, 401)
        issued = self.codes.pop(form.get("code", ""), None)  # a code is used once
        if (issued is None or form.get("grant_type") != "authorization_code"
                or form.get("redirect_uri") != issued["redirect_uri"]
                or issued["method"] != "S256" or _s256(form.get("code_verifier", "")) != issued["challenge"]):
            return JSONResponse({"error": "invalid_grant"}, 400)
        answer = {"access_token": secrets.token_urlsafe(16), "token_type": "Bearer", "expires_in": 300}
        if not self.lies.no_id_token:
            answer["id_token"] = self.id_token(issued["subject"], issued["nonce"])
        return JSONResponse(answer)

    def id_token(self, subject: str, nonce: str) -> str:
        now = int(time.time())
        claims = {"iss": self.lies.issuer or self.lies.announced_issuer or self.issuer, "sub": subject, "aud": self.lies.audience or CLIENT_ID,
                  "iat": now - 3600 if self.lies.expired else now,
                  "exp": now - 600 if self.lies.expired else now + 300, "nonce": self.lies.nonce or nonce}
        key = RSAKey.generate_key(2048) if self.lies.foreign_key else self.key
        return jwt.encode({"alg": "RS256", "kid": KEY_ID}, claims, key)


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


@contextmanager
def running_provider() -> Iterator[LocalProvider]:
    sock = listening_socket("127.0.0.1", 0)
    provider = LocalProvider(sock.getsockname()[1], RSAKey.generate_key(2048))
    app = Starlette(routes=[
        Route("/.well-known/openid-configuration", provider.discovery),
        Route("/jwks", provider.jwks),
        Route("/authorize", provider.authorize),
        Route("/token", provider.token, methods=["POST"]),
    ])
    server = uvicorn_server(app)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="identity-provider", daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        server.should_exit = True
        thread.join()
        sock.close()
