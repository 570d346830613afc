"""Worker views: ``WorkerSummary`` (``oj worker list``, ``oj status``)."""

from __future__ import annotations

from ..messages import WorkerSummary
from ..records import Worker


def worker_summary(w: Worker) -> WorkerSummary:
    return {
        "name": w.name,
        "namespace": w.namespace,
        "queue": w.queue_name,
        "status": str(w.status),
        "active": len(w.active_pipeline_ids),
        "concurrency": w.effective_concurrency,
    }
