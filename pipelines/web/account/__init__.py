"""The account pages, open to whoever the guard lets through: sign in, sign out, change your password;
and the audit log, for the data team (``/audit``).

Signing in starts a new session (a new token, whatever cookie came before: rotation) and ends the
session the browser had, if any. A one-time password (from `planning users add` or `reset`) must be
changed before any other page opens (the guard sends the account here). Changing a password ends the
account's other sessions and rotates this one.
"""

from __future__ import annotations

from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from pipelines.web import sessions, throttle
from pipelines.web.accounts import Account, AccountBook, AccountRefused
from pipelines.web.audit import SHOWN, AuditLog, path_of
from pipelines.web.audience import Page, viewer_of
from pipelines.web.forms import form_of
from pipelines.web.guard import PASSWORD_PATH, SESSION_KEY, SIGN_IN_PATH, SIGN_OUT_PATH, cookie_header, relative_next
from pipelines.web.rendering import rendered

WRONG = "Enter a correct account name and password"
PASSWORD_FIELDS = (
    ("current_password", "Current password", "", "current-password"),
    ("new_password", "New password", "At least 12 characters. Three random words are easy to remember and hard to guess.",
     "new-password"),
    ("confirm_password", "Confirm new password", "", "new-password"),
)
FIELD_OF = {"current password": "current_password", "new password": "new_password",
            "confirm new password": "confirm_password"}


def _book(request: Request) -> AccountBook:
    return request.app.state.accounts


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def _note(request: Request, account: str | None, action: str, detail: str = "") -> None:
    log: AuditLog = request.app.state.audit
    await run_in_threadpool(log.record, account, action, path_of(request.scope), detail, _address(request))


def _signed_in(request: Request, token: str, where: str) -> Response:
    """Go on with the new session's cookie, and without the pre-sign-in one."""
    response = RedirectResponse(where, status_code=303)
    response.headers.append("set-cookie", cookie_header(sessions.SESSION_COOKIE, token, request))
    response.headers.append("set-cookie", cookie_header(sessions.PRE_SIGN_IN_COOKIE, "", request, clear=True))
    return response


async def sign_in_form(request: Request) -> Response:
    wanted = relative_next(request.query_params.get("next"))
    if viewer_of(request) is not None:
        return RedirectResponse(wanted, status_code=303)
    return await rendered(request, "account/sign_in.html", {"next": wanted, "name": "", "errors": {}})


async def sign_in(request: Request) -> Response:
    form = await form_of(request)
    name, wanted = form.get("name", "").strip(), relative_next(form.get("next"))
    book = _book(request)
    address = _address(request)
    wait = await run_in_threadpool(throttle.locked_for, book, name, address)
    if wait is not None:
        minutes = -(-wait // 60)
        told = (f"There have been too many failed sign-ins. Try again in {minutes} minute{'s' if minutes > 1 else ''}, "
                "or ask the data team to reset your password")
        await _note(request, await _account_named(book, name), "sign_in_locked")
        return await rendered(request, "account/sign_in.html", {"next": wanted, "name": name, "errors": {"password": told}},
                      status_code=429, headers={"Retry-After": str(wait)})
    account = await run_in_threadpool(book.signs_in, name, form.get("password", ""))
    if account is None:
        await run_in_threadpool(throttle.failed, book, name, address)
        await _note(request, await _account_named(book, name), "sign_in_failed")
        return await rendered(request, "account/sign_in.html", {"next": wanted, "name": name, "errors": {"password": WRONG}},
                      status_code=401)
    await run_in_threadpool(throttle.succeeded, book, account.name)
    return await signed_in_as(request, account, wanted)


async def signed_in_as(request: Request, account: Account, wanted: str, how: str = "") -> Response:
    """Sign ``account`` in, however it proved who it is (``how``, for the audit log): a new session in place
    of the browser's (rotation), then on to ``wanted``, by the password page while the password is one-time."""
    book = _book(request)
    before = request.scope.get(SESSION_KEY)
    if before is not None:
        await run_in_threadpool(sessions.end, book, before.token_sha256)
    token = await run_in_threadpool(sessions.start, book, account.name)
    await _note(request, account.name, "signed_in", how)
    where = f"{PASSWORD_PATH}?next={quote(wanted, safe='')}" if account.must_change else wanted
    return _signed_in(request, token, where)


async def sign_out(request: Request) -> Response:
    session = request.scope.get(SESSION_KEY)
    if session is not None:
        await run_in_threadpool(sessions.end, _book(request), session.token_sha256)
        await _note(request, session.account, "signed_out")
    response = RedirectResponse("/", status_code=303)
    response.headers.append("set-cookie", cookie_header(sessions.SESSION_COOKIE, "", request, clear=True))
    return response


async def password_form(request: Request) -> Response:
    return await _password_page(request, relative_next(request.query_params.get("next")), {})


async def change_password(request: Request) -> Response:
    form = await form_of(request)
    wanted = relative_next(form.get("next"))
    session = request.scope[SESSION_KEY]
    book = _book(request)
    try:
        await run_in_threadpool(book.change_password, session.account, form.get("current_password", ""),
                                form.get("new_password", ""), form.get("confirm_password", ""))
    except AccountRefused as refused:
        label, _, told = str(refused).partition(": ")
        field = FIELD_OF.get(label, "new_password")
        return await _password_page(request, wanted, {field: told[:1].upper() + told[1:]}, status_code=400)
    await run_in_threadpool(sessions.end_others, book, session.account)
    token = await run_in_threadpool(sessions.start, book, session.account)
    await _note(request, session.account, "password_changed")
    return _signed_in(request, token, wanted)


async def _account_named(book: AccountBook, name: str) -> str | None:
    """The name tried, if it is an account's; else None (a password typed in the name field is not kept)."""
    return name if await run_in_threadpool(book.get, name) is not None else None


async def audit_page(request: Request) -> Response:
    log: AuditLog = request.app.state.audit
    account = request.query_params.get("account", "").strip()
    entries = await run_in_threadpool(log.latest, account or None)
    return await rendered(request, "account/audit.html", {"entries": entries, "account": account, "shown": SHOWN})


async def _password_page(request: Request, wanted: str, errors: dict[str, str], status_code: int = 200) -> Response:
    session = request.scope[SESSION_KEY]
    return await rendered(request, "account/password.html", {"next": wanted, "errors": errors, "fields": PASSWORD_FIELDS,
                                                      "must_change": session.must_change}, status_code=status_code)


ROUTES: list[Page] = [
    Page(SIGN_IN_PATH, sign_in_form, audience="public", name="sign_in"),
    Page(SIGN_IN_PATH, sign_in, audience="public", methods=("POST",), name="sign_in_post"),
    Page(SIGN_OUT_PATH, sign_out, audience="public", methods=("POST",), name="sign_out"),
    Page(PASSWORD_PATH, password_form, audience="panel", name="password"),
    Page(PASSWORD_PATH, change_password, audience="panel", methods=("POST",), name="password_post"),
    Page("/audit", audit_page, audience="data_team", name="audit"),
]
