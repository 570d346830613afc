"""Durable timers: one task sleeps until the earliest deadline in the state, records that the timer
fired, and hands it to the handler registered for its kind.

Why one service over durable state instead of ``trio.sleep`` in the code that needs a delay: a
cooldown, a queue retry or a cron run must survive a restart, and a sleeping task does not. Armed
timers live in ``MaterializedState.timers`` (``timer:set``/``timer:cancelled``, :mod:`oj_trio.timers`
for the ids), so after a restart the service simply finds them again: one that fell due while the
daemon was down fires right after start, any other at its *original* deadline, never a fresh full
period. No business logic sleeps on its own (house review P3).

The loop: find the earliest timer; if it is due, commit ``timer:start {id}`` for every due timer in
one commit (due time, then id order), then route each by its kind (the id's prefix) to the handler
registered for it; otherwise sleep until that deadline or until the timer table changes
(a :meth:`Store.watch` on ``timer:*`` events: a new, re-armed or cancelled timer), whichever comes
first.

Delivery is **at most once**: ``timer:start`` is durable before the handler runs, so a crash in
between loses that firing rather than repeating its side effects (SPEC §3: never re-run handled
events). A service that must not lose one reconciles at boot from its own state (e.g. a ``failed``
queue item with no ``queue-retry`` timer armed).

Handlers run concurrently in the service's own nursery, so a slow one (a gate command) does not hold
up other timers. A handler's exception is logged and dropped; a timer of a kind with no handler, or
with a malformed id, is logged and dropped (it has fired: it is not retried). A WAL failure ends the
service, as it must end the daemon.

Starting it (the supervisor's job), after :meth:`Store.run` is running::

    service = TimerService(store, clock)
    service.register(timers.QUEUE_RETRY, on_queue_retry)     # async (FiredTimer) -> None
    service.register(timers.COOLDOWN, on_cooldown)
    await nursery.start(service.run)

Register every handler before ``run``: a timer that fires with no handler is dropped.

Deadlines are wall times. A service whose deadline means elapsed time instead (an interval cron:
"an hour after the last fire") registers :meth:`TimerService.on_clock_step`: after a wake that
finds the wall clock stepped, it is awaited with the correction, before any timer is looked at,
and may re-arm its timers. Arm and disarm
timers with :func:`set_timer` / :func:`cancel_timer` (or commit ``TimerSet``/``TimerCancelled`` in the
same commit as the events they belong to).
"""

import logging
import math
from collections.abc import Awaitable, Callable

import attrs
import trio

from oj_trio import timers
from oj_trio.clock import Clock
from oj_trio.errors import WalError
from oj_trio.events import TimerCancelled, TimerSet, TimerStart
from oj_trio.store import Store
from oj_trio.timers import TimerIdError, TimerKey

log = logging.getLogger("oj.timers")


@attrs.frozen
class FiredTimer:
    """What a handler receives: the timer, its meaning, and when it was due and fired (epoch ms)."""

    id: str
    key: TimerKey
    due_at_ms: int
    fired_at_ms: int

    @property
    def late_ms(self) -> int:
        """How long after its deadline it fired (large after the daemon was down)."""
        return self.fired_at_ms - self.due_at_ms


#: A timer handler: runs once per firing, in the service's nursery.
TimerHandler = Callable[[FiredTimer], Awaitable[None]]

#: Told how far the wall clock stepped (ms; negative: back), see :meth:`TimerService.on_clock_step`.
ClockStepListener = Callable[[int], Awaitable[None]]


async def set_timer(store: Store, timer_id: str, due_at_ms: int) -> int:
    """Arm (or re-arm) ``timer_id`` to fire at epoch ``due_at_ms``; return the commit's seq.

    Raises:
        TimerIdError: ``timer_id`` is malformed (checked before anything is written).
        WalError: the commit failed.
    """
    timers.parse_timer_id(timer_id)
    return await store.commit(TimerSet(id=timer_id, due_at_ms=due_at_ms))


async def cancel_timer(store: Store, timer_id: str) -> int:
    """Disarm ``timer_id``; return the seq that covers it.

    Writes nothing when the timer is not armed and no commit is in flight (so the table is
    authoritative): cancelling what is not there must not cost an fsync.
    """
    if timer_id not in store.state.timers and store.writer.last_seq == store.last_seq:
        return store.last_seq
    return await store.commit(TimerCancelled(id=timer_id))


