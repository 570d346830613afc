"""The daemon's single way in for state changes: commit events durably, then apply them exactly once.

::

    store, warnings = Store.open(state_dir)        # sync: snapshot + WAL replay + repairs
    for w in warnings: log.warning(w)
    async with trio.open_nursery() as nursery:
        await nursery.start(store.run)             # flusher + periodic snapshots
        seq = await store.commit(QueuePushed(...))  # returns once durable *and* applied
        ...
        await store.aclose()                       # flush, final snapshot, close

``commit`` returns only after its events are fsynced; they are applied to :attr:`Store.state` in the
flusher right after the fsync and before any waiter wakes, so the apply order is the seq order and
each event is applied exactly once per process. Readers use :attr:`Store.state` directly (trio is
single-threaded: no locks) and :meth:`Store.wait_for_change` to long-poll. A service that cares
about a few kinds of event only (the timer service: ``timer:*``) holds a :class:`Watch` instead,
so it is not woken by every commit of every pipeline. :meth:`Store.acknowledge` is the server's
barrier before answering a request that changed state: everything that request committed is
durable and applied.
"""

import logging
import math
from collections.abc import Callable
from contextvars import ContextVar
from pathlib import Path

import trio

from oj_trio import wal
from oj_trio.errors import WalError
from oj_trio.events import EventBase
from oj_trio.state import MaterializedState

log = logging.getLogger("oj.store")

#: The seq of the newest commit made in the current context. Every request is served in a task of
#: its own (so a context of its own): :meth:`Store.acknowledge` waits for exactly what the request
#: itself committed, not for other requests' batches in flight.
_COMMITTED: ContextVar[int] = ContextVar("oj_committed_seq", default=0)


class Watch:
    """Wakes its holder after applied batches that hold one of ``types`` (see :meth:`Store.watch`).

    ``version`` counts such batches; read it, look at the state, then :meth:`wait_past` that
    version: a batch applied in between is never missed.
    """

    def __init__(self, types: frozenset[type[EventBase]]) -> None:
        self.types = types
        self.version = 0
        self._event = trio.Event()

    def _notify(self) -> None:
        self.version += 1
        self._event.set()
        self._event = trio.Event()

    async def wait_past(self, version: int) -> None:
        """Return once :attr:`version` is past ``version`` (at once if it already is)."""
        while self.version <= version:
            await self._event.wait()


