"""Group commit under trio and the Store: durable-then-applied, exactly once, snapshots while appending."""

import errno
from collections.abc import Callable
from pathlib import Path

import pytest
import trio
import trio.lowlevel

from oj_trio import events as ev
from oj_trio import wal
from oj_trio.errors import WalError
from oj_trio.state import MaterializedState, QueueItemStatus
from oj_trio.store import Store


def push(i: int | str) -> ev.QueuePushed:
    return ev.QueuePushed(queue_name="q", item_id=f"item-{i}", pushed_at_epoch_ms=1)


async def test_100_concurrent_appenders_share_fsyncs(tmp_path: Path) -> None:
    path = wal.wal_path(tmp_path)
    writer = wal.WalWriter(path, last_seq=0)
    acked: dict[str, int] = {}

    async def appender(n: int) -> None:
        for round_ in range(5):
            (seq,) = await writer.append([push(f"{n}-{round_}")])
            acked[f"item-{n}-{round_}"] = seq

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            await nursery.start(writer.run)
            async with trio.open_nursery() as inner:
                for n in range(100):
                    inner.start_soon(appender, n)
            await writer.aclose()

    assert len(acked) == 500
    assert sorted(acked.values()) == list(range(1, 501))  # unique, no gaps
    on_disk = wal.read_wal(path)
    assert [s for s, _ in on_disk] == list(range(1, 501))  # file order == seq order
    assert {e.item_id: s for s, e in on_disk} == acked
    assert writer.stats.appends == 500
    assert writer.stats.fsyncs == writer.stats.batches
    assert writer.stats.fsyncs <= 500 // 10, writer.stats


async def test_multi_event_append_gets_consecutive_seqs(tmp_path: Path) -> None:
    writer = wal.WalWriter(wal.wal_path(tmp_path), last_seq=41)
    async with trio.open_nursery() as nursery:
        await nursery.start(writer.run)
        assert await writer.append([push(1), push(2), push(3)]) == [42, 43, 44]
        assert await writer.append([]) == []
        await writer.aclose()
    assert [s for s, _ in wal.read_wal(writer.path)] == [42, 43, 44]


