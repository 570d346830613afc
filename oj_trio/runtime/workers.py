"""Workers: drain a queue into handler pipelines, at most ``concurrency`` at a time.

Each worker record that is ``running`` has one loop task here: dispatch (claim up to the free
slots from the queue's backend, create a pipeline per item), then sleep until woken — by a push
to its queue, a retry timer, the end of one of its pipelines, a start/resize, or (external
queues with ``poll``) the poll interval. The worker never owns its pipelines: they belong to the
supervisor's nursery (SPEC §2), and the worker only counts them (``active_pipeline_ids`` in its
durable record, so concurrency holds across a restart).

``oj worker stop`` (seed 000) flips the record to ``stopped`` and cancels nothing: its pipelines
run to completion and their items complete or fail; the loop dispatches nothing — not on a
wake, a pipeline end or a push — until ``oj worker start``. A push auto-starts a worker that was
never started (seed 001); a stopped one stays stopped (SPEC §4.4).

When a pipeline ends, its item's outcome goes to the queue (``done`` → completed; otherwise
failed, then retried after the cooldown or dead, :mod:`oj_trio.queues.retry`). A restart
reconciles: a claim whose pipeline was never created is released, a pipeline that ended without
its outcome reaching the queue is settled, a failed item whose retry timer fired without the
retry being recorded is retried.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Callable
from pathlib import Path

import attrs
import trio

from .. import events as ev
from ..errors import NotFoundError, OjError
from ..messages import QueueSummary
from ..pipeline_setup import prepare_pipeline
from ..queues import retry
from ..queues.backend import (
    KEEP_COMPLETED,
    PRUNE_EVERY,
    Claims,
    QueueBackend,
    QueueError,
    WorkerRef,
)
from ..queues.external import ExternalQueue
from ..queues.persisted import PersistedQueue
from ..records import QueueItemStatus, Worker, WorkerStatus, scoped_key
from ..runbook.model import Pipeline as PipelineDef
from ..runbook.model import Queue, Runbook
from ..runbook.model import Worker as WorkerDef
from ..state import Pipeline
from ..timers import QueueRetryTimer
from ..views.queues import queue_summary
from .context import RuntimeContext, Supervision
from .pipeline_start import start_pipelines
from .remote_queues import RemoteQueues
from .timer_service import FiredTimer

log = logging.getLogger("oj.workers")


@attrs.frozen
class Definition:
    """A worker's runbook entities, from the runbook stored when it was started."""

    runbook: Runbook
    worker: WorkerDef
    queue: Queue
    pipeline: PipelineDef


def worker_definition(runbook: Runbook, name: str) -> Definition:
    """Validate a worker against its runbook (reference §3.4 errors).

    Raises:
        NotFoundError: the worker, its queue or its handler pipeline is not in the runbook.
    """
    worker = runbook.workers.get(name)
    if worker is None:
        raise NotFoundError(f"no runbook found containing worker '{name}'")
    queue = runbook.queues.get(worker.queue)
    if queue is None:
        raise NotFoundError(f"worker '{name}' references unknown queue '{worker.queue}'")
    pipeline = runbook.pipelines.get(worker.pipeline)
    if pipeline is None:
        raise NotFoundError(f"worker '{name}' references unknown pipeline '{worker.pipeline}'")
    return Definition(runbook, worker, queue, pipeline)


def item_vars(definition: PipelineDef, item_id: str, data: dict[str, str]) -> dict[str, str]:
    """The handler pipeline's vars for an item: ``item.<field>``, ``item.id``, and the item under
    the pipeline's first declared var (``${var.<first>.<field>}``)."""
    values = {f"item.{k}": v for k, v in data.items()}
    values.setdefault("item.id", item_id)
    if definition.vars:
        first = definition.vars[0]
        values.update({f"{first}.{k}": v for k, v in data.items()})
        values.setdefault(f"{first}.id", item_id)
    return values


