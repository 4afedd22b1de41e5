"""Sign-ins through the identity provider under way: between sending the browser to the provider and its
coming back to ``/sign-in/oidc/callback``.

What the callback must check (the OpenID Connect ``state`` and ``nonce``, the PKCE code verifier) and
where to go afterwards are kept here, server-side, as sessions are; the browser carries a random flow
cookie whose SHA-256 finds them. The callback takes a flow once (it is deleted as it is read), so a
replayed callback finds nothing, and a flow more than ``FLOW_LIFETIME`` old is refused and forgotten.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from pipelines.web.accounts import AccountBook, stamp
from pipelines.web.sessions import digest, new_token

FLOW_LIFETIME = timedelta(minutes=10)  # to sign in at the provider, a second factor included
FLOW_COOKIE = "planning_sign_in_flow"


def begin(book: AccountBook, state: dict[str, Any]) -> str:
    """Keep ``state`` (JSON-able) for a new flow; its token, for the flow cookie. Stale flows are dropped."""
    token, now = new_token(), book.clock()
    with book.connection() as db:
        db.execute("DELETE FROM sign_in_flows WHERE started_at < ?", (stamp(now - FLOW_LIFETIME),))
        db.execute("INSERT INTO sign_in_flows (token_sha256, state, started_at) VALUES (?, ?, ?)",
                   (digest(token), json.dumps(state), stamp(now)))
    return token


def take(book: AccountBook, token: str) -> dict[str, Any] | None:
    """The flow's state, once: None if there is no such flow or it is older than ``FLOW_LIFETIME``."""
    with book.connection() as db:
        row = db.execute("DELETE FROM sign_in_flows WHERE token_sha256 = ? RETURNING state, started_at",
                         (digest(token),)).fetchone()
    if row is None or datetime.fromisoformat(row[1]) < book.clock() - FLOW_LIFETIME:
        return None
    return json.loads(row[0])
