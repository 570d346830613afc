"""Where the WAL writes a batch (WalWriter._flush): on the event loop while fsyncs are quick —
a lone commit always, several commits too — and in a worker thread while they are slow."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import trio

from oj_trio import events as ev
from oj_trio import wal


def push(i: int) -> ev.QueuePushed:
    return ev.QueuePushed(queue_name="q", item_id=f"item-{i}", pushed_at_epoch_ms=1)


async def batches_by_thread(tmp_path: Path, fsync_seconds: float) -> list[tuple[int, bool]]:
    """Append rounds of 8 concurrent commits, then a lone one; (commits in the batch, written on
    the loop) for every batch written."""
    loop_thread = threading.get_ident()
    batches: list[tuple[int, bool]] = []

    def fsync(fd: int) -> None:
        time.sleep(fsync_seconds)  # a disk this slow (sleep: the point is the duration)

    writer = wal.WalWriter(wal.wal_path(tmp_path), last_seq=0, fsync=fsync)
    write = writer._write_sync

    def recording(data: bytes) -> None:
        batches.append((data.count(b"\n"), threading.get_ident() == loop_thread))
        write(data)

    writer._write_sync = recording  # type: ignore[method-assign]
    async with trio.open_nursery() as nursery:
        await nursery.start(writer.run)
        for round_ in range(6):
            async with trio.open_nursery() as appenders:
                for i in range(8):
                    appenders.start_soon(writer.append, [push(round_ * 8 + i)])
        await writer.append([push(999)])  # and a lone one
        await writer.aclose()
    return batches


async def test_batches_are_written_on_the_loop_while_fsyncs_are_quick(tmp_path: Path) -> None:
    batches = await batches_by_thread(tmp_path, 0.0)
    several = [on_loop for size, on_loop in batches if size > 1]
    assert several and all(several), batches


async def test_batches_go_to_a_thread_while_fsyncs_are_slow(tmp_path: Path) -> None:
    batches = await batches_by_thread(tmp_path, 0.003)
    # Once the average has seen the slow disk (the first batch), batches of several go to a
    # thread; a lone commit is still written on the loop.
    several = [on_loop for size, on_loop in batches[1:] if size > 1]
    assert several and not any(several), batches
    assert batches[-1] == (1, True), batches
