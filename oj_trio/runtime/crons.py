"""Crons: fire a pipeline on a schedule, on the durable timers (issue 11).

A running cron is a record (``cron:started``, keyed ``ns/name``) and one armed timer,
``cron:<ns/name>``, at its next scheduled fire. Nothing here sleeps: the timer service
(:mod:`oj_trio.runtime.timer_service`) wakes :meth:`CronService.on_timer` when the deadline comes,
and because the deadline is durable, an interval cron keeps its phase across restarts (the next
fire is the last scheduled one plus the interval, not a fresh interval from the restart).

When the timer fires, :func:`oj_trio.schedules.plan.plan_due` decides (pure) between an on-time
fire, a catch-up of fires missed while the daemon was down (``catch_up``: the latest one inside
the window, once), or a skip of missed fires (counted, logged, recorded as ``cron:skipped``).
A fire while ``concurrency`` runs of the cron are still active is skipped the same way (reason
``concurrency``), never queued. Each fire is one commit: ``cron:fired`` (scheduled time, pipeline
id, catch-up flag), the pipeline's creation and the re-armed timer together. The timer service
consumes the timer (``timer:start``) before that commit; a daemon that dies in between leaves a
running cron without a timer, and the next boot handles that fire (:meth:`CronService.reconcile`),
so a crash never loses a fire nor records one twice.

A fire's pipeline is created in the project the cron was started from (``invoke.dir`` is its
root), with ``cron.name``, ``cron.scheduled_at`` (ISO 8601 with the zone's offset) and
``cron.catch_up`` in its vars. Like a worker's, it belongs to the supervisor's nursery, not to the
cron. ``oj cron stop`` is sticky across restarts and cancels nothing; ``oj cron once`` fires now,
whatever the status (but not beyond ``concurrency``).

Wall-clock jumps: the timer service re-reads the wall clock on every wake, so a suspend/resume or
an NTP step is seen at the next wake; the plan's next deadline is always after both now and the
fire just handled, so no scheduled time fires twice and no deadline is left behind. An interval
means elapsed time: after a step back, :meth:`CronService.on_clock_step` moves interval crons'
deadlines back by the step, so they do not wait that much longer once.
"""

from __future__ import annotations

import logging
import os
import uuid
from datetime import UTC, tzinfo
from pathlib import Path

import attrs

from .. import events as ev
from ..errors import NotFoundError, OjError
from ..pipeline_setup import prepare_pipeline
from ..records import Cron, CronStatus, scoped_key
from ..runbook.model import Cron as CronDef
from ..runbook.model import Runbook
from ..runbook.names import nonce_of
from ..schedules.plan import Plan, iso, next_after, plan_due
from ..schedules.spec import Schedule, ScheduleError, parse_zone
from ..timers import CRON, CronTimer, cron_id
from .context import RuntimeContext, Supervision
from .pipeline_start import start_pipelines
from .timer_service import FiredTimer

log = logging.getLogger("oj.crons")

#: How late a fire may run (after its deadline, with the daemon up) and still count as on time.
#: Later than that the machine was asleep or the clock jumped: the fire is a missed one, which
#: runs only inside the cron's ``catch_up`` window.
ON_TIME_MS = 60_000

#: The smallest step back of the wall clock that moves interval crons' deadlines. Smaller
#: corrections are noise: the clock re-sync reads the wall and trio's clock one after the other,
#: and a loaded machine can pause a process between the two reads for tens of milliseconds
#: (NTP slews, rather than steps, corrections below 128 ms anyway). Without it an interval cron's
#: phase would creep earlier by such pauses.
STEP_BACK_MS = 1_000


def schedule_of(cron: CronDef) -> Schedule:
    """The pure schedule of a (validated) cron block."""
    if cron.interval_seconds is not None:
        return Schedule(interval_ms=cron.interval_seconds * 1000, zone=cron.timezone)
    return Schedule(expression=cron.schedule, zone=cron.timezone)


def cron_definition(runbook: Runbook, name: str) -> CronDef:
    """The cron block ``name`` and a check that its pipeline exists.

    Raises:
        NotFoundError: the cron or its pipeline is not in ``runbook``.
    """
    cron = runbook.crons.get(name)
    if cron is None:
        raise NotFoundError(f"no runbook found containing cron '{name}'")
    if cron.pipeline not in runbook.pipelines:
        raise NotFoundError(f"cron '{name}' references unknown pipeline '{cron.pipeline}'")
    return cron


