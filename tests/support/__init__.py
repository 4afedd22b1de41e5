"""What the tests share: the event factory, the real broker, the stream worker harness, the reference model."""
