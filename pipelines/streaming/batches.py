"""faust's Kafka consumer, handing the worker whole batches of fetched messages instead of one event at a time.

faust delivers each fetched message on its own: its consumer's drain loop awaits
``wait_first(callback(message), suspend_flow.wait())`` per message (four tasks
and an ``asyncio.wait``), the conductor decodes it into an ``Event`` and puts it
on the agent's queue, and the stream takes it off again through its processors
and sensors. Profiled at drain (py-spy, 100k backlog) that per-message machinery
held the GIL for about 70 % of the worker's main thread; the contract check is
in another process and the append on the store thread, so it was what capped the
drain (bench/README.md, "Stream ingest").

``BatchConsumer`` replaces only that drain loop. Everything else stays faust's:
the consumer group (joins, rebalances, static membership), the aiokafka
consumer thread and its fetches (``Consumer.getmany``), seeking to the
committed offsets after an assignment, and committing acknowledged offsets
(``Consumer.ack``, ``broker_commit_interval``/``broker_commit_every``). The
loop gathers what ``getmany`` returns until it holds ``size`` messages or the
first of them has waited ``within`` seconds, then awaits
``app.planning_deliver(batch)`` once for each ``size`` of them (one fetch can
bring several batches' worth), racing the consumer's ``suspend_flow`` as
faust's loop does for each message: a rebalance abandons the batch,
undelivered, and faust seeks the partitions back to their committed offsets,
so it is read again. Messages of an earlier consumer generation (fetched
before a rebalance) are dropped for the same reason. Read offsets and gaps
(``_read_offset``, ``_add_gap``) are kept as faust keeps them.

Acknowledging is the deliverer's business: it calls ``app.consumer.ack(message)``
for each message once the batch is durable. Messages are not tracked in
``Consumer.unacked``: that set serves only ``stream_wait_empty``, which the worker
turns off.
"""

from __future__ import annotations

import asyncio
from time import monotonic
from typing import Any, Awaitable, Callable

import faust
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as aiokafka_driver

Deliver = Callable[[list[Any]], Awaitable[None]]


class BatchConsumer(aiokafka_driver.Consumer):
    """faust's aiokafka consumer whose drain loop delivers batches to ``app.planning_deliver``."""

    async def _drain_messages(self, fetcher: Any) -> None:  # overrides faust's per-message loop
        app = self.app
        deliver: Deliver = app.planning_deliver
        size, within = app.planning_batch
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set
        read_offset = self._read_offset
        acks_enabled_for = app.topics.acks_enabled_for
        commit_every = self._commit_every
        batch: list[Any] = []
        first_at = 0.0
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                self.diag.set_flag(CONSUMER_FETCHING)
                timeout = max(within - (monotonic() - first_at), 0.0) if batch else 1.0
                fetched = self.getmany(timeout=timeout)
                await self.sleep(0)
                if self.should_stop:
                    break
                async for tp, message in fetched:
                    offset = message.offset
                    last = read_offset[tp]
                    if last is not None and offset < last:
                        continue  # read before: faust drops it too
                    if last and offset - last > 1 and acks_enabled_for(message.topic):
                        await self._add_gap(tp, last + 1, offset)  # e.g. compacted away: nothing to ack there
                    read_offset[tp] = offset
                    if not batch:
                        first_at = monotonic()
                    batch.append(message)
                self.diag.unset_flag(CONSUMER_FETCHING)
                if not self.flow_active:
                    batch.clear()  # a rebalance: faust seeks back to the committed offsets
                    continue
                while batch and (len(batch) >= size or monotonic() - first_at >= within):
                    generation = app.consumer_generation_id
                    ready = [m for m in batch[:size] if m.generation_id == generation]
                    del batch[:size]  # one fetch can bring many batches' worth: delivered ``size`` at a time
                    if commit_every is not None and self._n_acked >= commit_every:
                        self._n_acked = 0
                        await self.commit()
                    if ready:
                        await self.wait_first(deliver(ready), self.suspend_flow.wait())
                    if not self.flow_active:
                        batch.clear()
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            self.diag.unset_flag(CONSUMER_FETCHING)


class BatchTransport(aiokafka_driver.Transport):
    Consumer = BatchConsumer


class BatchApp(faust.App):
    """A faust app whose consumer delivers batches (``BatchConsumer``); set ``planning_deliver`` and
    ``planning_batch = (size, within)`` before it starts."""

    planning_deliver: Deliver
    planning_batch: tuple[int, float]

    def _new_transport(self) -> BatchTransport:
        return BatchTransport(self.conf.broker_consumer, self)
