"""The authority's own identity provider, through OpenID Connect, when `planning serve` is told of one.

Set in the environment of `planning serve` (all but the first two optional):

- ``PLANNING_OIDC_ISSUER``: the provider's issuer URL, exactly as its ID tokens say it (its discovery
  document is read from ``<issuer>/.well-known/openid-configuration``). ``https://``; plain ``http://``
  only on a loopback host.
- ``PLANNING_OIDC_CLIENT_ID``: the site's client id, from registering it with the provider.
- the client secret: ``PLANNING_OIDC_CLIENT_SECRET_FILE`` naming a file only its owner may read (0600),
  or ``PLANNING_OIDC_CLIENT_SECRET``; never a command-line argument, which ``ps`` would show.
- ``PLANNING_OIDC_NAME``: what the sign-in page's button names the provider (default: "your
  organisation's account").
- ``PLANNING_OIDC_REDIRECT_URI``: the callback's address as registered, when the site is reached through
  a proxy whose address the site cannot see (default: ``/sign-in/oidc/callback`` on the request's host).
- ``PLANNING_OIDC_CA_FILE``: the certificate authority (PEM) of a provider whose certificate a public CA
  did not sign.

Without ``PLANNING_OIDC_ISSUER`` the site signs in with its own passwords only, and has no provider routes.
The flow is the authorization code flow with PKCE (S256), a nonce and a state, scope ``openid`` only: the
site needs to know who someone is, not their e-mail or groups. authlib does the protocol (discovery, the
token request, the ID token's signature against the provider's JWKS, its issuer, audience, expiry and
nonce); ``pipelines.web.account.provider_sign_in`` decides who that lets in.
"""

from __future__ import annotations

import os
import ssl
import stat
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from authlib.integrations.starlette_client import OAuth, StarletteOAuth2App

from pipelines.web.guard import loopback_host

ISSUER_ENV = "PLANNING_OIDC_ISSUER"
CLIENT_ID_ENV = "PLANNING_OIDC_CLIENT_ID"
SECRET_ENV = "PLANNING_OIDC_CLIENT_SECRET"
SECRET_FILE_ENV = "PLANNING_OIDC_CLIENT_SECRET_FILE"
NAME_ENV = "PLANNING_OIDC_NAME"
REDIRECT_ENV = "PLANNING_OIDC_REDIRECT_URI"
CA_ENV = "PLANNING_OIDC_CA_FILE"
DEFAULT_NAME = "your organisation's account"
SCOPE = "openid"


class ProviderMisconfigured(ValueError):
    """The environment names a provider the site cannot use; the message names the variable and the fix."""


@dataclass(frozen=True)
class IdentityProvider:
    issuer: str
    client_id: str
    client_secret: str = field(repr=False)
    name: str = DEFAULT_NAME
    redirect_uri: str | None = None
    cafile: str | None = None

    @property
    def discovery_url(self) -> str:
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"


def identity_provider(environ: dict[str, str] | None = None) -> IdentityProvider | None:
    """The provider the environment names, None when it names none, or :class:`ProviderMisconfigured`."""
    environ = dict(os.environ if environ is None else environ)
    issuer = environ.get(ISSUER_ENV, "").strip()
    if not issuer:
        return None
    _check_address(ISSUER_ENV, issuer)
    client_id = environ.get(CLIENT_ID_ENV, "").strip()
    if not client_id:
        raise ProviderMisconfigured(f"${CLIENT_ID_ENV} is not set: give the client id the provider issued when the "
                                    f"site was registered with it (or unset ${ISSUER_ENV} to sign in by password only)")
    redirect_uri = environ.get(REDIRECT_ENV, "").strip() or None
    if redirect_uri is not None:
        _check_address(REDIRECT_ENV, redirect_uri)
    cafile = environ.get(CA_ENV, "").strip() or None
    if cafile is not None and not Path(cafile).is_file():
        raise ProviderMisconfigured(f"${CA_ENV}: no such file: {cafile}")
    return IdentityProvider(issuer, client_id, _client_secret(environ), environ.get(NAME_ENV, "").strip() or DEFAULT_NAME,
                            redirect_uri, cafile)


def _client_secret(environ: dict[str, str]) -> str:
    path = environ.get(SECRET_FILE_ENV, "").strip()
    if path:
        try:
            mode = Path(path).stat().st_mode
            secret = Path(path).read_text().strip()
        except OSError as error:
            raise ProviderMisconfigured(f"${SECRET_FILE_ENV}: cannot read {path}: {error.strerror}") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ProviderMisconfigured(f"${SECRET_FILE_ENV}: {path} may be read by others than its owner: "
                                        f"`chmod 600 {path}`")
    else:
        secret = environ.get(SECRET_ENV, "").strip()
    if not secret:
        raise ProviderMisconfigured(f"no client secret: set ${SECRET_FILE_ENV} to a 0600 file holding the secret the "
                                    f"provider issued (or ${SECRET_ENV})")
    return secret


def _check_address(variable: str, address: str) -> None:
    parts = urlsplit(address)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname and loopback_host(parts.hostname):
        return
    raise ProviderMisconfigured(f"${variable}: {address!r} is not an https:// address (plain http:// is for a "
                                "provider on this machine's loopback only, as in a test)")


def provider_client(provider: IdentityProvider) -> StarletteOAuth2App:
    """authlib's client of the provider; it reads the discovery document and the JWKS when first needed."""
    options: dict[str, object] = {"scope": SCOPE, "code_challenge_method": "S256", "timeout": 10}
    if provider.cafile:
        options["verify"] = ssl.create_default_context(cafile=provider.cafile)
    return OAuth().register("authority", server_metadata_url=provider.discovery_url, client_id=provider.client_id,
                            client_secret=provider.client_secret, client_kwargs=options)
