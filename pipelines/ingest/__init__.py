"""Files into the event store (``files.py``), and the validator processes it shares with the stream worker (``pool.py``)."""
