"""The JSONL write-ahead log: the group-commit writer, and the one import for the whole journal.

Files (reference §6.7)::

    $OJ_STATE_DIR/snapshot.json          {version, seq, created_at, crc, state}
    $OJ_STATE_DIR/wal/events.wal         one {"seq": N, "event": {...}, "crc": C} line per event

The journal is three layers, each importing only the ones below it:

* :mod:`oj_trio.snapshot` — crash-safe file replace, ``.bak`` rotation, the snapshot file;
* :mod:`oj_trio.replay` — the WAL line format (CRC per line, atomic multi-event appends) and
  :func:`replay`, which rebuilds the state and repairs what a crash leaves behind (its docstring has
  the recovery rules: a torn tail is cut and kept as ``.bak``, anything else unreadable refuses to
  start);
* this module — :class:`WalWriter`, the asynchronous half: group commit under trio, snapshots and
  compaction between batches.

Callers import everything from here (``wal.replay``, ``wal.write_snapshot``, ``wal.encode_line``, …):
the split is about module size and layering, not a second API.
"""

import contextlib
import functools
import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TypeAlias

import attrs
import trio

from oj_trio.errors import WalError
from oj_trio.events import EventBase, encode_event
from oj_trio.replay import WAL_DIR as WAL_DIR
from oj_trio.replay import WAL_FILE as WAL_FILE
from oj_trio.replay import WAL_TMP as WAL_TMP
from oj_trio.replay import ReplayResult as ReplayResult
from oj_trio.replay import _BadLine as _BadLine
from oj_trio.replay import encode_line as encode_line
from oj_trio.replay import frame_line as frame_line
from oj_trio.replay import parse_line as parse_line
from oj_trio.replay import read_wal as read_wal
from oj_trio.replay import replay as replay
from oj_trio.replay import wal_path as wal_path
from oj_trio.snapshot import MAX_BACKUPS as MAX_BACKUPS
from oj_trio.snapshot import SNAPSHOT_FILE as SNAPSHOT_FILE
from oj_trio.snapshot import SNAPSHOT_TMP as SNAPSHOT_TMP
from oj_trio.snapshot import SNAPSHOT_VERSION as SNAPSHOT_VERSION
from oj_trio.snapshot import atomic_write
from oj_trio.snapshot import backup_files as backup_files
from oj_trio.snapshot import encode_snapshot as encode_snapshot
from oj_trio.snapshot import fsync_dir as fsync_dir
from oj_trio.snapshot import snapshot_path as snapshot_path
from oj_trio.snapshot import write_snapshot as write_snapshot

log = logging.getLogger("oj.wal")


# --- group commit ----------------------------------------------------------------------------------


@attrs.define
class WalStats:
    """Counters for tests and benchmarks (``fsyncs`` ≪ ``appends`` under concurrency)."""

    appends: int = 0
    events: int = 0
    batches: int = 0
    fsyncs: int = 0
    checkpoints: int = 0


@attrs.define(eq=False)
class _Batch:
    """Lines waiting for one write+fsync, and the tasks parked until it is done."""

    lines: list[bytes] = attrs.Factory(list)
    events: list[tuple[int, EventBase]] = attrs.Factory(list)
    waiters: list[trio.lowlevel.Task] = attrs.Factory(list)
    done: bool = False
    error: BaseException | None = None

    def release(self, error: BaseException | None = None) -> None:
        """Record the outcome and wake every waiter (exactly once)."""
        if self.done:
            return
        self.done = True
        self.error = error
        for task in self.waiters:
            trio.lowlevel.reschedule(task)
        self.waiters.clear()


def _refuse_abort(_raise_cancel: object) -> trio.lowlevel.Abort:
    # An append cannot be taken back once its lines are queued, so a cancellation waits for the
    # outcome (a few ms at most) instead of leaving the caller unsure whether the events happened.
    return trio.lowlevel.Abort.FAILED


@attrs.define(eq=False)
class _CheckpointRequest:
    prepare: Callable[[int], Callable[[], object]]
    done: trio.Event = attrs.Factory(trio.Event)
    seq: int = 0
    error: BaseException | None = None


def _always() -> bool:
    return True


