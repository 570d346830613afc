"""Reducers for persisted queue items, kept per ``ns/queue`` in push order (reference §3.3).

``queue:pushed`` for an existing id is a no-op (pushes may repeat). ``failure_count`` keeps counting
across automatic retries; only a manual retry resets it (SPEC §4.3). ``queue:failed`` records when
the item failed, the start of its retry cooldown. Only ``queue:dropped`` removes an item.
"""

from typing import TYPE_CHECKING

from oj_trio import events as ev
from oj_trio.records import QueueItem, QueueItemStatus, scoped_key
from oj_trio.reducers._table import ReducerTable, on, table

if TYPE_CHECKING:
    from oj_trio.state import MaterializedState


def _item(
    s: "MaterializedState", namespace: str, queue_name: str, item_id: str
) -> QueueItem | None:
    items = s.queue_items.get(scoped_key(namespace, queue_name))
    return None if items is None else items.get(item_id)


def _queue_pushed(s: "MaterializedState", e: ev.QueuePushed) -> None:
    items = s.queue_items.setdefault(scoped_key(e.namespace, e.queue_name), {})
    if e.item_id in items:
        return  # idempotent push
    items[e.item_id] = QueueItem(
        id=e.item_id,
        queue_name=e.queue_name,
        namespace=e.namespace,
        data=dict(e.data),
        pushed_at_ms=e.pushed_at_epoch_ms,
    )


def _queue_taken(s: "MaterializedState", e: ev.QueueTaken) -> None:
    item = _item(s, e.namespace, e.queue_name, e.item_id)
    if item is not None:
        item.status = QueueItemStatus.ACTIVE
        item.worker_name = e.worker_name


def _queue_completed(s: "MaterializedState", e: ev.QueueCompleted) -> None:
    item = _item(s, e.namespace, e.queue_name, e.item_id)
    if item is not None:
        item.status = QueueItemStatus.COMPLETED
        item.ended_at_ms = e.at_ms


def _queue_failed(s: "MaterializedState", e: ev.QueueFailed) -> None:
    item = _item(s, e.namespace, e.queue_name, e.item_id)
    if item is not None:
        item.status = QueueItemStatus.FAILED
        item.failure_count += 1
        item.error = e.error
        item.failed_at_ms = e.at_ms


def _queue_item_retry(s: "MaterializedState", e: ev.QueueItemRetry) -> None:
    item = _item(s, e.namespace, e.queue_name, e.item_id)
    if item is not None:
        item.status = QueueItemStatus.PENDING
        item.worker_name = None
        item.ended_at_ms = 0
        if e.manual:
            item.failure_count = 0  # SPEC §4.3: manual retry resets, automatic keeps counting


def _queue_item_dead(s: "MaterializedState", e: ev.QueueItemDead) -> None:
    item = _item(s, e.namespace, e.queue_name, e.item_id)
    if item is not None:
        item.status = QueueItemStatus.DEAD
        item.ended_at_ms = e.at_ms


def _queue_dropped(s: "MaterializedState", e: ev.QueueDropped) -> None:
    key = scoped_key(e.namespace, e.queue_name)
    items = s.queue_items.get(key)
    if items is not None and items.pop(e.item_id, None) is not None and not items:
        del s.queue_items[key]


HANDLERS: ReducerTable = table(
    on(ev.QueuePushed, _queue_pushed),
    on(ev.QueueTaken, _queue_taken),
    on(ev.QueueCompleted, _queue_completed),
    on(ev.QueueFailed, _queue_failed),
    on(ev.QueueItemRetry, _queue_item_retry),
    on(ev.QueueItemDead, _queue_item_dead),
    on(ev.QueueDropped, _queue_dropped),
)
