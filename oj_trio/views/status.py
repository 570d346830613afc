"""The daemon-wide views: counters for ``oj daemon status``, the ``oj status`` overview."""

from __future__ import annotations

from typing import TypedDict

from ..messages import NamespaceStatus, StatusPipeline
from ..state import CronStatus, MaterializedState, StepStatus
from .crons import cron_summary
from .queues import queue_summary
from .workers import worker_summary


class Counts(TypedDict):
    pipelines_active: int
    sessions_active: int
    orphan_count: int


def counts(state: MaterializedState) -> Counts:
    """The numbers `oj daemon status` shows."""
    active = sum(1 for p in state.pipelines.values() if not p.terminal)
    return {"pipelines_active": active, "sessions_active": len(state.sessions), "orphan_count": 0}


def status_overview(state: MaterializedState, now_ms: int) -> list[NamespaceStatus]:
    """`NamespaceStatus` per namespace with something live, sorted by namespace."""
    by_ns: dict[str, NamespaceStatus] = {}

    def section(namespace: str) -> NamespaceStatus:
        return by_ns.setdefault(
            namespace,
            {
                "namespace": namespace,
                "active_pipelines": [],
                "escalated_pipelines": [],
                "workers": [],
                "queues": [],
                "active_agents": [],
            },
        )

    for p in state.pipelines.values():
        if p.terminal:
            continue
        ns = section(p.namespace)
        entry: StatusPipeline = {
            "id": p.id,
            "name": p.name,
            "kind": p.kind,
            "step": p.step,
            "step_status": str(p.step_status),
            "elapsed_ms": max(0, now_ms - p.created_at_ms),
        }
        if p.step_status == StepStatus.WAITING:
            entry["waiting_reason"] = p.error
            ns["escalated_pipelines"].append(entry)
        else:
            ns["active_pipelines"].append(entry)
    for w in sorted(state.workers.values(), key=lambda w: w.name):
        section(w.namespace)["workers"].append(worker_summary(w))
    for c in sorted(state.crons.values(), key=lambda c: c.name):
        if c.status == CronStatus.RUNNING:
            section(c.namespace).setdefault("crons", []).append(cron_summary(c, state))
    for items in state.queue_items.values():
        first = next(iter(items.values()), None)
        if first is None:
            continue
        summary = queue_summary(first.queue_name, first.namespace, "persisted", items.values(), [])
        if summary["pending"] or summary["active"] or summary["dead"] or summary["failed"]:
            section(first.namespace)["queues"].append(summary)
    for ns in by_ns.values():
        ns["queues"].sort(key=lambda q: q["name"])
    return [by_ns[k] for k in sorted(by_ns)]
