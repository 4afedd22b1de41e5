"""Signing in through the authority's identity provider (``pipelines.web.oidc``): two public pages.

``GET /sign-in/oidc?next=…`` sends the browser to the provider, with a new flow (``pipelines.web.flows``)
behind a flow cookie. ``GET /sign-in/oidc/callback`` is where the provider sends it back: the flow is
taken (once), authlib checks the state, exchanges the code (with the PKCE verifier) and verifies the ID
token, and the person it names is let in only as the active account the data team linked them to
(``pipelines.web.identities``). Then it is the same as a password sign-in: a new session (rotation), the
old one ended, ``signed_in`` in the audit log. Every refusal is recorded as ``sign_in_failed`` with why,
and says what to do instead; the provider's subject is shown to the person, so that the data team can
link it.
"""

from __future__ import annotations

import httpx2
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.base_client import MismatchingStateError
from joserfc.errors import JoseError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from pipelines.web import flows, identities
from pipelines.web.account import _book, _note, signed_in_as
from pipelines.web.audience import Page, viewer_of
from pipelines.web.guard import SIGN_IN_PATH, cookie_header, relative_next
from pipelines.web.oidc import IdentityProvider
from pipelines.web.rendering import rendered

START_PATH = SIGN_IN_PATH + "/oidc"
CALLBACK_PATH = START_PATH + "/callback"


def _provider(request: Request) -> IdentityProvider:
    return request.app.state.identity_provider


async def start(request: Request) -> Response:
    wanted = relative_next(request.query_params.get("next"))
    if viewer_of(request) is not None:
        return RedirectResponse(wanted, status_code=303)
    provider = _provider(request)
    request.scope["session"] = {}  # authlib keeps the state, nonce and verifier here; we keep it server-side
    callback = provider.redirect_uri or str(request.url_for("oidc_callback"))
    try:
        redirect = await request.app.state.provider_client.authorize_redirect(request, callback)
    except (httpx2.HTTPError, AuthlibBaseError, ValueError, KeyError) as error:
        return await _unreachable(request, provider, error)
    token = await run_in_threadpool(flows.begin, _book(request), {"authlib": request.scope["session"], "next": wanted})
    redirect.headers.append("set-cookie", cookie_header(flows.FLOW_COOKIE, token, request))
    return redirect


async def callback(request: Request) -> Response:
    provider, book = _provider(request), _book(request)
    token = request.cookies.get(flows.FLOW_COOKIE)
    flow = await run_in_threadpool(flows.take, book, token) if token else None
    if flow is None:
        return await _start_again(request, "this sign-in was not started in this browser, was used already, or took "
                                           f"longer than {flows.FLOW_LIFETIME.seconds // 60} minutes")
    request.scope["session"] = flow["authlib"]
    if request.query_params.get("error"):
        said = request.query_params.get("error", "")[:100]
        await _note(request, None, "sign_in_failed", f"{provider.issuer} answered {said}")
        return await _refused(request, 401, f"{provider.name} did not sign you in (it said: {said})",
                              "try again, or sign in with your account name and password if you have one")
    try:
        answer = await request.app.state.provider_client.authorize_access_token(request)
    except MismatchingStateError:
        return await _start_again(request, "the provider's answer was for another sign-in")
    except (AuthlibBaseError, JoseError) as error:
        return await _unverified(request, provider, f"{type(error).__name__}: {error}")
    except (httpx2.HTTPError, ValueError, KeyError) as error:
        return await _unreachable(request, provider, error)
    claims = answer.get("userinfo") or {}
    subject = str(claims.get("sub") or "")
    if not subject:
        return await _unverified(request, provider, "no ID token, or one without a subject")
    if claims.get("iss") != provider.issuer:  # authlib checks it against the discovery document's; we, against ours
        return await _unverified(request, provider, f"the ID token's issuer is {claims.get('iss')!r}")
    account = await run_in_threadpool(identities.account_of, book, provider.issuer, subject)
    if account is None or not account.active:
        why = "is linked to no account" if account is None else f"is linked to the disabled account {account.name}"
        await _note(request, None if account is None else account.name, "sign_in_failed",
                    f"subject {subject} of {provider.issuer} {why}")
        return await _refused(request, 401, "You have no account on this site",
                              f"{provider.name} knows you, but no active account of this site is linked to you. Ask "
                              f"the data team to link your account, and give them this reference: {subject}")
    response = await signed_in_as(request, account, relative_next(flow.get("next")), f"through {provider.issuer}")
    response.headers.append("set-cookie", cookie_header(flows.FLOW_COOKIE, "", request, clear=True))
    return response


async def _start_again(request: Request, why: str) -> Response:
    response = await _refused(request, 400, "Start signing in again", f"{why}. Go back to the sign-in page and "
                                                                      "start again")
    response.headers.append("set-cookie", cookie_header(flows.FLOW_COOKIE, "", request, clear=True))
    return response


async def _unverified(request: Request, provider: IdentityProvider, why: str) -> Response:
    await _note(request, None, "sign_in_failed", f"{provider.issuer}: {why}"[:300])
    return await _refused(request, 401, "Your sign-in could not be verified",
                          f"the answer from {provider.name} did not pass the site's checks. Try again; if it happens "
                          "again, tell the data team the time, so that they can find why in the audit log")


async def _unreachable(request: Request, provider: IdentityProvider, error: Exception) -> Response:
    await _note(request, None, "sign_in_failed", f"{provider.issuer} unreachable: {type(error).__name__}: {error}"[:300])
    return await _refused(request, 502, f"{provider.name} cannot be reached",
                          "the site could not talk to the identity provider. Try again in a few minutes, or sign in "
                          "with your account name and password if you have one")


async def _refused(request: Request, status: int, heading: str, told: str) -> Response:
    return await rendered(request, "account/refused.html", {"heading": heading, "told": told}, status_code=status)


ROUTES: list[Page] = [
    Page(START_PATH, start, audience="public", name="oidc_start"),
    Page(CALLBACK_PATH, callback, audience="public", name="oidc_callback"),
]
