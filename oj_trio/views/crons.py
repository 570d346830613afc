"""Cron views: ``CronSummary`` (``oj cron list``, ``oj status``)."""

from __future__ import annotations

from ..messages import CronSummary
from ..records import Cron, CronStatus
from ..state import MaterializedState
from ..timers import cron_id


def cron_summary(c: Cron, state: MaterializedState) -> CronSummary:
    """A cron record with its next fire (the armed timer; ``None`` when stopped)."""
    running = c.status == CronStatus.RUNNING
    active = sum(
        1
        for pid in c.pipeline_ids
        if (p := state.pipelines.get(pid)) is not None and not p.terminal
    )
    return {
        "name": c.name,
        "namespace": c.namespace,
        "schedule": c.schedule,
        "status": str(c.status),
        "active": active,
        "fires": c.fires,
        "skipped": c.skipped,
        "last_fire_at_ms": c.last_fire_at_ms or None,
        "next_fire_at_ms": state.timers.get(cron_id(c.namespace, c.name)) if running else None,
    }
