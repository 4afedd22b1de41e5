"""Kafka: the development broker (``broker.py`` and its Maven pom), the topics, the stream worker, and `planning up`'s local stack."""
