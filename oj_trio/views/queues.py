"""Queue views: items (``oj queue items``) and per-queue counts (``oj queue list``, ``oj status``)."""

from __future__ import annotations

from collections.abc import Iterable

from ..messages import QueueItemView, QueueSummary
from ..records import QueueItem, QueueItemStatus


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


def queue_summary(
    name: str,
    namespace: str,
    queue_type: str,
    items: Iterable[QueueItem],
    workers: list[str],
    error: str | None = None,
    active: int | None = None,
) -> QueueSummary:
    """Counts by status; ``active`` overrides the count for external queues (their items are
    not in state: what is active is what this daemon's workers run)."""
    counts = dict.fromkeys(QueueItemStatus, 0)
    for item in items:
        counts[item.status] += 1
    return {
        "name": name,
        "namespace": namespace,
        "type": queue_type,
        "pending": counts[QueueItemStatus.PENDING],
        "active": counts[QueueItemStatus.ACTIVE] if active is None else active,
        "failed": counts[QueueItemStatus.FAILED],
        "dead": counts[QueueItemStatus.DEAD],
        "completed": counts[QueueItemStatus.COMPLETED],
        "workers": workers,
        "error": error,
    }