#: A batch of several commits is written on the loop while the moving average of a batch's
#: write + fsync is at most this (seconds; ≈ 0.13 ms on this project's machines, milliseconds
#: on a busy disk).
INLINE_SYNC_MAX = 0.0005


def _fdatasync(fd: int) -> None:
    (getattr(os, "fdatasync", None) or os.fsync)(fd)


#: Runs a blocking callable for the writer and returns its result (see ``WalWriter(run_blocking=)``).
RunBlocking: TypeAlias = Callable[[Callable[[], object]], Awaitable[object]]


async def run_inline(fn: Callable[[], object]) -> object:
    """Run blocking file work on the trio thread itself (for tests on a ``MockClock``).

    Without a thread the loop never looks idle while an fsync runs, so an autojump clock cannot jump
    mid-commit. The checkpoint before is shielded, like a worker thread that ignores cancellation.
    """
    await trio.lowlevel.cancel_shielded_checkpoint()
    return fn()


class WalWriter:
    """Group-committing WAL appender for one trio loop.

    ``append`` frames its events under freshly assigned seqs into the open batch and waits; the
    flusher task (:meth:`run`) takes the whole open batch, writes it and fsyncs it in a worker thread
    (on the loop itself when the batch holds a single append, see :meth:`_flush`), calls
    ``on_durable`` with the batch's ``(seq, event)`` pairs (the store applies them there, so the
    apply order is the seq order), then wakes every waiter. Appends made while a batch is being
    fsynced go into the next batch: concurrent appends share one fsync.

    Snapshot + compaction (:meth:`checkpoint`) also run inside the flusher, between batches, so the
    state is serialized at exactly the last durable seq and the WAL can be swapped safely.

    Failure is terminal: a write/fsync error (or an ``on_durable`` error, after which memory and disk
    disagree) is raised as :class:`WalError` to every waiting caller, every later ``append`` raises,
    and :meth:`run` raises — the daemon must not carry on as if the events were durable.

    Args:
        path: the WAL file (created if missing).
        last_seq: highest seq already used (snapshot or WAL); the next append gets ``last_seq + 1``.
        on_durable: called in the flusher task with each durable batch, before its waiters wake.
        batch_window: seconds the flusher lingers after the first append of a batch to collect more
            (0 = only what is already runnable; concurrency alone fills batches while fsync runs).
        sync: ``False`` skips fsync (benchmarks of the no-durability ceiling only).
        fsync: the sync function (tests inject failures); default ``os.fdatasync``.
        run_blocking: how the blocking file work (write + fsync, snapshot, compaction) runs; default
            a worker thread, except the write + fsync of a batch holding a single append, which then
            runs on the trio thread (see :meth:`_flush`). Tests on trio's ``MockClock`` pass
            :func:`run_inline`: an autojump clock jumps to the next deadline whenever every task
            waits, a thread included.
    """

    def __init__(
        self,
        path: Path,
        *,
        last_seq: int,
        on_durable: Callable[[list[tuple[int, EventBase]]], None] | None = None,
        batch_window: float = 0.0,
        sync: bool = True,
        fsync: Callable[[int], None] = _fdatasync,
        run_blocking: RunBlocking = trio.to_thread.run_sync,
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        existed = self.path.exists()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        if not existed:
            fsync_dir(self.path.parent)
        self._next_seq = last_seq + 1
        self.durable_seq = last_seq
        self._on_durable = on_durable
        self._batch_window = batch_window
        self._sync = sync
        self._fsync = fsync
        self._run_blocking = run_blocking
        #: Lone commits write on the loop (see :meth:`_flush`); not when a test injected its own.
        self._inline_lone = run_blocking is trio.to_thread.run_sync
        #: Whether blocking the loop for one write + fsync is acceptable right now (the daemon says
        #: no while shells run: their exits and the next spawns would wait behind the fsync,
        #: which under load takes milliseconds).
        self.inline_ok: Callable[[], bool] = _always
        #: Moving average of a batch's write + fsync (seconds), wherever it ran.
        self._sync_average = 0.0
        self._open = _Batch()
        #: The batch being written and fsynced (None between batches).
        self._inflight: _Batch | None = None
        self._checkpoints: list[_CheckpointRequest] = []
        self._wakeup = trio.Event()
        self._failure: BaseException | None = None
        self._closing = False
        self._running = False
        self._stopped = trio.Event()
        self.stats = WalStats()

    @property
    def running(self) -> bool:
        """The flusher task has been started."""
        return self._running

    @property
    def stopped(self) -> trio.Event:
        """Set once the flusher task has ended (closed or failed)."""
        return self._stopped

    def idle(self) -> bool:
        """Nothing is being written and nothing waits to be: a blocking call on the loop now
        holds up no commit."""
        return self._inflight is None and not self._open.lines

    @property
    def last_seq(self) -> int:
        """Highest seq handed out (may not be durable yet)."""
        return self._next_seq - 1

    def _check_usable(self) -> None:
        if self._failure is not None:
            raise WalError(f"the WAL is not writable after an earlier error: {self._failure}")
        if self._closing or self._stopped.is_set():
            raise WalError("the WAL writer is closed")

    async def append(self, events: Sequence[EventBase]) -> list[int]:
        """Make ``events`` durable (consecutive seqs, in order); return their seqs.

        Returns only once the lines are written and fsynced (and ``on_durable`` has run). Not
        interruptible: once called, the events *will* be written, so a cancellation is deferred until
        the outcome is known instead of leaving the caller unsure whether it happened.

        Raises:
            WalError: the write or fsync failed, or the writer failed/closed earlier.
        """
        self._check_usable()
        encoded = [encode_event(e) for e in events]  # before taking seqs: a bad event burns none
        if not encoded:
            return []
        batch = self._open
        first = self._next_seq
        last = len(encoded) - 1
        for i, (event, data) in enumerate(zip(events, encoded, strict=True)):
            batch.lines.append(frame_line(first + i, data, more=i < last))
            batch.events.append((first + i, event))
        self._next_seq = first + len(encoded)
        self.stats.appends += 1
        self._wakeup.set()
        # Park uninterruptibly (cheaper than a shielded CancelScope + Event on this hot path); the
        # flusher (or _fail) always releases the batch.
        batch.waiters.append(trio.lowlevel.current_task())
        await trio.lowlevel.wait_task_rescheduled(_refuse_abort)
        if batch.error is not None:
            raise WalError(f"WAL append failed: {batch.error}") from batch.error
        return list(range(first, first + len(encoded)))

    async def checkpoint(self, prepare: Callable[[int], Callable[[], object]]) -> int:
        """Run a snapshot between batches, then compact the WAL to the entries after it.

        ``prepare(seq)`` runs in the flusher task when every batch up to ``seq`` is durable and has
        been through ``on_durable`` (so in-memory state is exactly at ``seq``) and nothing else is being
        written; it returns blocking work (write the snapshot) that runs in a worker thread. After
        that work succeeds, the WAL (holding nothing after ``seq``) is replaced by an empty one.
        Appends made meanwhile wait for the next batch. Returns ``seq``.
        """
        self._check_usable()
        req = _CheckpointRequest(prepare)
        self._checkpoints.append(req)
        self._wakeup.set()
        with trio.CancelScope(shield=True):
            await req.done.wait()
        if req.error is not None:
            raise req.error
        return req.seq

    async def aclose(self) -> None:
        """Flush what is pending, stop the flusher, close the file."""
        if not self._running:
            self._close_fd()
            self._stopped.set()
            return
        self._closing = True
        self._wakeup.set()
        await self._stopped.wait()

    def _close_fd(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The flusher task. Returns after :meth:`aclose`; raises WalError if the WAL failed."""
        if self._running:
            raise RuntimeError("WalWriter.run() is already running")
        self._running = True
        task_status.started()
        try:
            while True:
                if not self._open.lines and not self._checkpoints:
                    if self._closing:
                        return
                    await self._wakeup.wait()
                    self._wakeup = trio.Event()
                    continue
                if self._open.lines:
                    if self._batch_window > 0:
                        await trio.sleep(self._batch_window)
                    batch, self._open = self._open, _Batch()
                    self._inflight = batch
                    await self._flush(batch)
                    self._inflight = None
                if self._checkpoints:
                    await self._run_checkpoints()
        except BaseException as exc:
            self._fail(exc)
            if isinstance(exc, WalError | trio.Cancelled | KeyboardInterrupt):
                raise
            raise WalError(f"WAL writer failed: {exc!r}") from exc
        finally:
            if self._failure is None:
                self._fail(WalError("the WAL writer stopped"))
                self._failure = None
            self._close_fd()
            self._stopped.set()

    async def _flush(self, batch: _Batch) -> None:
        data = b"".join(batch.lines)
        write = functools.partial(self._write_sync, data)
        try:
            if (
                self._inline_lone
                and self.inline_ok()
                and (
                    len(batch.waiters) == 1
                    or (
                        self._sync_average <= INLINE_SYNC_MAX
                        and trio.lowlevel.current_statistics().tasks_runnable == 0
                    )
                )
            ):
                # A lone commit (one request, one pipeline step) is on its caller's critical
                # path, and the two thread hand-offs around it cost ≈ 0.1 ms on an idle machine
                # and milliseconds on a busy one (each waits for a core), more than the fsync
                # (bench/HISTORY.md, "Step latency"). Doing it here holds up other work for one
                # fsync at most. A batch of several commits is written here too while fsyncs are
                # quick (their moving average) and no other task is ready to run: its callers
                # all wait for it, and the hand-offs cost them more than the loop loses (32
                # appenders: ≈ +15 % commits/s). Otherwise (a slow disk, or requests to parse
                # meanwhile: 32 clients pushing lost 15 % this way) the batch goes to the thread,
                # and the loop fills the next batch meanwhile.
                write()
            else:
                await self._run_blocking(write)
        except BaseException as exc:
            batch.release(exc)
            log.error("WAL write failed, refusing further appends: %r", exc)
            raise WalError(f"WAL write/fsync failed: {exc}") from exc
        self.stats.batches += 1
        self.stats.events += len(batch.events)
        if self._sync:
            self.stats.fsyncs += 1
        self.durable_seq = batch.events[-1][0]
        if self._on_durable is not None:
            try:
                self._on_durable(batch.events)
            except BaseException as exc:
                batch.release(exc)
                log.exception("applying durable events failed; memory and WAL now disagree")
                raise WalError(f"applying durable events failed: {exc!r}") from exc
        batch.release()

    def _write_sync(self, data: bytes) -> None:
        view = memoryview(data)
        start = os.lseek(self._fd, 0, os.SEEK_END)
        began = time.monotonic()
        try:
            while view:
                n = os.write(self._fd, view)
                view = view[n:]
            if self._sync:
                self._fsync(self._fd)
            # A plain float update: harmless if a thread and the loop ever raced on it.
            self._sync_average += 0.2 * (time.monotonic() - began - self._sync_average)
        except BaseException:
            # best effort: do not leave a half batch for the next one to append after
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, start)
            raise

    async def _run_checkpoints(self) -> None:
        requests, self._checkpoints = self._checkpoints, []
        for req in requests:
            seq = self.durable_seq
            try:
                work = req.prepare(seq)
                await self._run_blocking(work)
            except Exception as exc:  # the snapshot failed; the WAL is intact, carry on
                log.error("snapshot at seq %d failed: %r", seq, exc)
                req.error = exc
                req.done.set()
                continue
            try:
                await self._run_blocking(self._compact_sync)
            except BaseException as exc:
                req.error = exc
                req.done.set()
                raise WalError(f"WAL compaction failed: {exc}") from exc
            self.stats.checkpoints += 1
            req.seq = seq
            req.done.set()

    def _compact_sync(self) -> None:
        """Replace the WAL by an empty one: every entry it holds is ≤ the snapshot's seq."""
        atomic_write(self.path, self.path.parent / WAL_TMP, lambda f: None)
        new_fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        old, self._fd = self._fd, new_fd
        os.close(old)

    def _fail(self, exc: BaseException) -> None:
        """Mark the writer failed and release every waiter with the error."""
        self._failure = exc
        pending = [self._open] if self._inflight is None else [self._inflight, self._open]
        self._open = _Batch()
        self._inflight = None
        for batch in pending:
            batch.release(exc)
        for req in self._checkpoints:
            req.error = WalError(f"WAL writer stopped: {exc}")
            req.done.set()
        self._checkpoints = []
