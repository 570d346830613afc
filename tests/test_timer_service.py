"""The clock seam and the durable timer service, on trio's autojump clock with a real Store.

Every wait here is virtual: minutes pass in milliseconds, and every assertion about *when* something
happened compares trio time or epoch milliseconds exactly. The store runs its file work inline
(``wal.run_inline``): with a worker thread the autojump clock would jump to the next deadline while
an fsync runs.
"""

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio
import trio.testing

from oj_trio import timers, wal
from oj_trio.clock import RESYNC_THRESHOLD_MS, Clock
from oj_trio.events import TimerSet, TimerStart
from oj_trio.runtime.timer_service import (
    FiredTimer,
    TimerHandler,
    TimerService,
    cancel_timer,
    set_timer,
)
from oj_trio.store import Store
from oj_trio.timers import LivenessTimer, QueueRetryTimer, TimerIdError

EPOCH = 1_700_000_000_000
SEC = 1000
MIN = 60 * SEC


class Recorder:
    """A timer handler that records each firing with the trio time it ran at."""

    def __init__(self) -> None:
        self.fired: list[tuple[FiredTimer, float]] = []
        self._changed = trio.Event()

    async def __call__(self, fired: FiredTimer) -> None:
        self.fired.append((fired, trio.current_time()))
        self._changed.set()
        self._changed = trio.Event()

    async def wait_for(self, n: int) -> None:
        while len(self.fired) < n:
            await self._changed.wait()

    @property
    def ids(self) -> list[str]:
        return [f.id for f, _ in self.fired]


@asynccontextmanager
async def running(
    state_dir: Path,
    handlers: dict[str, TimerHandler],
    *,
    clock: Clock | None = None,
    graceful: bool = True,
    snapshot_interval: float = 60.0,
) -> AsyncIterator[tuple[Store, Clock]]:
    """A store + timer service on ``state_dir``; on exit the service stops, then the store closes
    (``graceful``: final snapshot) or is dropped as by a crash (only the WAL remains)."""
    store, warnings = Store.open(
        state_dir, run_blocking=wal.run_inline, snapshot_interval=snapshot_interval
    )
    assert warnings == []
    clock = Clock.fixed(EPOCH) if clock is None else clock
    service = TimerService(store, clock)
    for kind, handler in handlers.items():
        service.register(kind, handler)
    with trio.fail_after(24 * 3600):  # virtual: a hang fails the test instead of stalling it
        async with trio.open_nursery() as outer:
            await outer.start(store.run)
            async with trio.open_nursery() as inner:
                await inner.start(service.run)
                yield store, clock
                inner.cancel_scope.cancel()
            if graceful:
                await store.aclose()
            outer.cancel_scope.cancel()


# --- the clock ---------------------------------------------------------------------------------------


async def test_fixed_clock_is_driven_by_trio_time(autojump_clock: trio.testing.MockClock) -> None:
    clock = Clock.fixed(EPOCH)
    start = trio.current_time()
    assert clock.now_ms() == EPOCH
    assert clock.trio_deadline(EPOCH + 90 * SEC) == pytest.approx(start + 90)
    await clock.sleep_until_ms(EPOCH + 90 * SEC)
    assert trio.current_time() == pytest.approx(start + 90)
    assert clock.now_ms() == EPOCH + 90 * SEC
    await clock.sleep_until_ms(EPOCH)  # already past: returns at once
    assert clock.now_ms() == EPOCH + 90 * SEC
    assert not clock.syncs_with_wall
    assert clock.resync() == 0  # a test clock never reads the wall clock


async def test_system_clock_resyncs_with_the_wall_clock(
    autojump_clock: trio.testing.MockClock,
) -> None:
    wall_skew_ms = 0

    def wall() -> float:  # a wall clock that moves with trio time, plus steps we inject
        return (EPOCH + wall_skew_ms) / 1000 + trio.current_time()

    clock = Clock.system(wall_time=wall)
    assert clock.syncs_with_wall and clock.now_ms() == EPOCH
    await trio.sleep(10)
    assert clock.now_ms() == EPOCH + 10 * SEC
    wall_skew_ms = RESYNC_THRESHOLD_MS - 1  # jitter below the threshold is left alone
    assert clock.resync() == 0
    wall_skew_ms = 3_600_000  # the wall clock stepped forward an hour (NTP, suspend)
    assert clock.now_ms() == EPOCH + 10 * SEC
    assert clock.resync() == 3_600_000
    assert clock.now_ms() == EPOCH + 3_600_000 + 10 * SEC


