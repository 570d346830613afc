"""Reducers for persisted cron records, keyed ``ns/name`` (issue 11).

Like a worker's, a cron's record outlives ``cron:stopped``: ``stopped`` is sticky until the next
``cron:started``, across restarts. ``cron:fired`` for a cron without a record (``oj cron once`` of
a cron never started) creates a stopped one, so its fires are listed. A cron counts its runs
against ``concurrency`` from ``pipeline_ids``: at each fire the ids whose pipelines ended (or are
gone) are dropped, deterministically from the state, so the list stays as short as the runs.
``last_scheduled_at_ms`` is the scheduled time of the last fire or skip handled (not a maximum:
after the wall clock steps back, an interval cron's times continue on the new timeline).
"""

from typing import TYPE_CHECKING

from oj_trio import events as ev
from oj_trio.records import Cron, CronStatus, scoped_key
from oj_trio.reducers._table import ReducerTable, on, table

if TYPE_CHECKING:
    from oj_trio.state import MaterializedState


def _cron_started(s: "MaterializedState", e: ev.CronStarted) -> None:
    key = scoped_key(e.namespace, e.cron_name)
    old = s.crons.get(key)
    s.crons[key] = Cron(
        name=e.cron_name,
        namespace=e.namespace,
        project_root=e.project_root,
        runbook_hash=e.runbook_hash,
        schedule=e.schedule,
        status=CronStatus.RUNNING,
        started_at_ms=e.at_ms,
        last_scheduled_at_ms=0,
        last_fire_at_ms=old.last_fire_at_ms if old is not None else 0,
        pipeline_ids=old.pipeline_ids if old is not None else [],
        fires=old.fires if old is not None else 0,
        skipped=old.skipped if old is not None else 0,
    )


def _cron_stopped(s: "MaterializedState", e: ev.CronStopped) -> None:
    c = s.crons.get(scoped_key(e.namespace, e.cron_name))
    if c is not None:
        c.status = CronStatus.STOPPED


def _cron_fired(s: "MaterializedState", e: ev.CronFired) -> None:
    key = scoped_key(e.namespace, e.cron_name)
    c = s.crons.get(key)
    if c is None:
        c = s.crons[key] = Cron(
            name=e.cron_name,
            namespace=e.namespace,
            project_root=e.project_root,
            runbook_hash=e.runbook_hash,
            schedule=e.schedule,
            status=CronStatus.STOPPED,
        )
    c.pipeline_ids = [
        pid for pid in c.pipeline_ids if (p := s.pipelines.get(pid)) is not None and not p.terminal
    ]
    c.pipeline_ids.append(e.pipeline_id)
    c.last_fire_at_ms = e.at_ms
    c.fires += 1
    if not e.manual:
        c.last_scheduled_at_ms = e.scheduled_at_ms


def _cron_skipped(s: "MaterializedState", e: ev.CronSkipped) -> None:
    c = s.crons.get(scoped_key(e.namespace, e.cron_name))
    if c is not None:
        c.skipped += e.count
        c.last_scheduled_at_ms = e.scheduled_at_ms


HANDLERS: ReducerTable = table(
    on(ev.CronStarted, _cron_started),
    on(ev.CronStopped, _cron_stopped),
    on(ev.CronFired, _cron_fired),
    on(ev.CronSkipped, _cron_skipped),
)