class Store:
    """Owns the :class:`~oj_trio.wal.WalWriter` and the :class:`MaterializedState`.

    Build it with :meth:`open`. Snapshots are taken every ``snapshot_interval`` seconds when something
    changed, as soon as ``snapshot_every`` events accumulated, and at :meth:`aclose`. ``run_blocking``
    is passed to the :class:`~oj_trio.wal.WalWriter` (tests on a ``MockClock`` use
    :func:`oj_trio.wal.run_inline`).
    """

    def __init__(
        self,
        state_dir: Path,
        replayed: wal.ReplayResult,
        *,
        sync: bool = True,
        batch_window: float = 0.0,
        snapshot_interval: float = 60.0,
        snapshot_every: int = 100_000,
        run_blocking: wal.RunBlocking = trio.to_thread.run_sync,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.state: MaterializedState = replayed.state
        #: Highest seq that is durable and applied to :attr:`state`.
        self.last_seq: int = replayed.last_seq
        #: Seq covered by the newest snapshot on disk.
        self.snapshot_seq: int = replayed.snapshot_seq
        self.snapshot_interval = snapshot_interval
        self.snapshot_every = snapshot_every
        self.writer = wal.WalWriter(
            wal.wal_path(self.state_dir),
            last_seq=replayed.last_seq,
            on_durable=self._on_durable,
            batch_window=batch_window,
            sync=sync,
            run_blocking=run_blocking,
        )
        self._changed = trio.Event()
        self._watches: list[Watch] = []
        self._snapshot_due = trio.Event()
        self._closed = False

    @classmethod
    def open(cls, state_dir: Path, **options: object) -> tuple["Store", list[str]]:
        """Replay ``state_dir`` (blocking) and return the store plus repair warnings to log.

        Raises:
            CorruptStateError / WalError: see :func:`oj_trio.wal.replay`.
        """
        state_dir = Path(state_dir)
        (state_dir / wal.WAL_DIR).mkdir(parents=True, exist_ok=True, mode=0o700)
        replayed = wal.replay(state_dir)
        log.info(
            "replayed state: snapshot seq %d + %d WAL events, last seq %d",
            replayed.snapshot_seq,
            replayed.replayed,
            replayed.last_seq,
        )
        return cls(state_dir, replayed, **options), replayed.warnings  # type: ignore[arg-type]

    # --- writing ---------------------------------------------------------------------------------

    async def commit(self, *events: EventBase) -> int:
        """Append ``events`` (one batch, consecutive seqs), wait until durable and applied.

        Returns the last event's seq (the current seq when called with no events). Not interruptible
        once started (see :meth:`WalWriter.append`).

        Raises:
            WalError: the WAL could not be written; the events are not applied.
        """
        if not events:
            return self.last_seq
        seqs = await self.writer.append(events)
        if seqs[-1] > _COMMITTED.get():
            _COMMITTED.set(seqs[-1])
        return seqs[-1]

    async def acknowledge(self) -> None:
        """Barrier before answering a request that changed state: return once every commit made
        in this task's context is durable and applied (at once, without a checkpoint, when it
        already is, which is the rule since :meth:`commit` waits for durability)."""
        await self.wait_applied(_COMMITTED.get())

    def _on_durable(self, batch: list[tuple[int, EventBase]]) -> None:
        apply = self.state.apply
        for seq, event in batch:
            apply(event)
            self.last_seq = seq
        self._changed.set()
        self._changed = trio.Event()
        if self._watches:
            kinds = {type(event) for _, event in batch}
            for watch in self._watches:
                if not watch.types.isdisjoint(kinds):
                    watch._notify()
        if self.last_seq - self.snapshot_seq >= self.snapshot_every:
            self._snapshot_due.set()

    # --- waiting ---------------------------------------------------------------------------------

    @property
    def changed(self) -> trio.Event:
        """An event set (and replaced) after the next applied batch. Grab it, check, then wait."""
        return self._changed

    def watch(self, *types: type[EventBase]) -> Watch:
        """A :class:`Watch` on batches holding events of ``types``, for as long as the store lives
        (meant for long-lived services: one per service, created once)."""
        watch = Watch(frozenset(types))
        self._watches.append(watch)
        return watch

    async def wait_applied(self, seq: int) -> None:
        """Return once the event ``seq`` is durable and applied (at once if it already is)."""
        while self.last_seq < seq:
            await self._changed.wait()

    async def wait_for_change(self, after_seq: int) -> int:
        """Wait until state moved past ``after_seq``; return the new :attr:`last_seq`."""
        while self.last_seq <= after_seq:
            await self._changed.wait()
        return self.last_seq

    async def wait_past(self, after_seq: int, timeout: float) -> None:
        """A long poll's wait: until state moved past ``after_seq`` or ``timeout`` seconds
        passed; at once when ``after_seq`` is 0 (a first request) or ``timeout`` is not > 0."""
        if after_seq and self.last_seq <= after_seq and timeout > 0:
            with trio.move_on_after(timeout):
                await self.wait_for_change(after_seq)

    # --- snapshots -------------------------------------------------------------------------------

    async def snapshot(self) -> int:
        """Write a snapshot at the current durable seq and compact the WAL; return that seq."""

        def prepare(seq: int) -> Callable[[], object]:
            data = self.state.to_dict()  # on the loop: state is exactly at `seq` here
            return lambda: wal.write_snapshot(self.state_dir, seq, data)

        seq = await self.writer.checkpoint(prepare)
        self.snapshot_seq = seq
        self._snapshot_due = trio.Event()
        log.info("snapshot written at seq %d; WAL compacted", seq)
        return seq

    async def _snapshot_loop(self) -> None:
        interval = self.snapshot_interval if self.snapshot_interval > 0 else math.inf
        while True:
            with trio.move_on_after(interval):
                await self._snapshot_due.wait()
            if self.last_seq > self.snapshot_seq:
                try:
                    await self.snapshot()
                except WalError:
                    raise
                except Exception:  # a failed snapshot leaves the WAL intact; try again later
                    log.exception("periodic snapshot failed")
                    self._snapshot_due = trio.Event()

    # --- lifecycle -------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the WAL flusher and the periodic snapshots until :meth:`aclose` (or a WAL failure)."""
        async with trio.open_nursery() as nursery:
            await nursery.start(self.writer.run)
            nursery.start_soon(self._snapshot_loop)
            task_status.started()
            await self.writer.stopped.wait()
            nursery.cancel_scope.cancel()

    async def aclose(self) -> None:
        """Flush pending appends, write a final snapshot (if anything changed) and close the WAL."""
        if self._closed:
            return
        self._closed = True
        if self.writer.running and self.last_seq > self.snapshot_seq:
            try:
                await self.snapshot()
            except Exception:
                log.exception("final snapshot failed; the WAL still holds everything")
        await self.writer.aclose()
