"""A persisted queue: items live in the daemon's state, every change is a ``queue:*`` event.

A claim is ``queue:taken`` + ``worker:item_dispatched`` per item, committed by the worker in the
same commit as the items' pipelines; each outcome is one commit too (``queue:completed``, or ``queue:failed`` with its retry timer or ``queue:item_dead``,
together with ``worker:item_settled``). The retry timer (``queue-retry:<ns/queue>:<item>``) is
durable: a cooldown interrupted by a restart fires at its original deadline.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from itertools import compress, repeat
from operator import attrgetter, eq

from .. import events as ev
from ..clock import Clock
from ..records import QueueItem, QueueItemStatus
from ..store import Store
from ..timers import queue_retry_id
from .backend import Claim, Claims, WorkerRef


class PersistedQueue:
    """The :class:`~oj_trio.queues.backend.QueueBackend` of one persisted queue."""

    poll_interval: float | None = None

    def __init__(self, store: Store, clock: Clock, namespace: str, queue_name: str) -> None:
        self.store = store
        self.clock = clock
        self.namespace = namespace
        self.queue_name = queue_name

    async def claim(
        self,
        worker: WorkerRef,
        limit: int,
        in_flight: frozenset[str],
        new_pipeline_id: Callable[[], str],
    ) -> Claims:
        claims: list[Claim] = []
        if limit <= 0:
            return Claims(claims)
        for item in _pending(self.store.state.queue(self.queue_name, self.namespace)):
            if item.id not in in_flight:
                claims.append(Claim(item.id, dict(item.data), new_pipeline_id()))
                if len(claims) == limit:
                    break
        events: list[ev.EventBase] = []
        for c in claims:
            events.append(
                ev.QueueTaken(
                    queue_name=self.queue_name,
                    item_id=c.item_id,
                    worker_name=worker.name,
                    namespace=self.namespace,
                )
            )
            events.append(self._dispatched(worker, c.pipeline_id, c.item_id))
        return Claims(claims, tuple(events))

    def outcome_events(
        self,
        worker: WorkerRef,
        pipeline_id: str,
        item_id: str,
        error: str | None,
        retry_at_ms: int | None,
    ) -> list[ev.EventBase]:
        at = self.clock.now_ms()
        settled = self._settled(worker, pipeline_id)
        if error is None:
            completed = ev.QueueCompleted(
                queue_name=self.queue_name, item_id=item_id, namespace=self.namespace, at_ms=at
            )
            return [completed, settled]
        failed = ev.QueueFailed(
            queue_name=self.queue_name,
            item_id=item_id,
            error=error,
            namespace=self.namespace,
            at_ms=at,
        )
        then: ev.EventBase
        if retry_at_ms is None:
            then = ev.QueueItemDead(
                queue_name=self.queue_name, item_id=item_id, namespace=self.namespace, at_ms=at
            )
        else:
            timer = queue_retry_id(self.namespace, self.queue_name, item_id)
            then = ev.TimerSet(id=timer, due_at_ms=retry_at_ms)
        return [failed, then, settled]

    async def complete(self, worker: WorkerRef, pipeline_id: str, item_id: str) -> None:
        await self.store.commit(*self.outcome_events(worker, pipeline_id, item_id, None, None))

    async def fail(
        self,
        worker: WorkerRef,
        pipeline_id: str,
        item_id: str,
        error: str,
        retry_at_ms: int | None,
    ) -> None:
        events = self.outcome_events(worker, pipeline_id, item_id, error, retry_at_ms)
        await self.store.commit(*events)

    async def release(self, worker: WorkerRef, pipeline_id: str, item_id: str) -> None:
        item = self.store.state.queue(self.queue_name, self.namespace).get(item_id)
        events: list[ev.EventBase] = []
        if item is not None and item.status == QueueItemStatus.ACTIVE:
            events.append(
                ev.QueueItemRetry(
                    queue_name=self.queue_name, item_id=item_id, namespace=self.namespace
                )
            )
        events.append(self._settled(worker, pipeline_id))
        await self.store.commit(*events)

    async def attach(self, worker: WorkerRef, pipeline_id: str, item_id: str) -> None:
        pass  # the claim is in this daemon's WAL: nothing to hold elsewhere

    async def recount(self, pipeline_id: str, item_id: str) -> None:
        pass  # the count is in this daemon's state already

    def failures(self, item_id: str) -> int:
        item = self.store.state.queue(self.queue_name, self.namespace).get(item_id)
        return item.failure_count if item is not None else 0

    def _dispatched(self, worker: WorkerRef, pipeline_id: str, item_id: str) -> ev.EventBase:
        return ev.WorkerItemDispatched(
            worker_name=worker.name,
            item_id=item_id,
            pipeline_id=pipeline_id,
            namespace=worker.namespace,
        )

    def _settled(self, worker: WorkerRef, pipeline_id: str) -> ev.EventBase:
        return ev.WorkerItemSettled(
            worker_name=worker.name, pipeline_id=pipeline_id, namespace=worker.namespace
        )


_STATUS = attrgetter("status")


def _pending(items: Mapping[str, QueueItem]) -> Iterator[QueueItem]:
    """The pending items in push order. Filtered at C speed: a queue keeps up to
    KEEP_COMPLETED finished items ahead of its pending ones, and this runs for every claim."""
    values = items.values()
    return compress(values, map(eq, map(_STATUS, values), repeat(QueueItemStatus.PENDING)))
