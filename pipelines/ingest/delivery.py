"""Who delivered an event, and whether their grant allows it: the step every way in shares.

``planning ingest`` (the data team, or ``--as`` a registered sender), the stream worker (the
sender whose topic it came on) and the HTTP collector (the sender whose secret it presented)
each judge an event by the contract first, then by the sender's grant, and hand the store
the sender's name with it (``events.storage.store.Received.sender``).
"""

from __future__ import annotations

from events.senders.grants import within_grants
from events.senders.registry import Sender
from events.storage.store import Received


def delivered_by(item: Received, sender: Sender | None) -> Received:
    """The received event as ``sender`` delivered it: outside its grant, a reject with the reason."""
    if sender is None:
        return item
    return Received(item.raw, item.origin, within_grants(item.verdict, sender), sender.name)
