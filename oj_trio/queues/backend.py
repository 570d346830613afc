"""The one interface between the worker loop and a queue, and the values that cross it.

A backend serves one queue of one namespace. The worker loop (:mod:`oj_trio.runtime.workers`)
asks it for up to ``limit`` items (:meth:`QueueBackend.claim`), creates a pipeline per claimed
item, and reports each pipeline's outcome (:meth:`~QueueBackend.complete`,
:meth:`~QueueBackend.fail` with a retry time or none, :meth:`~QueueBackend.release` for a claim
whose pipeline never came to exist). Every outcome call is durable when it returns.

A claim hands back, with the claimed items, the events that record it in this daemon's WAL
(:attr:`Claims.events`): the caller commits them *in the same commit* as the pipelines it
creates for the items. For the WAL-backed queue those events are the claim itself
(``queue:taken``), so claim and pipeline are one durable step and a crash leaves neither or
both. A backend whose items live elsewhere (PostgreSQL, shared by several daemons; an external
system reached by ``take``) claims there first, and its events only record which pipeline id
each item is for (``worker:item_dispatched``); no single commit can hold both sides, so a
restart reconciles: a claim whose pipeline does not exist is released, a pipeline that ended
without its outcome reaching the queue is settled.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

import attrs

from ..errors import OjError
from ..events import EventBase, WorkerItemDispatched

#: Completed items a persisted queue keeps (the newest), so a queue that runs for months does not
#: grow without bound (the daemon's state and snapshots, or a shared database); ``oj queue
#: prune`` removes the rest by age.
KEEP_COMPLETED = 1000
#: Look at that limit every this many completions of a queue (the check scans the queue).
PRUNE_EVERY = 64


class QueueError(OjError):
    """A queue cannot be used as asked (unknown, wrong type, its ``list``/``take`` failed…)."""


@attrs.frozen
class WorkerRef:
    """Who claims: a worker of a namespace."""

    name: str
    namespace: str


@attrs.frozen
class Claim:
    """An item now held by a worker, for the pipeline ``pipeline_id`` (not created yet)."""

    item_id: str
    data: Mapping[str, str]
    pipeline_id: str


@attrs.frozen
class Claims:
    """What :meth:`QueueBackend.claim` took, and the events to commit with the items' pipelines."""

    claims: list[Claim]
    events: tuple[EventBase, ...] = ()


def dispatched(worker: WorkerRef, claims: list[Claim]) -> Claims:
    """``claims``, with the events recording that ``worker`` dispatched each into its pipeline."""
    events = tuple(
        WorkerItemDispatched(
            worker_name=worker.name,
            item_id=c.item_id,
            pipeline_id=c.pipeline_id,
            namespace=worker.namespace,
        )
        for c in claims
    )
    return Claims(claims, events)


class QueueBackend(Protocol):
    """One queue of one namespace, as the worker loop sees it."""

    #: Seconds between polls when nothing wakes the worker (external queues' ``poll``); None:
    #: the backend's producers wake the worker themselves (a push does).
    poll_interval: float | None

    async def claim(
        self,
        worker: WorkerRef,
        limit: int,
        in_flight: frozenset[str],
        new_pipeline_id: Callable[[], str],
    ) -> Claims:
        """Take up to ``limit`` items not in ``in_flight`` (item ids already being run), each for
        a fresh pipeline id; the returned events must be committed with those pipelines.

        Raises:
            QueueError: the queue cannot be read (the worker logs it and tries again later).
        """
        ...

    async def complete(self, worker: WorkerRef, pipeline_id: str, item_id: str) -> None:
        """The item's pipeline ended ``done``.

        Raises:
            QueueError: the queue cannot be reached (the worker settles the item later).
        """
        ...

    async def fail(
        self,
        worker: WorkerRef,
        pipeline_id: str,
        item_id: str,
        error: str,
        retry_at_ms: int | None,
    ) -> None:
        """The item's pipeline failed: retry it at ``retry_at_ms``, or (None) it is dead."""
        ...

    def outcome_events(
        self,
        worker: WorkerRef,
        pipeline_id: str,
        item_id: str,
        error: str | None,
        retry_at_ms: int | None,
    ) -> Sequence[EventBase] | None:
        """The item's outcome (``error`` None: completed) as events to commit together with the
        event that ends its pipeline, or None when the outcome cannot be part of a local commit
        (a backend whose items live elsewhere): then :meth:`complete`/:meth:`fail` follow."""
        ...

    async def release(self, worker: WorkerRef, pipeline_id: str, item_id: str) -> None:
        """The claim's pipeline was never created (a crash in between): the item is free again,
        and this does not count as a failure."""
        ...

    async def attach(self, worker: WorkerRef, pipeline_id: str, item_id: str) -> None:
        """After a restart, the claim's pipeline runs on in this daemon: hold on to the claim
        (a shared queue renews its lease again, and stops the pipeline if another daemon has
        claimed the item meanwhile)."""
        ...

    def failures(self, item_id: str) -> int:
        """How often the item has failed so far (0 for queues that do not count)."""
        ...

    async def recount(self, pipeline_id: str, item_id: str) -> None:
        """Before deciding a failure outside the commit that ends the pipeline: make
        :meth:`failures` current (a shared queue's item claimed before a restart may have
        failed before; its database knows how often)."""
        ...
