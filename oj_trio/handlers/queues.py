"""Queues: push (one item or a durable batch), drop, retry, prune; list queues and items.

A project whose persisted queues live in a shared database (``OJ_QUEUE_URL`` or ``[queues] url``)
has every verb answered from there (:mod:`oj_trio.queues.postgres`); the wake-up or auto-start of
this daemon's workers is committed locally afterwards.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from .. import events as ev
from ..errors import NotFoundError, OjError, UsageError
from ..messages import (
    ListQueueItemsQuery,
    ListQueuesQuery,
    QueueDroppedResponse,
    QueueDropRequest,
    QueueItemsResponse,
    QueueItemView,
    QueuePrunedResponse,
    QueuePruneRequest,
    QueuePushedResponse,
    QueuePushRequest,
    QueueRetriedResponse,
    QueueRetryRequest,
    QueuesResponse,
    QueueSummary,
)
from ..queues.backend import QueueError
from ..queues.items import batch_values, item_values
from ..records import QueueItem, QueueItemStatus, scoped_key
from ..runbook.model import Queue, Runbook
from ..runtime.workspaces import PRUNE_AGE_MS
from ..timers import queue_retry_id
from ..views.queues import item_view, queue_summary, remote_item_view
from . import Route, Services

if TYPE_CHECKING:
    from ..queues.postgres import PostgresQueue


async def _persisted(s: Services, root: str, name: str) -> tuple[Runbook, Queue]:
    runbook, queue = await s.ctx.runbooks.find_queue(Path(root), name)
    if queue.type != "persisted":
        raise OjError(f"queue '{name}' is not a persisted queue")
    return runbook, queue


def _remote(s: Services, root: str, namespace: str, name: str) -> PostgresQueue | None:
    return s.workers.remote.queue(root, namespace, name)


async def _wake_workers(
    s: Services, runbook: Runbook, root: str, namespace: str, name: str
) -> None:
    """Seed 001 after a push to a shared queue: this daemon's workers, woken or auto-started.
    The items are durable in the database already; a local commit is needed only to start a
    worker (a running one is woken in memory: ``worker:wake`` alone would cost an fsync)."""
    events, keys = s.workers.push_events(runbook, Path(root), namespace, name)
    starts = [e for e in events if not isinstance(e, ev.WorkerWake)]
    if starts:
        await s.ctx.commit(*starts)
    for key in keys:
        s.workers.wake(key)


def _item(s: Services, namespace: str, queue: str, given: str) -> QueueItem:
    item = s.ctx.state.find_queue_item(queue, given, namespace)
    if item is None:
        raise NotFoundError(f"item '{given}' not found in queue '{queue}'")
    return item


def _disarm(s: Services, item: QueueItem) -> list[ev.EventBase]:
    """``timer:cancelled`` for the item's retry timer, if one is armed."""
    timer = queue_retry_id(item.namespace, item.queue_name, item.id)
    return [ev.TimerCancelled(id=timer)] if timer in s.ctx.state.timers else []


async def push(s: Services, request: QueuePushRequest) -> QueuePushedResponse:
    """Validate every item first (a batch is pushed whole or not at all), then commit them as one
    durable batch together with the wake-up or auto-start of the queue's workers (seed 001)."""
    namespace, name = request["namespace"], request["queue"]
    data, items = request.get("data"), request.get("items")
    if (data is None) == (items is None):
        raise UsageError("push needs exactly one of: a JSON object, or --file")
    runbook, queue = await _persisted(s, request["project_root"], name)
    if items is not None:
        values = batch_values(queue, items, request.get("lines"))
    else:
        values = [item_values(queue, data)]
    remote = _remote(s, request["project_root"], namespace, name)
    if remote is not None:
        ids = await remote.push(values)  # committed: acknowledged only now
        await _wake_workers(s, runbook, request["project_root"], namespace, name)
        return {"type": "QueuePushed", "queue": name, "item_ids": ids}
    at = s.ctx.clock.now_ms()
    pushed = [
        ev.QueuePushed(
            queue_name=name,
            item_id=str(uuid.uuid4()),
            data=value,
            pushed_at_epoch_ms=at,
            namespace=namespace,
        )
        for value in values
    ]
    root = Path(request["project_root"])
    workers, keys = s.workers.push_events(runbook, root, namespace, name)
    await s.ctx.commit(*pushed, *workers)  # the items and the wake-ups: one durable step
    for key in keys:
        s.workers.wake(key)
    return {"type": "QueuePushed", "queue": name, "item_ids": [e.item_id for e in pushed]}


