"""`planning serve`: the HTTP collector, for senders that cannot run a Kafka client (docs/collector.md)."""
