"""Queue views: items (``oj queue items``) and per-queue counts (``oj queue list``, ``oj status``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from operator import attrgetter

from ..messages import QueueItemView, QueueSummary
from ..records import QueueItem, QueueItemStatus

_STATUS = attrgetter("status")


def item_view(item: QueueItem) -> QueueItemView:
    return {
        "id": item.id,
        "queue": item.queue_name,
        "namespace": item.namespace,
        "status": str(item.status),
        "data": dict(item.data),
        "worker_name": item.worker_name,
        "pushed_at_epoch_ms": item.pushed_at_ms,
        "failure_count": item.failure_count,
        "error": item.error,
    }


def remote_item_view(item: QueueItem, history: list[str]) -> QueueItemView:
    """An item of a queue shared by several daemons, with its history (claimed by whom, …)."""
    return {**item_view(item), "history": history}


def queue_summary(
    name: str,
    namespace: str,
    queue_type: str,
    items: Iterable[QueueItem],
    workers: list[str],
    error: str | None = None,
    active: int | None = None,
    counts: Mapping[str, int] | None = None,
) -> QueueSummary:
    """Counts by status; ``active`` overrides the count for external queues (their items are
    not in state: what is active is what this daemon's workers run); ``counts``: counted
    elsewhere (a queue in a shared database)."""
    by_status = dict.fromkeys(QueueItemStatus, 0)
    by_status.update(Counter(map(_STATUS, items)))  # C-speed: polled often, on big queues
    for status, number in (counts or {}).items():
        by_status[QueueItemStatus(status)] += number
    return {
        "name": name,
        "namespace": namespace,
        "type": queue_type,
        "pending": by_status[QueueItemStatus.PENDING],
        "active": by_status[QueueItemStatus.ACTIVE] if active is None else active,
        "failed": by_status[QueueItemStatus.FAILED],
        "dead": by_status[QueueItemStatus.DEAD],
        "completed": by_status[QueueItemStatus.COMPLETED],
        "workers": workers,
        "error": error,
    }