async def drop(s: Services, request: QueueDropRequest) -> QueueDroppedResponse:
    namespace, name = request["namespace"], request["queue"]
    await _persisted(s, request["project_root"], name)
    remote = _remote(s, request["project_root"], namespace, name)
    if remote is not None:
        dropped = await remote.drop(request["item_id"])
        return {"type": "QueueDropped", "queue": name, "item_id": dropped}
    item = _item(s, namespace, name, request["item_id"])
    await s.ctx.commit(
        *_disarm(s, item),
        ev.QueueDropped(queue_name=name, item_id=item.id, namespace=namespace),
    )
    return {"type": "QueueDropped", "queue": name, "item_id": item.id}


async def retry(s: Services, request: QueueRetryRequest) -> QueueRetriedResponse:
    """Failed or dead items back to pending, failure count reset (SPEC §4.3); then the workers
    are woken or auto-started as on a push."""
    namespace, name = request["namespace"], request["queue"]
    given, all_dead = request.get("item_id"), bool(request.get("all_dead"))
    if (given is None) == (not all_dead):
        raise UsageError("retry needs exactly one of: an item id, or --all-dead")
    runbook, _queue = await _persisted(s, request["project_root"], name)
    remote = _remote(s, request["project_root"], namespace, name)
    if remote is not None:
        ids = await remote.retry(given)
        if ids:
            await _wake_workers(s, runbook, request["project_root"], namespace, name)
        return {"type": "QueueRetried", "queue": name, "item_ids": ids}
    if given is not None:
        item = _item(s, namespace, name, given)
        if item.status not in (QueueItemStatus.FAILED, QueueItemStatus.DEAD):
            raise OjError(
                f"item '{given}' is {item.status.capitalize()}, only dead or failed items can be "
                "retried"
            )
        targets = [item]
    else:
        targets = [
            i
            for i in s.ctx.state.queue(name, namespace).values()
            if i.status == QueueItemStatus.DEAD
        ]
    events: list[ev.EventBase] = []
    for item in targets:
        events += _disarm(s, item)
        events.append(
            ev.QueueItemRetry(queue_name=name, item_id=item.id, namespace=namespace, manual=True)
        )
    if events:
        root = Path(request["project_root"])
        workers, keys = s.workers.push_events(runbook, root, namespace, name)
        await s.ctx.commit(*events, *workers)
        for key in keys:
            s.workers.wake(key)
    return {"type": "QueueRetried", "queue": name, "item_ids": [i.id for i in targets]}


async def prune(s: Services, request: QueuePruneRequest) -> QueuePrunedResponse:
    """Completed and dead items that ended more than 12 h ago (all of them with ``all``); never
    pending, active or failed (retry-waiting) ones, so state does not grow without bound."""
    namespace, name = request["namespace"], request["queue"]
    await _persisted(s, request["project_root"], name)
    remote = _remote(s, request["project_root"], namespace, name)
    if remote is not None:
        gone, kept = await remote.prune(
            everything=bool(request.get("all")),
            dry_run=bool(request.get("dry_run")),
            older_than_ms=PRUNE_AGE_MS,
        )
        views = [remote_item_view(r.item, r.history) for r in gone]
        return {"type": "QueuePruned", "queue": name, "pruned": views, "skipped": kept}
    cutoff = s.ctx.clock.now_ms() - PRUNE_AGE_MS
    pruned: list[QueueItemView] = []
    skipped = 0
    for item in s.ctx.state.queue(name, namespace).values():
        ended = item.status in (QueueItemStatus.COMPLETED, QueueItemStatus.DEAD)
        ended_at = item.ended_at_ms or item.pushed_at_ms
        if ended and (request.get("all") or ended_at <= cutoff):
            pruned.append(item_view(item))
        else:
            skipped += 1
    if pruned and not request.get("dry_run"):
        await s.ctx.commit(
            *[
                ev.QueueDropped(queue_name=name, item_id=i["id"], namespace=namespace)
                for i in pruned
            ]
        )
    return {"type": "QueuePruned", "queue": name, "pruned": pruned, "skipped": skipped}


# -- queries -----------------------------------------------------------------------------------