async def test_fsync_error_reaches_every_waiter_and_refuses_further_appends(tmp_path: Path) -> None:
    calls = 0

    def failing_fsync(fd: int) -> None:
        nonlocal calls
        calls += 1
        if calls >= 2:
            raise OSError(errno.EIO, "Input/output error")

    writer = wal.WalWriter(wal.wal_path(tmp_path), last_seq=0, fsync=failing_fsync)
    errors: list[BaseException] = []

    async def appender(i: int) -> None:
        try:
            await writer.append([push(i)])
        except WalError as exc:
            errors.append(exc)

    run_errors: list[BaseException] = []

    async def run_writer(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            await writer.run(task_status=task_status)
        except WalError as exc:
            run_errors.append(exc)

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(run_writer)
            await writer.append([push(0)])  # first fsync works
            async with trio.open_nursery() as inner:
                for i in range(1, 20):
                    inner.start_soon(appender, i)
    assert len(errors) == 19
    assert all("Input/output error" in str(e) for e in errors)
    assert len(run_errors) == 1 and "Input/output error" in str(run_errors[0])
    with pytest.raises(WalError, match="not writable after an earlier error"):
        await writer.append([push(99)])
    # the failed batch was rolled back: only the acknowledged line is on disk
    assert [e.item_id for _, e in wal.read_wal(writer.path)] == ["item-0"]


async def test_commit_is_durable_and_applied_exactly_once(tmp_path: Path) -> None:
    store, warnings = Store.open(tmp_path)
    assert warnings == []
    q = {"queue_name": "q", "item_id": "item-1", "namespace": ""}
    async with trio.open_nursery() as nursery:
        await nursery.start(store.run)
        seq = await store.commit(push(1), ev.QueueTaken(worker_name="w", **q))
        assert seq == 2 == store.last_seq
        assert store.state.queue("q")["item-1"].status == QueueItemStatus.ACTIVE
        await store.commit(ev.QueueFailed(**q))
        assert store.state.queue("q")["item-1"].failure_count == 1
        # durable before commit returned: an independent replay sees it
        assert wal.replay(tmp_path).state == store.state
        assert await store.commit() == 3
        await store.aclose()
    again, _ = Store.open(tmp_path)
    assert again.state == store.state
    assert again.state.queue("q")["item-1"].failure_count == 1
    assert again.last_seq == 3


async def test_wait_for_change(tmp_path: Path) -> None:
    store, _ = Store.open(tmp_path)
    seen: list[int] = []

    async def waiter() -> None:
        seen.append(await store.wait_for_change(0))

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(store.run)
            nursery.start_soon(waiter)
            await trio.testing.wait_all_tasks_blocked()
            assert seen == []
            await store.commit(push(1))
            while not seen:
                await trio.lowlevel.checkpoint()
            assert seen == [1]
            assert await store.wait_for_change(0) == 1  # already past: immediate
            await store.aclose()


async def test_snapshots_and_compaction_while_appending(tmp_path: Path) -> None:
    store, _ = Store.open(tmp_path, snapshot_every=50, snapshot_interval=0)

    async def appender(n: int) -> None:
        for i in range(40):
            await store.commit(push(f"{n}-{i}"))

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            await nursery.start(store.run)
            async with trio.open_nursery() as inner:
                for n in range(10):
                    inner.start_soon(appender, n)
                inner.start_soon(store.snapshot)
            assert store.writer.stats.checkpoints >= 1
            await store.commit(push("last"))
            expected = MaterializedState.from_json(store.state.to_json())
            # crash-like reopen (no aclose): snapshot + compacted WAL tail reproduce the state
            r = wal.replay(tmp_path)
            assert r.snapshot_seq > 0 and r.last_seq == 401
            assert r.state == expected
            await store.aclose()
    assert store.snapshot_seq == 401
    assert wal.wal_path(tmp_path).read_bytes() == b""  # compacted by the final snapshot
    again, warnings = Store.open(tmp_path)
    assert (again.last_seq, warnings) == (401, [])
    assert again.state == expected


async def test_seq_continues_after_compaction_and_restart(tmp_path: Path) -> None:
    for round_ in range(3):
        store, _ = Store.open(tmp_path)
        async with trio.open_nursery() as nursery:
            await nursery.start(store.run)
            assert await store.commit(push(round_)) == round_ + 1
            await store.aclose()  # final snapshot compacts the WAL to empty
        assert wal.wal_path(tmp_path).read_bytes() == b""
    assert list(Store.open(tmp_path)[0].state.queue("q")) == ["item-0", "item-1", "item-2"]


async def test_closed_store_refuses_commits(tmp_path: Path) -> None:
    store, _ = Store.open(tmp_path)
    async with trio.open_nursery() as nursery:
        await nursery.start(store.run)
        await store.aclose()
    with pytest.raises(WalError, match="closed"):
        await store.commit(push(1))


async def test_periodic_snapshot_after_n_events(tmp_path: Path) -> None:
    store, _ = Store.open(tmp_path, snapshot_every=10, snapshot_interval=3600)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(store.run)
            for i in range(25):
                await store.commit(push(i))
            while store.snapshot_seq < 10:  # noqa: ASYNC110 - poll (fail_after is the deadline)
                await trio.sleep(0.01)
            assert wal.replay(tmp_path).snapshot_seq >= 10
            await store.aclose()


class Gate:
    """A ``run_blocking`` that holds every write until opened: "appended but not yet durable"."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.open = trio.Event()
        self.error = error

    async def __call__(self, fn: Callable[[], object]) -> object:
        await self.open.wait()
        if self.error is not None:
            raise self.error
        return fn()


async def test_a_watch_wakes_only_for_its_event_types(tmp_path: Path) -> None:
    store, _ = Store.open(tmp_path)
    watch = store.watch(ev.TimerSet, ev.TimerCancelled)
    woken: list[int] = []

    async def watcher() -> None:
        seen = watch.version
        await watch.wait_past(seen)
        woken.append(store.last_seq)

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(store.run)
            nursery.start_soon(watcher)
            await trio.testing.wait_all_tasks_blocked()
            await store.commit(push(1))  # a queue event: the watcher sleeps on
            await store.commit(push(2))
            await trio.testing.wait_all_tasks_blocked()
            assert (woken, watch.version) == ([], 0)
            await store.commit(push(3), ev.TimerSet(id="cooldown:p:idle:0", due_at_ms=5))
            await trio.testing.wait_all_tasks_blocked()
            assert (woken, watch.version) == ([4], 1)
            await watch.wait_past(0)  # already past: immediate
            await store.aclose()


async def test_acknowledge_waits_for_this_tasks_commits_only(tmp_path: Path) -> None:
    """The server's barrier before a reply: what *this* request committed, nothing else."""
    gate = Gate()
    store, _ = Store.open(tmp_path, run_blocking=gate)
    acknowledged: list[str] = []

    async def request_that_committed() -> None:
        await store.commit(push(1))
        await store.acknowledge()
        acknowledged.append("committed")

    async def request_that_committed_nothing() -> None:
        await store.acknowledge()
        acknowledged.append("nothing")

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(store.run)
            nursery.start_soon(request_that_committed)
            await trio.testing.wait_all_tasks_blocked()
            assert store.writer.last_seq == 1 and store.last_seq == 0  # held by the gate
            # another request's barrier does not wait for a batch that is not its own
            nursery.start_soon(request_that_committed_nothing)
            await trio.testing.wait_all_tasks_blocked()
            assert acknowledged == ["nothing"]
            gate.open.set()
            await trio.testing.wait_all_tasks_blocked()
            assert acknowledged == ["nothing", "committed"]
            await store.aclose()
