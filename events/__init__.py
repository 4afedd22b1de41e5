"""The contract and the system of record: ``contract/`` (what an event is), ``storage/`` (where accepted events
live), ``emitter.py`` (the senders' SDK), ``routing.py`` (which topic carries what), ``home.py`` (where files live).

Imports nothing of ours outside ``events``; ``contract`` imports nothing from ``storage``.
"""
