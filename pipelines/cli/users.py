"""`planning users`: the web site's accounts (``pipelines.web.accounts``), for the data team.

``add`` and ``reset`` print a generated one-time password once, as the last line of standard output,
so a script can take it with ``tail -n 1``; nothing secret is ever given on the command line. Only its
Argon2id hash is kept, and the account must choose its own password at its first sign-in. ``disable``
ends the account's sessions at once; a disabled account stays listed and its name is never reused.
``link`` lets a person sign in as an account through the authority's identity provider (docs/web.md), by
the provider's subject identifier; the account's password then stops working (``reset`` restores one).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from events.home import PlanningHome
from pipelines.exit_codes import ExitCode
from pipelines.web import identities
from pipelines.web.accounts import AccountBook, AccountRefused, UnknownAccount
from pipelines.web.roles import ROLES


def add_users_command(commands: argparse._SubParsersAction) -> None:
    users = commands.add_parser(
        "users", help="add, list, disable and reset the web site's accounts (data team)",
        description="The accounts that may sign in to the web site `planning serve` runs, each a Panel member "
                    "(panel) or the data team (data_team). Without an action, lists them.")
    users.add_argument("--format", choices=("table", "json"), default="table", help="how to print the list")
    users.set_defaults(run=_list)
    actions = users.add_subparsers(title="actions", metavar="ACTION")

    add = actions.add_parser("add", help="add an account; prints its one-time password once, as the last line")
    add.add_argument("name", help="2 to 63 lower-case letters, digits, dots, hyphens and underscores, e.g. j.smith")
    add.add_argument("--role", required=True, choices=ROLES, help="panel: the Panel's pages; data_team: every page")
    add.set_defaults(run=_add)

    listing = actions.add_parser("list", help="list the accounts, their roles and states (never a password)")
    listing.add_argument("--format", choices=("table", "json"), default="table", help="how to print the list")
    listing.set_defaults(run=_list)

    disable = actions.add_parser("disable", help="stop an account: it cannot sign in, and its sessions end now")
    disable.add_argument("name", help="the account's name")
    disable.set_defaults(run=_disable)

    reset = actions.add_parser("reset", help="a new one-time password (printed once, as the last line); "
                                             "the old password and the account's sessions stop working")
    reset.add_argument("name", help="the account's name")
    reset.set_defaults(run=_reset)

    link = actions.add_parser("link", help="let a person sign in as this account through the identity provider "
                                           "(OpenID Connect); the account's password stops working")
    link.add_argument("name", help="the account's name")
    link.add_argument("--subject", required=True,
                      help="the provider's identifier of the person (its 'sub'): the site's refusal shows it to them, "
                           "and the audit log records it")
    link.add_argument("--issuer", default=None,
                      help="the provider's issuer URL (default: $PLANNING_OIDC_ISSUER, the provider `planning serve` uses)")
    link.set_defaults(run=_link)

    unlink = actions.add_parser("unlink", help="stop the identity provider signing this account in; its sessions end")
    unlink.add_argument("name", help="the account's name")
    unlink.set_defaults(run=_unlink)


def _refused(command: str, error: Exception) -> int:
    print(f"planning users {command}: {error}", file=sys.stderr)
    return ExitCode.USAGE


def _issued(summary: str, password: str) -> int:
    print(summary)
    print("its one-time password follows, shown this once (only a hash is kept); it must be changed at the first sign-in:")
    print(password)
    return ExitCode.OK


def _add(args: argparse.Namespace, home: PlanningHome) -> int:
    try:
        password = AccountBook.of(home).add(args.name, args.role)
    except AccountRefused as error:
        return _refused("add", error)
    return _issued(f"added account {args.name} ({args.role})", password)


def _reset(args: argparse.Namespace, home: PlanningHome) -> int:
    try:
        password = AccountBook.of(home).reset(args.name)
    except (AccountRefused, UnknownAccount) as error:
        return _refused("reset", error)
    return _issued(f"reset account {args.name}: its old password and its sessions stop working now", password)


def _disable(args: argparse.Namespace, home: PlanningHome) -> int:
    try:
        account = AccountBook.of(home).disable(args.name)
    except UnknownAccount as error:
        return _refused("disable", error)
    print(f"disabled account {account.name} at {account.disabled_at}: it cannot sign in, and its sessions have ended")
    return ExitCode.OK


def _link(args: argparse.Namespace, home: PlanningHome) -> int:
    from pipelines.web.oidc import ISSUER_ENV

    issuer = args.issuer or os.environ.get(ISSUER_ENV, "").strip()
    if not issuer:
        return _refused("link", ValueError(f"issuer: give --issuer, or set ${ISSUER_ENV} as `planning serve` has it"))
    try:
        identity = identities.link(AccountBook.of(home), args.name, issuer, args.subject)
    except (AccountRefused, UnknownAccount) as error:
        return _refused("link", error)
    print(f"linked account {identity.account} to subject {identity.subject} of {identity.issuer}: it signs in through "
          "that provider only from now on (its password and sessions have stopped working; `planning users reset` "
          "gives it a password again)")
    return ExitCode.OK


def _unlink(args: argparse.Namespace, home: PlanningHome) -> int:
    try:
        removed = identities.unlink(AccountBook.of(home), args.name)
    except UnknownAccount as error:
        return _refused("unlink", error)
    if not removed:
        print(f"account {args.name} was linked to no identity provider: nothing changed")
    for identity in removed:
        print(f"unlinked account {identity.account} from subject {identity.subject} of {identity.issuer}; its sessions "
              "have ended (`planning users reset` gives it a password)")
    return ExitCode.OK


def _list(args: argparse.Namespace, home: PlanningHome) -> int:
    book = AccountBook.of(home)
    linked: dict[str, list[str]] = {}
    for identity in identities.all_identities(book):
        linked.setdefault(identity.account, []).append(identity.issuer)
    rows = [{"name": a.name, "role": a.role, "state": "active" if a.active else "disabled",
             "must_change_password": a.must_change, "created_at": a.created_at,
             "password_set_at": a.password_set_at, "disabled_at": a.disabled_at,
             "has_password": a.has_password, "identity_providers": linked.get(a.name, [])} for a in book.all()]
    if args.format == "json":
        print(json.dumps(rows, indent=2))
        return ExitCode.OK
    if not rows:
        print("no accounts: `planning users add NAME --role panel|data_team`")
        return ExitCode.OK
    header = ("name", "role", "state", "sign-in", "created", "disabled")
    table = [header] + [(r["name"], r["role"], r["state"], _password_shown(r), r["created_at"], r["disabled_at"] or "")
                        for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    return ExitCode.OK


def _password_shown(row: dict) -> str:
    """How the account signs in: its password (one-time or its own), the identity provider, or both."""
    password = ("one-time" if row["must_change_password"] else "own") if row["has_password"] else ""
    provider = "provider" if row["identity_providers"] else ""
    return " + ".join(part for part in (password, provider) if part) or "none"