class WorkerService:
    """Every worker's loop, their wake-ups, and the settling of their items."""

    def __init__(self, ctx: RuntimeContext, supervisor: Supervision) -> None:
        self.ctx = ctx
        self.supervisor = supervisor
        self._wakes: dict[str, trio.Event] = {}
        self._nursery: trio.Nursery | None = None
        #: queue key → the last error reading an external queue (None once it reads fine).
        self.queue_errors: dict[str, str] = {}
        self._completions: dict[str, int] = {}
        #: queue key → item ids claimed whose claim is not durable yet (it is committed with the
        #: items' pipelines): another worker of the same queue must not take them meanwhile.
        self._claiming: dict[str, set[str]] = {}
        #: Pipelines whose item is being settled right now.
        self._settling: set[str] = set()
        #: Pipelines whose item's outcome went into the commit that ended them: worker key, and
        #: the persisted queue when the item completed (for :meth:`_bound_completed`).
        self._settled_with_end: dict[str, tuple[str, str | None]] = {}
        #: Pipelines whose item's outcome could not reach its queue (its database was away):
        #: settled again at the worker's next look at its queue.
        self._unsettled: set[str] = set()
        #: Queue databases shared with other daemons (persisted queues of projects with a url).
        self.remote = RemoteQueues(ctx, on_wake=self._remote_wake, on_lost=self._claim_lost)

    # -- lifecycle ---------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Reconcile after a restart, then run a loop per running worker until cancelled."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            self.remote.bind(nursery)
            await self.reconcile()
            for key, record in list(self.ctx.state.workers.items()):
                if record.status == WorkerStatus.RUNNING:
                    self.wake(key)
            task_status.started()
            await trio.sleep_forever()

    def wake(self, key: str) -> None:
        """Make the worker ``key`` look at its queue (starting its loop if it has none)."""
        event = self._wakes.get(key)
        if event is not None:
            event.set()
            return
        if self._nursery is None:
            return
        self._wakes[key] = trio.Event()
        self._nursery.start_soon(self._loop, key, name=f"worker {key}")

    def wake_queue(self, namespace: str, queue_name: str) -> None:
        for key, record in self.ctx.state.workers.items():
            if record.namespace == namespace and record.queue_name == queue_name:
                self.wake(key)

    async def _loop(self, key: str) -> None:
        try:
            while True:
                record = self.ctx.state.workers.get(key)
                if record is None:
                    return
                self._wakes[key] = wake = trio.Event()
                poll: float | None = None
                # A stopped worker's items still get their outcomes (stop cancels nothing).
                await self._settle_left_over(record)
                if record.status == WorkerStatus.RUNNING and not self.supervisor.is_draining():
                    poll = await self._dispatch_safely(record)
                # An external queue's `poll` is a period, not a deadline: a restart polls at
                # once anyway, so it needs no durable timer.
                with trio.move_on_after(poll if poll else math.inf):
                    await wake.wait()
        finally:
            self._wakes.pop(key, None)

    async def _dispatch_safely(self, record: Worker) -> float | None:
        """Dispatch what fits; return the backend's poll interval (also after a failing read of
        the queue: the next poll retries it). Never raises an OjError."""
        try:
            definition = self.definition(record)
        except OjError as exc:
            log.error("worker %s: %s", record.name, exc)
            return None
        try:
            backend = self.backend(record, definition.queue)
        except OjError as exc:
            log.error("worker %s: %s", record.name, exc)
            return None
        try:
            await self._dispatch(record, definition, backend)
        except QueueError as exc:
            log.warning("worker %s: %s", record.name, exc)
        except OjError as exc:
            log.error("worker %s: %s", record.name, exc)
        except Exception:
            # A bug must cost one dispatch, never the worker service (nor the daemon with it).
            log.exception("worker %s: dispatch failed", record.name)
        return backend.poll_interval

    # -- dispatch ------------------------------------------------------------------------------

    def definition(self, record: Worker) -> Definition:
        runbook = self.ctx.runbooks.by_hash(record.runbook_hash, f"of worker {record.name}")
        return worker_definition(runbook, record.name)

    def backend(self, record: Worker, queue: Queue) -> QueueBackend:
        """The worker's queue: in the WAL, in a shared database, or external.

        Raises:
            OjError: the project's queue url is unusable.
        """
        if queue.type == "persisted":
            remote = self.remote.queue(record.project_root, record.namespace, queue.name)
            if remote is not None:
                return remote
            return PersistedQueue(self.ctx.store, self.ctx.clock, record.namespace, queue.name)
        key = scoped_key(record.namespace, queue.name)

        def report(error: str | None) -> None:
            if error is None:
                self.queue_errors.pop(key, None)
            else:
                self.queue_errors[key] = error

        env = dict(self.ctx.env)
        if record.namespace:
            env["OJ_NAMESPACE"] = record.namespace
        return ExternalQueue(
            self.ctx.store, queue, project_root=record.project_root, env=env, report=report
        )

    async def _dispatch(
        self, record: Worker, definition: Definition, backend: QueueBackend
    ) -> None:
        free = record.effective_concurrency - len(record.active_pipeline_ids)
        if free <= 0:
            return
        ref = WorkerRef(record.name, record.namespace)
        new_id: Callable[[], str] = lambda: str(uuid.uuid4())  # noqa: E731
        queue_key = scoped_key(record.namespace, record.queue_name)
        claiming = self._claiming.setdefault(queue_key, set())
        in_flight = frozenset(
            item_id
            for w in self.ctx.state.workers.values()
            if w.namespace == record.namespace and w.queue_name == record.queue_name
            for item_id in w.items.values()
        ).union(claiming)
        taken = await backend.claim(ref, free, in_flight, new_id)
        if not taken.claims:
            return
        ids = {c.item_id for c in taken.claims}
        claiming |= ids
        try:
            await self._create(record, definition, taken)
        finally:
            claiming -= ids

    async def _create(self, record: Worker, definition: Definition, taken: Claims) -> None:
        """A pipeline per claimed item, committed together with the claim."""
        ctx = self.ctx
        kind = definition.worker.pipeline
        created: list[ev.EventBase] = []
        failed: list[tuple[str, str, str]] = []
        for claim in taken.claims:
            try:
                created += await prepare_pipeline(
                    definition.runbook,
                    kind,
                    pipeline_id=claim.pipeline_id,
                    namespace=record.namespace,
                    vars={
                        **item_vars(definition.pipeline, claim.item_id, dict(claim.data)),
                        "invoke.dir": record.project_root,
                    },
                    fallback_name=f"{kind}-{claim.item_id}",
                    invoke_dir=record.project_root,
                    workspaces_dir=ctx.workspaces_dir,
                    env=ctx.env,
                    runbook_hash=record.runbook_hash,
                    at_ms=ctx.clock.now_ms(),
                )
            except OjError as exc:
                # No pipeline will exist for this claim (a local failed): the item fails now.
                log.warning("worker %s: item %s: %s", record.name, claim.item_id, exc)
                failed.append((claim.pipeline_id, claim.item_id, str(exc)))
        if failed:
            # The claims must be durable before their items can fail.
            await ctx.commit(*taken.events)
            for pipeline_id, item_id, error in failed:
                await self._fail_item(record, definition, pipeline_id, item_id, error)
            if created:
                await start_pipelines(ctx, self.supervisor, created)
        else:
            # The claims and their pipelines: one commit.
            await start_pipelines(ctx, self.supervisor, [*taken.events, *created])

    # -- outcomes ----------------------------------------------------------------------------

    def ending_events(self, p: Pipeline, final: str) -> list[ev.EventBase]:
        """The ending hook (pure): when ``p`` is a worker's pipeline, its item's outcome as events
        to commit with the event that ends ``p`` on ``final`` — one durable step for both, and
        one commit less per job. A backend that cannot (items elsewhere) settles afterwards in
        :meth:`pipeline_ended`."""
        for key, record in self.ctx.state.workers.items():
            item_id = record.items.get(p.id)
            if item_id is None:
                continue
            if p.id in self._settling:
                return []
            try:
                definition = self.definition(record)
                backend = self.backend(record, definition.queue)
            except OjError:
                return []  # logged when pipeline_ended tries again
            error, retry_at = self._outcome(backend, definition, item_id, final)
            ref = WorkerRef(record.name, record.namespace)
            events = backend.outcome_events(ref, p.id, item_id, error, retry_at)
            if events is None:
                return []
            completed = error is None and definition.queue.type == "persisted"
            self._settled_with_end[p.id] = (key, definition.queue.name if completed else None)
            return list(events)
        return []

    def _outcome(
        self, backend: QueueBackend, definition: Definition, item_id: str, final: str
    ) -> tuple[str | None, int | None]:
        """``(error, retry_at_ms)`` of an item whose pipeline ended on ``final``."""
        if final == "done":
            return None, None
        return f"pipeline reached '{final}'", self._retry_at(backend, definition, item_id)

    def _retry_at(self, backend: QueueBackend, definition: Definition, item_id: str) -> int | None:
        """When a failing item runs again (None: it is dead), counting this failure."""
        decision = retry.decide(
            backend.failures(item_id) + 1, definition.queue.retry, self.ctx.clock.now_ms()
        )
        return decision.due_at_ms if isinstance(decision, retry.RetryAt) else None

    async def pipeline_ended(self, p: Pipeline) -> None:
        """The pipeline-end hook: the item's outcome goes to its queue (unless it went with the
        pipeline's end already), and the worker looks at its queue again."""
        ended = self._settled_with_end.pop(p.id, None)
        if ended is not None:
            key, completed_queue = ended
            record = self.ctx.state.workers.get(key)
            if record is not None and completed_queue is not None:
                await self._bound_completed(record.namespace, completed_queue)
            self.wake(key)
            return
        for key, record in list(self.ctx.state.workers.items()):
            item_id = record.items.get(p.id)
            if item_id is not None:
                await self._settle(record, p, item_id)
                self.wake(key)
                return

    async def _settle(self, record: Worker, p: Pipeline, item_id: str) -> None:
        """Exactly once per pipeline: the boot reconcile and the pipeline-end hook can both
        reach the same pipeline (a pipeline re-driven at boot may end while the reconcile
        runs), so a settlement in progress or already durable is not repeated."""
        if p.id in self._settling or p.id not in record.items:
            return
        self._settling.add(p.id)
        try:
            await self._settle_once(record, p, item_id)
            self._unsettled.discard(p.id)
        except QueueError as exc:
            # The queue's database is away: the item stays claimed (its lease is renewed) and
            # is settled when the worker next looks at its queue.
            log.warning("worker %s: item %s not settled yet: %s", record.name, item_id, exc)
            self._unsettled.add(p.id)
        finally:
            self._settling.discard(p.id)

    async def _settle_left_over(self, record: Worker) -> None:
        """Settle this worker's items whose outcome could not reach the queue before."""
        for pipeline_id, item_id in list(record.items.items()):
            p = self.ctx.state.pipelines.get(pipeline_id)
            if pipeline_id in self._unsettled and p is not None and p.terminal:
                await self._settle(record, p, item_id)

    async def _settle_once(self, record: Worker, p: Pipeline, item_id: str) -> None:
        try:
            definition = self.definition(record)
            backend = self.backend(record, definition.queue)
        except OjError as exc:
            log.error("worker %s: cannot settle item %s: %s", record.name, item_id, exc)
            return
        if p.step == "done":
            await backend.complete(WorkerRef(record.name, record.namespace), p.id, item_id)
            if isinstance(backend, PersistedQueue):
                await self._bound_completed(record.namespace, definition.queue.name)
        else:
            error = f"pipeline reached '{p.step}'"
            await self._fail_item(record, definition, p.id, item_id, error)

    async def _fail_item(
        self, record: Worker, definition: Definition, pipeline_id: str, item_id: str, error: str
    ) -> None:
        backend = self.backend(record, definition.queue)
        await backend.recount(pipeline_id, item_id)
        retry_at = self._retry_at(backend, definition, item_id)
        ref = WorkerRef(record.name, record.namespace)
        await backend.fail(ref, pipeline_id, item_id, error, retry_at)

    async def _bound_completed(self, namespace: str, queue_name: str) -> None:
        """Drop the oldest completed items beyond :data:`KEEP_COMPLETED` (checked every
        :data:`PRUNE_EVERY` completions)."""
        key = scoped_key(namespace, queue_name)
        count = self._completions.get(key, 0) + 1
        self._completions[key] = count % PRUNE_EVERY
        if count < PRUNE_EVERY:
            return
        done = [
            i
            for i in self.ctx.state.queue(queue_name, namespace).values()
            if i.status == QueueItemStatus.COMPLETED
        ]
        if len(done) <= KEEP_COMPLETED:
            return
        done.sort(key=lambda i: i.ended_at_ms or i.pushed_at_ms)
        await self.ctx.commit(
            *[
                ev.QueueDropped(queue_name=queue_name, item_id=i.id, namespace=namespace)
                for i in done[: len(done) - KEEP_COMPLETED]
            ]
        )

    async def on_retry_timer(self, fired: FiredTimer) -> None:
        """``queue-retry:<ns/queue>:<item>`` fired: the failed item is pending again."""
        key = fired.key
        assert isinstance(key, QueueRetryTimer)
        await self._retry_failed(key.namespace, key.queue_name, key.item_id)
        self.wake_queue(key.namespace, key.queue_name)

    async def _retry_failed(self, namespace: str, queue_name: str, item_id: str) -> None:
        item = self.ctx.state.queue(queue_name, namespace).get(item_id)
        if item is not None and item.status == QueueItemStatus.FAILED:
            await self.ctx.commit(
                ev.QueueItemRetry(queue_name=queue_name, item_id=item_id, namespace=namespace)
            )

    # -- restart -----------------------------------------------------------------------------

    async def reconcile(self) -> None:
        """After a restart: release claims without a pipeline, settle ended pipelines' items,
        retry failed items whose retry timer fired without the retry being recorded."""
        state = self.ctx.state
        for record in list(state.workers.values()):
            for pipeline_id, item_id in list(record.items.items()):
                p = state.pipelines.get(pipeline_id)
                if p is None:
                    try:
                        definition = self.definition(record)
                    except OjError as exc:
                        log.error("worker %s: %s", record.name, exc)
                        continue
                    backend = self.backend(record, definition.queue)
                    ref = WorkerRef(record.name, record.namespace)
                    log.info("worker %s: releasing item %s (no pipeline)", record.name, item_id)
                    await backend.release(ref, pipeline_id, item_id)
                elif p.terminal:
                    await self._settle(record, p, item_id)
                else:
                    await self._attach(record, pipeline_id, item_id)
        armed = set(state.timers)
        for items in list(state.queue_items.values()):
            for item in list(items.values()):
                timer = QueueRetryTimer(item.namespace, item.queue_name, item.id).id
                if item.status == QueueItemStatus.FAILED and timer not in armed:
                    await self._retry_failed(item.namespace, item.queue_name, item.id)

    async def _attach(self, record: Worker, pipeline_id: str, item_id: str) -> None:
        """A pipeline that runs on after the restart holds on to its item's claim."""
        try:
            definition = self.definition(record)
            backend = self.backend(record, definition.queue)
            await backend.attach(WorkerRef(record.name, record.namespace), pipeline_id, item_id)
            log.info("worker %s: item %s runs on in pipeline %s", record.name, item_id, pipeline_id)
        except OjError as exc:
            log.error("worker %s: item %s: %s", record.name, item_id, exc)

    # -- queues shared with other daemons ------------------------------------------------------

    def _remote_wake(self, queue: tuple[str, str] | None) -> None:
        """A database says a queue has news (None: any queue may have, e.g. it is back: every
        worker looks, stopped ones too, to settle items whose outcome it could not take)."""
        if queue is not None:
            self.wake_queue(*queue)
            return
        for key in list(self.ctx.state.workers):
            self.wake(key)

    async def shared_queues(self) -> list[QueueSummary]:
        """Counts of the shared queues this daemon's workers serve, for ``oj status``; a queue
        whose database is known to be away is left out (``oj status`` says it is away)."""
        out: list[QueueSummary] = []
        seen: set[tuple[str, str]] = set()
        for record in list(self.ctx.state.workers.values()):
            key = (record.namespace, record.queue_name)
            if key in seen:
                continue
            seen.add(key)
            try:
                remote = self.remote.queue(record.project_root, *key)
                if remote is None or remote.client.error is not None:
                    continue
                if self.definition(record).queue.type != "persisted":
                    continue
                counts = await remote.counts()
            except OjError:
                continue
            names = sorted(
                w.name
                for w in self.ctx.state.workers.values()
                if (w.namespace, w.queue_name) == key
            )
            out.append(
                queue_summary(
                    record.queue_name, record.namespace, "persisted", (), names, counts=counts
                )
            )
        return out

    def _claim_lost(self, pipeline_id: str) -> None:
        """Another daemon claimed the item of ``pipeline_id`` (its lease lapsed here): the item
        runs there now, so this pipeline stops; its outcome then finds the claim gone."""
        p = self.ctx.state.pipelines.get(pipeline_id)
        if p is not None and not p.terminal:
            self.supervisor.start_soon_background(self.supervisor.cancel, pipeline_id)

    # -- starting and stopping -----------------------------------------------------------------

    async def start(
        self, project_root: Path, namespace: str, name: str, *, restart: bool = False
    ) -> bool:
        """Start (or, when it runs, wake) a worker; returns whether it was already running.

        Raises:
            NotFoundError / RunbookError: the worker, its queue or its pipeline is missing.
        """
        runbook, _worker = await self.ctx.runbooks.find_worker(project_root, name)
        return await self.start_from(runbook, project_root, namespace, name, restart=restart)

    def start_events(
        self,
        runbook: Runbook,
        project_root: Path,
        namespace: str,
        name: str,
        *,
        restart: bool = False,
    ) -> tuple[list[ev.EventBase], bool]:
        """The events that start worker ``name`` (``runbook:loaded`` if needed, then
        ``worker:started``), or only wake it (``worker:wake``) when it runs and this is no
        restart; and whether it was running.

        Raises:
            NotFoundError: the worker, its queue or its pipeline is not in ``runbook``.
        """
        definition = worker_definition(runbook, name)
        record = self.ctx.state.workers.get(scoped_key(namespace, name))
        running = record is not None and record.status == WorkerStatus.RUNNING
        if running and not restart:
            return [ev.WorkerWake(worker_name=name, namespace=namespace)], True
        events = self.ctx.runbooks.load_events(runbook)
        if restart and record is not None:
            events.append(ev.WorkerStopped(worker_name=name, namespace=namespace))
        events.append(
            ev.WorkerStarted(
                worker_name=name,
                project_root=str(project_root),
                runbook_hash=self.ctx.runbooks.digest(runbook),
                queue_name=definition.queue.name,
                concurrency=definition.worker.concurrency,
                namespace=namespace,
                restart=restart,
            )
        )
        return events, running

    async def start_from(
        self,
        runbook: Runbook,
        project_root: Path,
        namespace: str,
        name: str,
        *,
        restart: bool = False,
    ) -> bool:
        events, running = self.start_events(runbook, project_root, namespace, name, restart=restart)
        await self.ctx.commit(*events)
        if not running or restart:
            log.info("worker %s started (%s)", name, "restart" if restart else "start")
        self.wake(scoped_key(namespace, name))
        return running

    async def stop(self, namespace: str, name: str | None) -> list[str]:
        """Stop one worker (``name``) or every running worker of ``namespace``; cancels nothing.

        Raises:
            NotFoundError: ``name`` is not a worker this daemon knows in ``namespace``.
        """
        workers = self.ctx.state.workers
        if name is not None:
            record = workers.get(scoped_key(namespace, name))
            if record is None:
                raise NotFoundError(f"unknown worker: {name}")
            targets = [record]
        else:
            targets = [
                w
                for w in workers.values()
                if w.namespace == namespace and w.status == WorkerStatus.RUNNING
            ]
        if targets:
            await self.ctx.commit(
                *[ev.WorkerStopped(worker_name=w.name, namespace=w.namespace) for w in targets]
            )
        return [w.name for w in targets]

    async def resize(self, namespace: str, name: str, concurrency: int) -> int:
        """Change a worker's concurrency (durably); returns the previous one.

        Raises:
            NotFoundError: unknown worker. OjError: ``concurrency`` < 1.
        """
        if concurrency < 1:
            raise OjError(f"concurrency must be at least 1, got {concurrency}")
        key = scoped_key(namespace, name)
        record = self.ctx.state.workers.get(key)
        if record is None:
            raise NotFoundError(f"unknown worker: {name}")
        previous = record.effective_concurrency
        await self.ctx.commit(
            ev.WorkerResized(worker_name=name, concurrency=concurrency, namespace=namespace)
        )
        self.wake(key)
        return previous

    def push_events(
        self, runbook: Runbook, project_root: Path, namespace: str, queue: str
    ) -> tuple[list[ev.EventBase], list[str]]:
        """Seed 001, as events to commit together with a push (one commit, not two): wake the
        running workers of ``queue`` (in the runbook that defines it) and start those that were
        never started; a stopped worker stays stopped (SPEC §4.4). Also returns the worker keys
        to :meth:`wake` once the commit is durable."""
        events: list[ev.EventBase] = []
        keys: list[str] = []
        for worker in runbook.workers.values():
            if worker.queue != queue:
                continue
            key = scoped_key(namespace, worker.name)
            record = self.ctx.state.workers.get(key)
            if record is not None and record.status != WorkerStatus.RUNNING:
                continue  # stopped explicitly: sticky
            try:
                started, running = self.start_events(runbook, project_root, namespace, worker.name)
            except OjError as exc:
                log.warning("auto-start of worker %s failed: %s", worker.name, exc)
                continue
            if not running:
                log.info("auto-started worker %s on queue push", key)
            loaded = {e.hash for e in events if isinstance(e, ev.RunbookLoaded)}
            events += [
                e for e in started if not (isinstance(e, ev.RunbookLoaded) and e.hash in loaded)
            ]
            keys.append(key)
        return events, keys

    async def after_push(
        self, runbook: Runbook, project_root: Path, namespace: str, queue: str
    ) -> None:
        """:meth:`push_events` committed on their own (for callers whose push is already
        durable), then the workers woken."""
        events, keys = self.push_events(runbook, project_root, namespace, queue)
        if events:
            await self.ctx.commit(*events)
        for key in keys:
            self.wake(key)
