"""`planning senders`: who may send what (``events.senders``), for the data team.

``add`` and ``rotate`` print the new secret once, as the last line of standard output, so a
script can take it with ``tail -n 1``; only its SHA-256 is kept. Give it to the sender's owner
by a channel of its own; it cannot be shown again (``rotate`` makes a new one).

While the home's Kafka broker runs (``planning broker start``/``planning up``), ``add`` and
``rotate`` also give the sender its Kafka user, its topics and their ACLs, and ``revoke`` removes
them at once (``pipelines.streaming.access``); a broker started later drops the users of revoked
senders by itself.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from events.home import PlanningHome
from pipelines.exit_codes import ExitCode

if TYPE_CHECKING:  # the registry loads the contract: imported when a senders command runs, not for every parser
    from events.senders.registry import Sender


def _list_of(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def add_senders_command(commands: argparse._SubParsersAction) -> None:
    senders = commands.add_parser(
        "senders", help="register, list, revoke and rotate the senders that may deliver events (data team)",
        description="The registry of senders: each may send the event types and boroughs of its grant, and no other. "
        "Without an action, lists them.",
    )
    senders.add_argument("--format", choices=("table", "json"), default="table", help="how to print the list")
    senders.set_defaults(run=_list)
    actions = senders.add_subparsers(title="actions", metavar="ACTION")

    add = actions.add_parser("add", help="register a sender; prints its secret once, as the last line")
    add.add_argument("name", help="2 to 63 lower-case letters, digits and hyphens, e.g. cdrp-harrow")
    add.add_argument("--event-types", required=True, type=_list_of, metavar="T,…",
                     help="the event types it may send, comma-separated, e.g. cdrp.audit_submitted")
    add.add_argument("--boroughs", required=True, metavar="B,…|all",
                     help="the borough codes it may send for, comma-separated (E09000002 to E09000033), or all")
    add.set_defaults(run=_add)

    listing = actions.add_parser("list", help="list the senders and their grants (never their secrets)")
    listing.add_argument("--format", choices=("table", "json"), default="table", help="how to print the list")
    listing.set_defaults(run=_list)

    revoke = actions.add_parser("revoke", help="stop a sender: its secret is refused from now on")
    revoke.add_argument("name", help="the sender's name")
    revoke.set_defaults(run=_revoke)

    rotate = actions.add_parser("rotate", help="give a sender a new secret (printed once, as the last line); the old one stops working")
    rotate.add_argument("name", help="the sender's name")
    rotate.set_defaults(run=_rotate)


def _refused(command: str, error: Exception) -> int:
    print(f"planning senders {command}: {error}", file=sys.stderr)
    return ExitCode.USAGE


def _add(args: argparse.Namespace, home: PlanningHome) -> int:
    from events.senders.registry import BadGrant, SenderExists, SenderRegistry

    boroughs = None if args.boroughs.strip() == "all" else _list_of(args.boroughs)
    with SenderRegistry.of(home) as registry:
        try:
            secret = registry.add(args.name, args.event_types, boroughs)
        except (BadGrant, SenderExists) as error:
            return _refused("add", error)
        sender = registry.get(args.name)
    kafka = _on_broker(home, "add", lambda kafka, access: kafka.provision(access, sender, secret))
    return _issued(f"added sender {sender.name}: may send {', '.join(sorted(sender.event_types))} for {_boroughs(sender)}", secret, kafka)


def _rotate(args: argparse.Namespace, home: PlanningHome) -> int:
    from events.senders.registry import SenderRegistry, UnknownSender

    with SenderRegistry.of(home) as registry:
        try:
            secret = registry.rotate(args.name)
        except UnknownSender as error:
            return _refused("rotate", error)
        sender = registry.get(args.name)
    kafka = _on_broker(home, "rotate", lambda kafka, access: kafka.provision(access, sender, secret))
    return _issued(f"rotated sender {args.name}: its old secret is refused from now on", secret, kafka)


def _issued(summary: str, secret: str, kafka: int = ExitCode.OK) -> int:
    """What changed, then the secret, once, as the last line of standard output."""
    print(summary)
    print("its secret follows, shown this once (only a hash is kept); give it to the sender's owner:")
    print(secret)
    return kafka


def _on_broker(home: PlanningHome, command: str, change) -> int:
    """Apply ``change`` to the home's running Kafka broker, if one runs; FAILED (with the reason) if it refused."""
    from pipelines.streaming import access as kafka  # imported only here: the rest of the CLI needs no Kafka client

    try:
        access = kafka.BrokerAccess.of_home(home)
        if access is not None:
            change(kafka, access)
            print(f"planning senders {command}: applied to the Kafka broker at {access.bootstrap}", file=sys.stderr)
    except Exception as error:  # the registry has changed; say how to bring the broker in line
        print(f"planning senders {command}: the registry is changed, but the Kafka broker refused ({error}); "
              f"once it is back, `planning senders rotate` (or `revoke`) the sender again", file=sys.stderr)
        return ExitCode.FAILED
    return ExitCode.OK


def _revoke(args: argparse.Namespace, home: PlanningHome) -> int:
    from events.senders.registry import SenderRegistry, UnknownSender

    with SenderRegistry.of(home) as registry:
        try:
            sender = registry.revoke(args.name)
        except UnknownSender as error:
            return _refused("revoke", error)
    print(f"revoked sender {sender.name} at {sender.revoked_at}: what it sends from now on is refused")
    return _on_broker(home, "revoke", lambda kafka, access: kafka.withdraw(access, sender.name))


def _list(args: argparse.Namespace, home: PlanningHome) -> int:
    from events.senders.registry import SenderRegistry

    with SenderRegistry.of(home) as registry:
        senders = registry.all()
    rows = [
        {"name": s.name, "state": "active" if s.active else "revoked", "event_types": sorted(s.event_types),
         "boroughs": "all" if s.boroughs is None else sorted(s.boroughs), "created_at": s.created_at,
         "rotated_at": s.rotated_at, "revoked_at": s.revoked_at}
        for s in senders
    ]
    if args.format == "json":
        print(json.dumps(rows, indent=2))
        return ExitCode.OK
    if not rows:
        print("no senders registered: `planning senders add NAME --event-types T,… --boroughs B,…|all`")
        return ExitCode.OK
    header = ("name", "state", "event types", "boroughs", "created", "rotated", "revoked")
    table = [header] + [(r["name"], r["state"], ",".join(r["event_types"]), _boroughs(s), r["created_at"],
                         r["rotated_at"] or "", r["revoked_at"] or "") for r, s in zip(rows, senders)]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    return ExitCode.OK


def _boroughs(sender: Sender) -> str:
    return "every borough" if sender.boroughs is None else ", ".join(sorted(sender.boroughs))