# --- firing --------------------------------------------------------------------------------------------


async def test_timer_fires_exactly_at_its_deadline(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    rec = Recorder()
    async with running(tmp_path, {timers.LIVENESS: rec}) as (store, clock):
        due = clock.now_ms() + 90 * SEC
        await set_timer(store, timers.liveness_id("p1"), due)
        assert store.state.timers == {"liveness:p1": due}
        await rec.wait_for(1)
        fired, at = rec.fired[0]
        assert at == pytest.approx(clock.trio_deadline(due), abs=1e-9)
        assert fired == FiredTimer(
            id="liveness:p1", key=LivenessTimer("p1"), due_at_ms=due, fired_at_ms=due
        )
        assert fired.late_ms == 0
        assert store.state.timers == {}  # timer:start disarmed it


async def test_cancelled_timer_never_fires(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    rec = Recorder()
    async with running(tmp_path, {timers.LIVENESS: rec}) as (store, clock):
        timer_id = timers.liveness_id("p1")
        await set_timer(store, timer_id, clock.now_ms() + 5 * MIN)
        await trio.sleep(60)
        seq = await cancel_timer(store, timer_id)
        assert store.state.timers == {} and seq == store.last_seq
        await trio.sleep(60 * 60)
        assert rec.fired == []
        # cancelling what is not armed writes nothing
        assert await cancel_timer(store, timer_id) == seq == store.last_seq


async def test_timers_fire_in_deadline_order_then_id_order(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    rec = Recorder()
    handlers: dict[str, TimerHandler] = {timers.LIVENESS: rec, timers.EXIT_DEFERRED: rec}
    # no snapshots, no final one: the WAL keeps every event for the check below
    async with running(tmp_path, handlers, graceful=False, snapshot_interval=0) as (store, clock):
        now = clock.now_ms()
        await set_timer(store, "liveness:late", now + 2 * MIN)
        await set_timer(store, "liveness:b", now + 1 * MIN)
        await set_timer(store, "exit-deferred:a", now + 1 * MIN)
        await rec.wait_for(3)
        # handlers of one due time run concurrently (any order); their timer:start commit is ordered
        assert sorted(rec.ids[:2]) == ["exit-deferred:a", "liveness:b"]
        assert rec.ids[2] == "liveness:late"
        assert [f.fired_at_ms - now for f, _ in rec.fired] == [MIN, MIN, 2 * MIN]
    started = [e.id for _, e in wal.read_wal(wal.wal_path(tmp_path)) if isinstance(e, TimerStart)]
    assert started == ["exit-deferred:a", "liveness:b", "liveness:late"]


async def test_five_minute_timer_takes_five_virtual_minutes_and_milliseconds_of_real_time(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    rec = Recorder()
    real_start = time.perf_counter()
    async with running(tmp_path, {timers.COOLDOWN: rec}) as (store, clock):
        start = trio.current_time()
        await set_timer(store, timers.cooldown_id("p1", "idle", 0), clock.now_ms() + 5 * MIN)
        await rec.wait_for(1)
        assert trio.current_time() - start == pytest.approx(300)
    assert time.perf_counter() - real_start < 2.0  # generous: the machine is shared


async def test_rearming_moves_the_deadline_and_fires_once(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    rec = Recorder()
    async with running(tmp_path, {timers.LIVENESS: rec}) as (store, clock):
        now = clock.now_ms()
        await set_timer(store, "liveness:p", now + MIN)
        await trio.sleep(30)
        await set_timer(store, "liveness:p", now + 2 * MIN)
        await rec.wait_for(1)
        await trio.sleep(10 * 60)
        assert [f.fired_at_ms - now for f, _ in rec.fired] == [2 * MIN]


async def test_overdue_timer_fires_at_once(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    rec = Recorder()
    async with running(tmp_path, {timers.LIVENESS: rec}) as (store, clock):
        start = trio.current_time()
        await set_timer(store, "liveness:p", clock.now_ms() - MIN)
        await rec.wait_for(1)
        assert trio.current_time() == start
        assert rec.fired[0][0].late_ms == MIN


# --- restart -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("graceful", [True, False], ids=["snapshot", "crash-wal-only"])
async def test_timer_armed_before_restart_fires_at_its_original_deadline(
    tmp_path: Path, autojump_clock: trio.testing.MockClock, graceful: bool
) -> None:
    first, second = Recorder(), Recorder()
    timer_id = timers.queue_retry_id("ns", "q", "item-1")
    async with running(tmp_path, {timers.QUEUE_RETRY: first}, graceful=graceful) as (store, clock):
        due = clock.now_ms() + 10 * MIN
        await set_timer(store, timer_id, due)
        await trio.sleep(4 * 60)
        wall_at_stop = clock.now_ms()
    assert first.fired == []

    # a new process: fresh Store.open on the same dir, a new clock continuing the same wall time
    restarted = Clock.fixed(wall_at_stop)
    async with running(tmp_path, {timers.QUEUE_RETRY: second}, clock=restarted) as (store, _):
        assert store.state.timers == {timer_id: due}
        start = trio.current_time()
        await second.wait_for(1)
        assert trio.current_time() - start == pytest.approx(6 * 60)  # the rest, not 10 minutes
        fired = second.fired[0][0]
        assert fired.key == QueueRetryTimer("ns", "q", "item-1")
        assert (fired.due_at_ms, fired.fired_at_ms) == (due, due)


async def test_timer_that_fell_due_while_the_daemon_was_down_fires_right_after_start(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    rec = Recorder()
    async with running(tmp_path, {}) as (store, clock):
        due = clock.now_ms() + 10 * MIN
        await set_timer(store, "liveness:p", due)
        wall_at_stop = clock.now_ms()
    # down for 20 minutes of wall time (a new process's trio clock starts wherever it starts)
    restarted = Clock.fixed(wall_at_stop + 20 * MIN)
    async with running(tmp_path, {timers.LIVENESS: rec}, clock=restarted) as (store, _):
        start = trio.current_time()
        await rec.wait_for(1)
        assert trio.current_time() == start
        assert rec.fired[0][0].late_ms == 10 * MIN
        assert store.state.timers == {}


async def test_wall_clock_step_is_picked_up_at_the_next_wake(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """Cron needs wall time: when the wall clock jumps, deadlines follow it within a resync."""
    skew_ms = 0
    clock = Clock.system(wall_time=lambda: (EPOCH + skew_ms) / 1000 + trio.current_time())
    rec = Recorder()
    async with running(tmp_path, {timers.CRON: rec}, clock=clock) as (store, _):
        start = trio.current_time()
        await set_timer(store, timers.cron_id("ns", "nightly"), EPOCH + 60 * MIN)
        await trio.sleep(90)
        skew_ms = 59 * MIN  # wall time is now past the deadline
        await rec.wait_for(1)
        # at the first wake after the step (the service looks at the wall at least every 10 s)
        assert 90 <= trio.current_time() - start <= 100
        assert rec.fired[0][0].fired_at_ms >= EPOCH + 60 * MIN


# --- routing and failures ------------------------------------------------------------------------------


async def test_failing_handler_is_logged_and_the_service_goes_on(
    tmp_path: Path, autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    rec = Recorder()

    async def boom(fired: FiredTimer) -> None:
        raise RuntimeError(f"handler bug for {fired.id}")

    async with running(tmp_path, {timers.EXIT_DEFERRED: boom, timers.LIVENESS: rec}) as (
        store,
        clock,
    ):
        now = clock.now_ms()
        await set_timer(store, "exit-deferred:p", now + MIN)
        await set_timer(store, "liveness:p", now + 2 * MIN)
        await rec.wait_for(1)
        assert store.state.timers == {}
    failures = [
        r for r in caplog.records if "handler for timer exit-deferred:p failed" in r.message
    ]
    assert len(failures) == 1 and failures[0].exc_info is not None


async def test_unhandled_and_malformed_timers_are_logged_and_dropped(
    tmp_path: Path, autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="oj.timers")
    rec = Recorder()
    async with running(tmp_path, {timers.LIVENESS: rec}) as (store, clock):
        now = clock.now_ms()
        await set_timer(store, timers.cron_id("", "x"), now + MIN)  # no cron handler
        # an id set_timer would refuse, committed directly (e.g. by a newer oj)
        await store.commit(TimerSet(id="liveness:a:b", due_at_ms=now + MIN))
        await store.commit(TimerSet(id="future:thing", due_at_ms=now + MIN))
        await set_timer(store, "liveness:ok", now + 2 * MIN)
        await rec.wait_for(1)
        assert rec.ids == ["liveness:ok"]
        assert store.state.timers == {}  # every one of them fired (timer:start) and is gone
    messages = " | ".join(r.message for r in caplog.records)
    assert "timer cron:x fired but no handler is registered for 'cron'; dropped" in messages
    assert "timer future:thing fired but no handler is registered for 'future'" in messages
    assert "timer liveness:a:b fired but its id is malformed" in messages


async def test_fired_timers_are_recorded_durably(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    rec = Recorder()
    # no snapshots, no final one: the WAL keeps every event
    handlers: dict[str, TimerHandler] = {timers.LIVENESS: rec}
    async with running(tmp_path, handlers, graceful=False, snapshot_interval=0) as (store, clock):
        now = clock.now_ms()
        await set_timer(store, "liveness:a", now + MIN)
        await set_timer(store, "liveness:b", now + MIN)
        await rec.wait_for(2)
    events = [e for _, e in wal.read_wal(wal.wal_path(tmp_path))]
    assert events[2:] == [TimerStart(id="liveness:a"), TimerStart(id="liveness:b")]
    assert wal.replay(tmp_path).state.timers == {}


async def test_set_timer_and_register_refuse_bad_input(tmp_path: Path) -> None:
    store, _ = Store.open(tmp_path)
    service = TimerService(store, Clock.fixed(EPOCH))
    with pytest.raises(TimerIdError):
        await set_timer(store, "liveness:", EPOCH)  # refused before anything is written
    assert store.writer.last_seq == 0
    handler: Callable[[FiredTimer], Awaitable[None]] = Recorder()
    with pytest.raises(ValueError, match="unknown timer kind 'nope'"):
        service.register("nope", handler)
    service.register(timers.LIVENESS, handler)
    with pytest.raises(ValueError, match="already has a handler"):
        service.register(timers.LIVENESS, handler)
    await store.aclose()


async def test_clock_step_listeners_hear_each_step_before_timers_are_compared(
    tmp_path: Path, autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A listener (the cron service's, for interval crons) is told the correction once per step,
    and may re-arm a timer before the new time is compared with it; a failing one is logged."""
    skew_ms = 0
    clock = Clock.system(wall_time=lambda: (EPOCH + skew_ms) / 1000 + trio.current_time())
    store, _ = Store.open(tmp_path, run_blocking=wal.run_inline)
    service = TimerService(store, clock)
    rec = Recorder()
    service.register(timers.CRON, rec)
    heard: list[int] = []
    timer = timers.cron_id("ns", "every-hour")

    async def move_back(drift_ms: int) -> None:
        heard.append(drift_ms)
        await set_timer(store, timer, store.state.timers[timer] + drift_ms)

    async def broken(drift_ms: int) -> None:
        raise RuntimeError("listener bug")

    service.on_clock_step(broken)
    service.on_clock_step(move_back)
    with trio.fail_after(24 * 3600):
        async with trio.open_nursery() as nursery:
            await nursery.start(store.run)
            await nursery.start(service.run)
            await set_timer(store, timer, EPOCH + 60 * MIN)
            await trio.sleep(60)
            skew_ms = -10 * MIN
            await rec.wait_for(1)
            assert heard == [-10 * MIN]
            assert rec.fired[0][0].due_at_ms == EPOCH + 50 * MIN
            assert trio.current_time() == pytest.approx(3600, abs=1)  # elapsed time kept
            nursery.cancel_scope.cancel()
    await store.aclose()
    assert "clock step listener" in caplog.text and "listener bug" in caplog.text