async def list_queues(s: Services, query: ListQueuesQuery) -> QueuesResponse:
    """The queues the project defines, plus persisted queues of the namespace that still hold
    items but are no longer defined; counts from state (external: what runs now)."""
    namespace = query["namespace"]
    state = s.ctx.state
    seen: set[str] = set()
    out: list[QueueSummary] = []
    for runbook in await s.ctx.runbooks.project(Path(query["project_root"])):
        for queue in runbook.queues.values():
            if queue.name in seen:
                continue
            seen.add(queue.name)
            workers = sorted(w.name for w in runbook.workers.values() if w.queue == queue.name)
            key = scoped_key(namespace, queue.name)
            active = None
            if queue.type == "persisted" and (
                remote := _remote(s, query["project_root"], namespace, queue.name)
            ):
                out.append(await _remote_summary(remote, workers))
                continue
            if queue.type == "external":
                active = sum(
                    len(w.items)
                    for w in state.workers.values()
                    if w.namespace == namespace and w.queue_name == queue.name
                )
            out.append(
                queue_summary(
                    queue.name,
                    namespace,
                    queue.type,
                    state.queue(queue.name, namespace).values(),
                    workers,
                    error=s.workers.queue_errors.get(key),
                    active=active,
                )
            )
    for items in state.queue_items.values():
        first = next(iter(items.values()), None)
        if first is not None and first.namespace == namespace and first.queue_name not in seen:
            seen.add(first.queue_name)
            out.append(queue_summary(first.queue_name, namespace, "persisted", items.values(), []))
    out += await _remote_leftovers(s, query["project_root"], namespace, seen)
    out.sort(key=lambda q: q["name"])
    return {"type": "Queues", "queues": out}


async def _remote_leftovers(
    s: Services, root: str, namespace: str, seen: set[str]
) -> list[QueueSummary]:
    """Shared queues that still hold items in the project's database but are no longer
    defined (as for local queues); none when the database is away (the defined queues say so)."""
    try:
        names = await s.workers.remote.queue_names(root, namespace)
    except QueueError:
        return []
    out = []
    for name in names:
        remote = _remote(s, root, namespace, name)
        if name not in seen and remote is not None:
            out.append(await _remote_summary(remote, []))
    return out


async def _remote_summary(remote: PostgresQueue, workers: list[str]) -> QueueSummary:
    """A shared queue's counts, or (its database away) a summary that says so."""
    counts: dict[str, int] = {}
    error: str | None = None
    try:
        counts = await remote.counts()
    except QueueError as exc:
        error = str(exc)
    return queue_summary(
        remote.queue_name, remote.namespace, "persisted", (), workers, error=error, counts=counts
    )


async def list_items(s: Services, query: ListQueueItemsQuery) -> QueueItemsResponse:
    """The items of a queue; with ``after_seq``/``timeout_ms`` a long poll (`oj queue wait`)."""
    namespace, name = query["namespace"], query["queue"]
    remote = _remote(s, query["project_root"], namespace, name)
    after, timeout = query.get("after_seq", 0), query.get("timeout_ms", 0) / 1000.0
    if remote is not None:
        # Every change of a shared queue, by this daemon or another, comes back as a
        # notification: its long poll counts those, not local commits.
        key = (namespace, name)
        if after and timeout > 0:
            await remote.client.wait_change(key, after, timeout)
    else:
        await s.ctx.store.wait_past(after, timeout)
    status = query.get("status")
    if status is not None and status not in set(QueueItemStatus):
        choices = ", ".join(QueueItemStatus)
        raise UsageError(f"unknown item status '{status}'; use one of: {choices}")
    if remote is not None:
        await s.ctx.runbooks.find_queue(Path(query["project_root"]), name)  # unknown → error
        # Read before the items: a change notified while they are read makes the next poll
        # return at once (read after, it would wait for a change already seen as none).
        seen = remote.client.generation((namespace, name))
        found = await remote.items(status)
        return {
            "type": "QueueItems",
            "queue": name,
            "items": [remote_item_view(r.item, r.history) for r in found],
            # The queue's notifications so far (>= 1: 0 would make the client poll instead).
            "seq": seen,
        }
    items = s.ctx.state.queue(name, namespace)
    if not items:
        await s.ctx.runbooks.find_queue(Path(query["project_root"]), name)  # unknown → error
    views = [
        item_view(i)
        for i in sorted(items.values(), key=lambda i: i.pushed_at_ms, reverse=True)
        if status is None or i.status == status
    ]
    return {"type": "QueueItems", "queue": name, "items": views, "seq": s.ctx.store.last_seq}


ROUTES = [
    Route("QueuePush", push, mutates=True),
    Route("QueueDrop", drop, mutates=True),
    Route("QueueRetry", retry, mutates=True),
    Route("QueuePrune", prune, mutates=True),
    Route("ListQueues", list_queues, mutates=False, query=True),
    Route("ListQueueItems", list_items, mutates=False, query=True),
]