def local_zone(env: dict[str, str]) -> tzinfo:
    """The daemon's local zone as an IANA zone (DST rules included, unlike a fixed offset):
    ``TZ``, else ``/etc/localtime``, else UTC."""
    from zoneinfo import ZoneInfo

    name = env.get("TZ", "").lstrip(":")
    if name:
        try:
            return parse_zone(name)
        except ScheduleError:
            log.warning("TZ=%r is not a known time zone; using the system zone", name)
    try:
        target = os.readlink("/etc/localtime")
        _, sep, key = target.partition("zoneinfo/")
        if sep:
            return parse_zone(key)
    except (OSError, ScheduleError):
        pass
    try:
        with open("/etc/localtime", "rb") as f:
            return ZoneInfo.from_file(f, key="localtime")
    except (OSError, ValueError):
        return UTC


@attrs.frozen
class Fire:
    """One fire to record: its scheduled time and what kind of fire it is."""

    scheduled_at_ms: int
    catch_up: bool = False
    manual: bool = False


class CronService:
    """Starting, stopping and firing crons (see module docstring)."""

    def __init__(
        self, ctx: RuntimeContext, supervisor: Supervision, *, on_time_ms: int = ON_TIME_MS
    ) -> None:
        self.ctx = ctx
        self.supervisor = supervisor
        self.on_time_ms = on_time_ms
        self.local_zone = local_zone(ctx.env)
        #: When this daemon started serving crons: a deadline before it was due while it was down.
        self.booted_at_ms: int | None = None

    # -- definitions ---------------------------------------------------------------------------

    def zone(self, cron: CronDef) -> tzinfo:
        return parse_zone(cron.timezone) if cron.timezone else self.local_zone

    def definition(self, record: Cron) -> tuple[Runbook, CronDef]:
        runbook = self.ctx.runbooks.by_hash(record.runbook_hash, f"of cron {record.name}")
        return runbook, cron_definition(runbook, record.name)

    def active_runs(self, record: Cron | None) -> list[str]:
        """The cron's pipelines that have not ended."""
        if record is None:
            return []
        pipelines = self.ctx.state.pipelines
        return [
            pid
            for pid in record.pipeline_ids
            if (p := pipelines.get(pid)) is not None and not p.terminal
        ]

    # -- restart -------------------------------------------------------------------------------

    async def reconcile(self) -> None:
        """At boot: remember when the daemon came up, and finish the fire of a running cron whose
        timer is missing.

        The timer service consumes a timer (``timer:start``) before its handler runs, and a fire
        is recorded (``cron:fired``/``cron:skipped`` with the re-armed timer) in one later
        commit, so a running cron without a timer is one whose deadline a daemon reached and
        then died before recording what it did. That deadline is the first scheduled time after
        the last one the cron handled; it is handled now, as the deadline a live daemon reached
        (on time if the restart was quick, else missed or caught up like any late fire). A
        crash during this reconcile leaves the state as it was, so the next boot does the
        same: the fire is recorded once or not at all, never lost to the crash window.
        """
        ctx = self.ctx
        now = self.booted_at_ms = ctx.clock.now_ms()
        armed = ctx.state.timers
        rearm: list[ev.EventBase] = []
        claimed: list[FiredTimer] = []
        for record in list(ctx.state.crons.values()):
            if record.status != CronStatus.RUNNING:
                continue
            timer = cron_id(record.namespace, record.name)
            if timer in armed:
                log.info("cron %s: resumed", scoped_key(record.namespace, record.name))
                continue
            try:
                _, cron = self.definition(record)
                anchor = record.last_scheduled_at_ms or record.started_at_ms
                due = next_after(schedule_of(cron), self.zone(cron), anchor, anchor)
            except (OjError, ScheduleError) as exc:
                log.error("cron %s: cannot resume: %s", record.name, exc)
                continue
            if due > now:  # (the wall clock went back since): simply wait for it again
                rearm.append(ev.TimerSet(id=timer, due_at_ms=due))
            else:
                key = CronTimer(record.namespace, record.name)
                claimed.append(FiredTimer(id=timer, key=key, due_at_ms=due, fired_at_ms=now))
        if rearm:
            await ctx.commit(*rearm)
        for fired in claimed:
            log.warning(
                "cron %s: the daemon stopped while firing it; handling that fire now",
                fired.id.removeprefix(f"{CRON}:"),
            )
            await self._handle(fired, claimed=True)

    # -- firing --------------------------------------------------------------------------------

    async def on_timer(self, fired: FiredTimer) -> None:
        """``cron:<ns/name>`` fired: run (or skip) the fire, and arm the next one."""
        await self._handle(fired, claimed=False)

    async def _handle(self, fired: FiredTimer, *, claimed: bool) -> None:
        key = fired.key
        assert isinstance(key, CronTimer)
        name = scoped_key(key.namespace, key.name)
        record = self.ctx.state.crons.get(name)
        if record is None or record.status != CronStatus.RUNNING:
            return
        try:
            runbook, cron = self.definition(record)
            schedule, zone = schedule_of(cron), self.zone(cron)
        except (OjError, ScheduleError) as exc:
            log.error("cron %s: %s; it will not fire again until restarted", name, exc)
            return
        now = self.ctx.clock.now_ms()
        booted = self.booted_at_ms if self.booted_at_ms is not None else now
        plan = plan_due(
            schedule,
            zone,
            fired.due_at_ms,
            now,
            missed_before_ms=booted,
            on_time_ms=self.on_time_ms,
            catch_up_ms=None if cron.catch_up_seconds is None else cron.catch_up_seconds * 1000,
            claimed=claimed,
        )
        events: list[ev.EventBase] = self._missed_events(record, cron, plan, now)
        fire = None if plan.fire_at_ms is None else Fire(plan.fire_at_ms, catch_up=plan.catch_up)
        events.append(ev.TimerSet(id=fired.id, due_at_ms=plan.next_ms))
        await self._fire(record, runbook, cron, zone, fire, events)

    async def on_clock_step(self, drift_ms: int) -> None:
        """The wall clock stepped back by ``-drift_ms`` (at least :data:`STEP_BACK_MS`): move
        every interval cron's deadline back as much, so its next fire still comes one interval
        after the last one (on the new wall timeline) rather than that much later. A calendar
        cron's times are wall times, so it is left alone, and so is everything after a step
        forward (indistinguishable from a resume after a suspend: the fires in between are
        missed, or caught up, like any late fire)."""
        if drift_ms > -STEP_BACK_MS:
            return
        ctx = self.ctx
        events: list[ev.EventBase] = []
        for record in list(ctx.state.crons.values()):
            timer = cron_id(record.namespace, record.name)
            due = ctx.state.timers.get(timer)
            if due is None or record.status != CronStatus.RUNNING:
                continue
            try:
                _, cron = self.definition(record)
            except OjError:
                continue
            if cron.interval_seconds is None:
                continue
            events.append(ev.TimerSet(id=timer, due_at_ms=due + drift_ms))
            log.info(
                "cron %s: the wall clock stepped back %d s; next fire moved to %s",
                scoped_key(record.namespace, record.name),
                -drift_ms // 1000,
                iso(due + drift_ms, self.zone(cron)),
            )
        if events:
            await ctx.commit(*events)

    def _missed_events(
        self, record: Cron, cron: CronDef, plan: Plan, now: int
    ) -> list[ev.EventBase]:
        if plan.last_missed_ms is None:
            return []
        name = scoped_key(record.namespace, record.name)
        if plan.fire_at_ms is None:
            why = "outside its catch_up window" if cron.catch_up else "no catch_up"
            log.warning(
                "cron %s: %d scheduled fire(s) missed while the daemon was down or asleep "
                "(%s); next fire at %s",
                name,
                plan.missed,
                why,
                iso(plan.next_ms, self.zone(cron)),
            )
        else:
            log.warning(
                "cron %s: %d scheduled fire(s) missed; the latest runs%s",
                name,
                plan.missed,
                " as a catch-up" if plan.catch_up else "",
            )
        return [
            ev.CronSkipped(
                cron_name=record.name,
                namespace=record.namespace,
                scheduled_at_ms=plan.last_missed_ms,
                reason="missed",
                count=plan.missed,
                at_ms=now,
            )
        ]

    async def _fire(
        self,
        record: Cron,
        runbook: Runbook,
        cron: CronDef,
        zone: tzinfo,
        fire: Fire | None,
        events: list[ev.EventBase],
    ) -> str | None:
        """Commit ``events`` with the fire (its pipeline, or a skip); returns the pipeline id."""
        ctx = self.ctx
        name = scoped_key(record.namespace, record.name)
        now = ctx.clock.now_ms()
        if fire is None:
            await self._commit_if_running(record, fire, events)
            return None
        active = self.active_runs(ctx.state.crons.get(name))
        if len(active) >= cron.concurrency:
            log.warning(
                "cron %s: fire of %s skipped: %d run(s) still active (concurrency %d)",
                name,
                iso(fire.scheduled_at_ms, zone),
                len(active),
                cron.concurrency,
            )
            skip = ev.CronSkipped(
                cron_name=record.name,
                namespace=record.namespace,
                scheduled_at_ms=fire.scheduled_at_ms,
                reason="concurrency",
                at_ms=now,
            )
            await self._commit_if_running(record, fire, [*events, skip])
            return None
        pipeline_id = str(uuid.uuid4())
        try:
            created = await prepare_pipeline(
                runbook,
                cron.pipeline,
                pipeline_id=pipeline_id,
                namespace=record.namespace,
                vars={
                    "cron.name": record.name,
                    "cron.scheduled_at": iso(fire.scheduled_at_ms, zone),
                    "cron.catch_up": "true" if fire.catch_up else "false",
                    "invoke.dir": record.project_root,
                },
                fallback_name=f"{record.name}-{nonce_of(pipeline_id)}",
                invoke_dir=record.project_root,
                workspaces_dir=ctx.workspaces_dir,
                env=ctx.env,
                runbook_hash=record.runbook_hash,
                at_ms=now,
            )
        except OjError as exc:
            log.error("cron %s: cannot create its pipeline: %s", name, exc)
            skip = ev.CronSkipped(
                cron_name=record.name,
                namespace=record.namespace,
                scheduled_at_ms=fire.scheduled_at_ms,
                reason="error",
                at_ms=now,
            )
            if fire.manual:  # the caller hears it; a manual fire is no scheduled time
                await self._commit_if_running(record, fire, events)
                raise
            await self._commit_if_running(record, fire, [*events, skip])
            return None
        fired = ev.CronFired(
            cron_name=record.name,
            namespace=record.namespace,
            scheduled_at_ms=fire.scheduled_at_ms,
            pipeline_id=pipeline_id,
            catch_up=fire.catch_up,
            manual=fire.manual,
            at_ms=now,
            project_root=record.project_root,
            runbook_hash=record.runbook_hash,
            schedule=record.schedule,
        )
        if not fire.manual and not self._still_running(record):
            return None
        await start_pipelines(ctx, self.supervisor, [*events, fired, *created])
        log.info(
            "cron %s fired%s for %s: pipeline %s",
            name,
            " (catch-up)" if fire.catch_up else " (once)" if fire.manual else "",
            iso(fire.scheduled_at_ms, zone),
            pipeline_id[:12],
        )
        return pipeline_id

    def _still_running(self, record: Cron) -> bool:
        """A stop may land while a fire is being prepared (a ``$(…)`` local runs bash): then the
        fire, and the re-armed timer with it, are dropped."""
        current = self.ctx.state.crons.get(scoped_key(record.namespace, record.name))
        return current is not None and current.status == CronStatus.RUNNING

    async def _commit_if_running(
        self, record: Cron, fire: Fire | None, events: list[ev.EventBase]
    ) -> None:
        if ((fire is not None and fire.manual) or self._still_running(record)) and events:
            await self.ctx.commit(*events)

    # -- requests ------------------------------------------------------------------------------

    async def start(self, project_root: Path, namespace: str, name: str) -> bool:
        """Start a cron (its first fire is the schedule's next time after now; an interval
        cron's is one interval from now); returns whether it was already running (then nothing
        changes: its phase is kept).

        Raises:
            NotFoundError / RunbookError: no valid runbook defines the cron, or its pipeline.
        """
        record = self.ctx.state.crons.get(scoped_key(namespace, name))
        if record is not None and record.status == CronStatus.RUNNING:
            return True
        runbook, _ = await self.ctx.runbooks.find_cron(project_root, name)
        return await self.start_from(runbook, project_root, namespace, name)

    async def start_from(
        self, runbook: Runbook, project_root: Path, namespace: str, name: str
    ) -> bool:
        """:meth:`start` with the runbook already loaded."""
        key = scoped_key(namespace, name)
        record = self.ctx.state.crons.get(key)
        if record is not None and record.status == CronStatus.RUNNING:
            return True
        cron = cron_definition(runbook, name)
        schedule = schedule_of(cron)
        now = self.ctx.clock.now_ms()
        first = next_after(schedule, self.zone(cron), now, now)
        events = self.ctx.runbooks.load_events(runbook)
        events += [
            ev.CronStarted(
                cron_name=name,
                namespace=namespace,
                project_root=str(project_root),
                runbook_hash=self.ctx.runbooks.digest(runbook),
                schedule=schedule.describe(),
                at_ms=now,
            ),
            ev.TimerSet(id=cron_id(namespace, name), due_at_ms=first),
        ]
        await self.ctx.commit(*events)
        log.info("cron %s started; first fire at %s", key, iso(first, self.zone(cron)))
        return False

    async def stop(self, namespace: str, name: str | None) -> list[str]:
        """Stop one cron (``name``) or every running cron of ``namespace``; cancels nothing.

        Raises:
            NotFoundError: ``name`` is not a cron this daemon knows in ``namespace``.
        """
        crons = self.ctx.state.crons
        if name is not None:
            record = crons.get(scoped_key(namespace, name))
            if record is None:
                raise NotFoundError(f"unknown cron: {name}")
            targets = [record] if record.status == CronStatus.RUNNING else []
        else:
            targets = [
                c
                for c in crons.values()
                if c.namespace == namespace and c.status == CronStatus.RUNNING
            ]
        events: list[ev.EventBase] = []
        for c in targets:
            events.append(ev.CronStopped(cron_name=c.name, namespace=c.namespace))
            events.append(ev.TimerCancelled(id=cron_id(c.namespace, c.name)))
        if events:
            await self.ctx.commit(*events)
            for c in targets:
                log.info("cron %s stopped", scoped_key(c.namespace, c.name))
        return [c.name for c in targets]

    async def once(self, project_root: Path, namespace: str, name: str) -> str:
        """Fire cron ``name`` now, whatever its status, from the project's runbook as it is on
        disk; returns the pipeline id. Its schedule and phase are untouched.

        Raises:
            NotFoundError / RunbookError: no valid runbook defines the cron, or its pipeline.
            OjError: ``concurrency`` runs of the cron are already active.
        """
        runbook, _ = await self.ctx.runbooks.find_cron(project_root, name)
        return await self.once_from(runbook, project_root, namespace, name)

    async def once_from(
        self, runbook: Runbook, project_root: Path, namespace: str, name: str
    ) -> str:
        """:meth:`once` with the runbook already loaded."""
        cron = cron_definition(runbook, name)
        record = self.ctx.state.crons.get(scoped_key(namespace, name))
        active = self.active_runs(record)
        if len(active) >= cron.concurrency:
            raise OjError(
                f"cron '{name}' has {len(active)} run(s) active (concurrency "
                f"{cron.concurrency}); not fired"
            )
        events = self.ctx.runbooks.load_events(runbook)
        digest = self.ctx.runbooks.digest(runbook)
        schedule = schedule_of(cron)
        # The fire runs from the runbook on disk; a record (if any) keeps its own for schedules.
        target = Cron(
            name=name,
            namespace=namespace,
            project_root=str(project_root),
            runbook_hash=digest,
            schedule=record.schedule if record is not None else schedule.describe(),
        )
        fire = Fire(self.ctx.clock.now_ms(), manual=True)
        pipeline_id = await self._fire(target, runbook, cron, self.zone(cron), fire, events)
        if pipeline_id is None:
            raise OjError(f"cron '{name}' reached its concurrency ({cron.concurrency}); not fired")
        return pipeline_id
