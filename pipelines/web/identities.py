"""Who the authority's identity provider may sign in (OpenID Connect, ``pipelines.web.account.provider_sign_in``).

The provider says who someone is; the site's own accounts still say what they may see. A person is
known by the provider's issuer and its stable subject identifier (``iss`` and ``sub`` of the ID token:
an e-mail address can be reassigned, a subject is never reused) and is let in only if the data team has
linked that subject to an account (`planning users link`). The provider never makes an account, and
nothing it says (a group, a role claim) grants a role.

Linking switches the account's password off: from then on it signs in through the provider only, and a
one-time password printed for it earlier stops working. `planning users reset` gives it a password again
(as a way in while the provider is down), and keeps the link. ``unlink`` removes the link, and ends the
account's sessions; ``disable`` ends everything, link or not.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.web.accounts import NO_PASSWORD, Account, AccountBook, AccountRefused


@dataclass(frozen=True)
class Identity:
    account: str
    issuer: str
    subject: str
    linked_at: str


def link(book: AccountBook, name: str, issuer: str, subject: str) -> Identity:
    """Let the person ``subject`` of ``issuer`` sign in as the active account ``name`` (and by no password)."""
    account = book.existing(name)
    if not account.active:
        raise AccountRefused(f"account {name} is disabled; a disabled account stays disabled: add a new account")
    if not issuer or not subject or len(subject) > 255:
        raise AccountRefused("subject: give the provider's subject identifier of the person (its 'sub', at most "
                             "255 characters), as the provider's admin pages or the site's audit log show it")
    now = book.now()
    with book.connection() as db:
        db.execute("BEGIN IMMEDIATE")
        taken = db.execute("SELECT account FROM identities WHERE issuer = ? AND subject = ?", (issuer, subject)).fetchone()
        if taken is not None and taken[0] != name:
            db.execute("ROLLBACK")
            raise AccountRefused(f"subject: {subject} of {issuer} is linked to account {taken[0]} already; "
                                 f"`planning users unlink {taken[0]}` first")
        db.execute("DELETE FROM identities WHERE account = ? AND issuer = ?", (name, issuer))
        db.execute("INSERT INTO identities (issuer, subject, account, linked_at) VALUES (?, ?, ?, ?)",
                   (issuer, subject, name, now))
        db.execute("UPDATE accounts SET password_hash = ?, must_change = 0, password_set_at = ? WHERE name = ?",
                   (NO_PASSWORD, now, name))
        db.execute("DELETE FROM sessions WHERE account = ?", (name,))
        db.execute("COMMIT")
    return Identity(name, issuer, subject, now)


def unlink(book: AccountBook, name: str) -> list[Identity]:
    """Remove the account's links; its sessions end. The links removed (none: nothing was linked)."""
    book.existing(name)
    with book.connection() as db:
        db.execute("BEGIN IMMEDIATE")
        removed = [Identity(*row) for row in db.execute(
            "SELECT account, issuer, subject, linked_at FROM identities WHERE account = ? ORDER BY issuer", (name,))]
        db.execute("DELETE FROM identities WHERE account = ?", (name,))
        if removed:
            db.execute("DELETE FROM sessions WHERE account = ?", (name,))
        db.execute("COMMIT")
    return removed


def account_of(book: AccountBook, issuer: str, subject: str) -> Account | None:
    """The account the person is linked to (active or not; the caller refuses a disabled one), or None."""
    with book.connection() as db:
        row = db.execute("SELECT account FROM identities WHERE issuer = ? AND subject = ?", (issuer, subject)).fetchone()
    return None if row is None else book.get(row[0])


def all_identities(book: AccountBook) -> list[Identity]:
    with book.connection() as db:
        return [Identity(*row) for row in db.execute(
            "SELECT account, issuer, subject, linked_at FROM identities ORDER BY account, issuer")]