class TimerService:
    """The timer task (see module docstring).

    Args:
        store: the store whose ``state.timers`` it serves and through which it commits.
        clock: the time source; a clock that syncs with the wall (:meth:`Clock.system`) is re-synced
            at every wake, and the service wakes at least every ``resync_interval`` seconds (trio's
            monotonic clock does not count a suspend, the wall does); a test clock
            (:meth:`Clock.fixed`) never.
        resync_interval: the longest sleep without a look at the wall clock, in seconds.
    """

    def __init__(self, store: Store, clock: Clock, *, resync_interval: float = 10.0) -> None:
        self.store = store
        self.clock = clock
        self.resync_interval = resync_interval
        self._handlers: dict[str, TimerHandler] = {}
        self._step_listeners: list[ClockStepListener] = []

    def register(self, kind: str, handler: TimerHandler, *, replace: bool = False) -> None:
        """Route fired timers of ``kind`` (an id prefix such as :data:`oj_trio.timers.LIVENESS`);
        ``replace``: take over from the handler a service registered (tests).

        Raises:
            ValueError: ``kind`` is not a timer kind, or already has a handler.
        """
        if kind not in timers.KINDS:
            raise ValueError(
                f"unknown timer kind {kind!r} (known: {', '.join(sorted(timers.KINDS))})"
            )
        if kind in self._handlers and not replace:
            raise ValueError(f"timer kind {kind!r} already has a handler")
        self._handlers[kind] = handler

    def on_clock_step(self, listener: ClockStepListener) -> None:
        """Await ``listener(correction_ms)`` whenever a re-sync finds the wall clock stepped (by at
        least the clock's threshold), before timers are compared with the new time. Its
        exceptions are logged, except a :class:`WalError`, which ends the service."""
        self._step_listeners.append(listener)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve timers until cancelled. Raises WalError if a ``timer:start`` cannot be committed."""
        async with trio.open_nursery() as handlers:
            task_status.started()
            await self._serve(handlers)

    async def _serve(self, handlers: trio.Nursery) -> None:
        store, clock = self.store, self.clock
        # Woken only by batches that touch the timer table, not by every commit of every pipeline.
        watch = store.watch(TimerSet, TimerCancelled, TimerStart)
        while True:
            # Every wake re-reads the wall clock (a cheap call): after an NTP step or a
            # suspend/resume, deadlines are compared with the wall time, not a stale offset.
            if clock.syncs_with_wall:
                drift = clock.resync()
                if drift:
                    log.info("clock re-synced with the wall clock: %+d ms", drift)
                    await self._clock_stepped(drift)
            seen = watch.version
            first = timers.earliest(store.state.timers)
            now = clock.now_ms()
            if first is not None and first[1] <= now:
                fired = timers.due_timers(store.state.timers, now)
                await store.commit(*(TimerStart(id=timer_id) for timer_id, _ in fired))
                for timer_id, due in fired:
                    self._route(handlers, timer_id, due, now)
                continue
            deadline = math.inf if first is None else clock.trio_deadline(first[1])
            if clock.syncs_with_wall:
                # trio's clock stops while the machine sleeps: wake up now and then to notice.
                deadline = min(deadline, trio.current_time() + self.resync_interval)
            with trio.move_on_at(deadline):
                await watch.wait_past(seen)

    async def _clock_stepped(self, drift_ms: int) -> None:
        for listener in self._step_listeners:
            try:
                await listener(drift_ms)
            except WalError:
                raise
            except Exception:
                log.exception("clock step listener %r failed", listener)

    def _route(self, handlers: trio.Nursery, timer_id: str, due_at_ms: int, now_ms: int) -> None:
        kind = timers.kind_of(timer_id)
        handler = self._handlers.get(kind)
        if handler is None:
            log.warning(
                "timer %s fired but no handler is registered for %r; dropped", timer_id, kind
            )
            return
        try:
            key = timers.parse_timer_id(timer_id)
        except TimerIdError as exc:
            log.warning("timer %s fired but its id is malformed (%s); dropped", timer_id, exc)
            return
        fired = FiredTimer(id=timer_id, key=key, due_at_ms=due_at_ms, fired_at_ms=now_ms)
        handlers.start_soon(self._call, handler, fired, name=f"timer {timer_id}")

    @staticmethod
    async def _call(handler: TimerHandler, fired: FiredTimer) -> None:
        try:
            await handler(fired)
        except Exception:
            log.exception("handler for timer %s failed", fired.id)
