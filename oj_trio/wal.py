"""The JSONL write-ahead log: line format, replay with corruption repair, snapshots, group commit.

Files (reference §6.7)::

    $OJ_STATE_DIR/snapshot.json          {version, seq, created_at, crc, state}
    $OJ_STATE_DIR/wal/events.wal         one {"seq": N, "event": {...}, "crc": C} line per event

A WAL line is ``{"seq":N,"event":{...},"crc":C}\\n`` where ``C`` is the CRC-32 of every byte before
``,"crc":`` — so a flipped bit in the seq or the event is caught, not just a torn line. Lines without a
``crc`` (hand-written, reference format) are accepted. A line only counts if it ends with ``\\n``:
an ``append`` is acknowledged after its whole line (newline included) is fsynced.

The synchronous half (:func:`replay`, :func:`write_snapshot`) runs before the trio loop starts or in a
worker thread. The asynchronous half is :class:`WalWriter`, the group-commit writer.

Recovery rules (SPEC §3, reference §5.5):

* A torn or corrupt **tail** (the first bad line and everything after it, with no valid entry after
  it — the normal result of a crash mid-write) is cut off; the original file is kept as ``events.bak``
  (rotating ``.bak``, ``.bak.2``, ``.bak.3``) and a warning is returned.
* A bad line **followed by valid entries**, a line whose CRC is valid but whose event cannot be decoded
  (unknown type: a newer oj wrote it), a seq that does not continue the previous one, or history that
  does not reach back to the snapshot: :class:`CorruptStateError`, files untouched. The daemon must not
  start with less state than the WAL holds.
* A corrupt snapshot is moved to ``snapshot.bak`` (same rotation) and the state rebuilt from the WAL,
  which must then start at seq 1; a snapshot with a newer ``version`` is refused (:class:`WalError`).
* Leftover ``snapshot.tmp`` / ``events.tmp`` (a crash during a snapshot or compaction) are removed:
  the rename never happened, so the files they were meant to replace are still authoritative.
"""

import contextlib
import datetime
import logging
import os
import shutil
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
import orjson
import trio

from oj_trio.errors import CorruptStateError, WalError
from oj_trio.events import EventBase, EventDecodeError, encode_event, event_from_dict
from oj_trio.state import MaterializedState

log = logging.getLogger("oj.wal")

#: Snapshot format version this code writes and the newest it reads.
SNAPSHOT_VERSION = 1
SNAPSHOT_FILE = "snapshot.json"
SNAPSHOT_TMP = "snapshot.tmp"
WAL_DIR = "wal"
WAL_FILE = "events.wal"
WAL_TMP = "events.tmp"
MAX_BACKUPS = 3

_CRC_SEP = b',"crc":'


def wal_path(state_dir: Path) -> Path:
    return Path(state_dir) / WAL_DIR / WAL_FILE


def snapshot_path(state_dir: Path) -> Path:
    return Path(state_dir) / SNAPSHOT_FILE


# --- lines -----------------------------------------------------------------------------------------


def frame_line(seq: int, event_json: bytes, *, more: bool = False) -> bytes:
    """One WAL line from an already-encoded event (see :func:`oj_trio.events.encode_event`).

    ``more`` marks every line of a multi-event append but the last, so replay treats the append as
    one unit: a group cut short by a crash is cut off entirely (commits are atomic).
    """
    head = b'{"seq":%d,"event":%b%b' % (seq, event_json, b',"more":true' if more else b"")
    return b'%b,"crc":%d}\n' % (head, zlib.crc32(head))


def encode_line(seq: int, event: EventBase, *, more: bool = False) -> bytes:
    return frame_line(seq, encode_event(event), more=more)


class _BadLine(Exception):
    """A line that is not a complete, intact WAL record (torn, truncated, bit-flipped)."""


def parse_line(line: bytes) -> tuple[int, Any, bool]:
    """Check one line's framing and integrity; return ``(seq, raw event dict, more)``.

    Raises:
        _BadLine: not newline-terminated, not JSON, wrong shape or CRC mismatch.
    """
    if not line.endswith(b"\n"):
        raise _BadLine("incomplete line (no trailing newline)")
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise _BadLine(f"invalid JSON: {exc}") from None
    if type(obj) is not dict:
        raise _BadLine("not a JSON object")
    seq = obj.get("seq")
    if type(seq) is not int or seq < 1 or "event" not in obj:
        raise _BadLine("missing or invalid seq/event")
    more = obj.get("more", False)
    if more is not True and more is not False:
        raise _BadLine("invalid 'more' flag")
    crc = obj.get("crc")
    if crc is not None:
        if len(obj) != 3 + ("more" in obj):
            raise _BadLine("unexpected keys")
        cut = line.rfind(_CRC_SEP)
        if cut < 0 or zlib.crc32(line[:cut]) != crc:
            raise _BadLine("CRC mismatch")
    elif len(obj) != 2 + ("more" in obj):
        raise _BadLine("unexpected keys")
    return seq, obj["event"], more


def read_wal(path: Path) -> list[tuple[int, EventBase]]:
    """Every entry of a WAL file, strictly (any bad line raises). For tools and tests."""
    out = []
    with open(path, "rb") as f:
        for lineno, line in enumerate(f, 1):
            try:
                seq, raw, _more = parse_line(line)
            except _BadLine as exc:
                raise CorruptStateError(f"{path}: line {lineno}: {exc}") from None
            out.append((seq, event_from_dict(raw, seq=seq)))
    return out


# --- small filesystem helpers --------------------------------------------------------------------


def fsync_dir(path: Path) -> None:
    """Make a rename/creation in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _backup_names(path: Path) -> list[Path]:
    """``events.wal`` → events.bak, events.bak.2, events.bak.3 (newest first)."""
    base = path.with_suffix(".bak")
    return [base] + [base.with_name(f"{base.name}.{i}") for i in range(2, MAX_BACKUPS + 1)]


def _make_room_for_backup(path: Path) -> Path:
    """Shift existing backups one place up (dropping the oldest) and return the free ``.bak`` name."""
    names = _backup_names(path)
    names[-1].unlink(missing_ok=True)
    for older, newer in zip(reversed(names[:-1]), reversed(names[1:]), strict=True):
        if older.exists():
            os.replace(older, newer)
    return names[0]


def backup_files(path: Path) -> list[Path]:
    """Existing backups of ``path``, newest first."""
    return [p for p in _backup_names(path) if p.exists()]


def _atomic_write(target: Path, tmp: Path, chunks: Callable[[Any], None]) -> None:
    """tmp file + write + fsync + rename + directory fsync (the crash-safe replace)."""
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb", closefd=False) as f:
            chunks(f)
            f.flush()
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, target)
    fsync_dir(target.parent)


# --- snapshots -------------------------------------------------------------------------------------


def encode_snapshot(seq: int, state_dict: dict[str, Any], created_at: str | None = None) -> bytes:
    """``{"version","seq","created_at","crc","state"}``; ``crc`` covers the state's JSON bytes."""
    if created_at is None:
        created_at = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    body = orjson.dumps(state_dict)
    head = orjson.dumps(
        {"version": SNAPSHOT_VERSION, "seq": seq, "created_at": created_at, "crc": zlib.crc32(body)}
    )
    return head[:-1] + b',"state":' + body + b"}"


def write_snapshot(state_dir: Path, seq: int, state_dict: dict[str, Any]) -> None:
    """Atomically replace ``snapshot.json`` (blocking; run it in a thread under trio)."""
    data = encode_snapshot(seq, state_dict)
    state_dir = Path(state_dir)
    _atomic_write(state_dir / SNAPSHOT_FILE, state_dir / SNAPSHOT_TMP, lambda f: f.write(data))


class _BadSnapshot(Exception):
    pass


def _load_snapshot(path: Path) -> tuple[int, MaterializedState]:
    """Parse ``snapshot.json``. Raises _BadSnapshot if corrupt, WalError if from a newer oj."""
    raw = path.read_bytes()
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise _BadSnapshot(f"invalid JSON: {exc}") from None
    if type(obj) is not dict:
        raise _BadSnapshot("not a JSON object")
    version = obj.get("version")
    if type(version) is int and version > SNAPSHOT_VERSION:
        raise WalError(
            f"{path} has format version {version}, but this oj only reads up to version "
            f"{SNAPSHOT_VERSION}; upgrade oj (or move the state directory aside)"
        )
    seq = obj.get("seq")
    if version != SNAPSHOT_VERSION or type(seq) is not int or seq < 0 or "state" not in obj:
        raise _BadSnapshot("missing or invalid version/seq/state")
    crc = obj.get("crc")
    if crc is not None:
        cut = raw.find(b',"state":')
        if cut < 0 or not raw.endswith(b"}") or zlib.crc32(raw[cut + 9 : -1]) != crc:
            raise _BadSnapshot("CRC mismatch")
    try:
        state = MaterializedState.from_dict(obj["state"])
    except Exception as exc:  # cattrs raises several types; all mean "not a valid state"
        raise _BadSnapshot(f"invalid state: {exc!r:.200}") from None
    return seq, state


# --- replay ----------------------------------------------------------------------------------------


@attrs.define
class ReplayResult:
    """What :func:`replay` rebuilt, and what it had to repair."""

    state: MaterializedState
    #: Highest seq in snapshot + WAL; the next append gets ``last_seq + 1``.
    last_seq: int
    #: Seq the loaded snapshot covers (0 when there was none).
    snapshot_seq: int
    #: Number of WAL entries applied on top of the snapshot.
    replayed: int
    #: Human-readable descriptions of repairs (cut tails, moved snapshots, removed tmp files).
    warnings: list[str] = attrs.Factory(list)


def replay(state_dir: Path) -> ReplayResult:
    """Load snapshot + WAL tail into a fresh state, repairing what a crash can leave behind.

    Blocking; call it before the trio loop starts (or in a worker thread). Nothing on disk is changed
    unless the whole replay succeeded, so a hard error leaves every file as it was.

    Raises:
        CorruptStateError: unreadable history (see module docstring), message names file and line/seq.
        WalError: snapshot written by a newer oj.
    """
    state_dir = Path(state_dir)
    wal_file = wal_path(state_dir)
    snap_file = snapshot_path(state_dir)
    warnings: list[str] = []

    state = MaterializedState()
    snap_seq = 0
    snapshot_bad: str | None = None
    if snap_file.exists():
        try:
            snap_seq, state = _load_snapshot(snap_file)
        except _BadSnapshot as exc:
            snapshot_bad = str(exc)
            state, snap_seq = MaterializedState(), 0

    apply = state.apply
    last_seq = snap_seq
    prev_wal_seq: int | None = None
    replayed = 0
    valid_end = 0
    bad: tuple[int, int, str] | None = None  # (lineno, byte offset, reason) of the first bad line
    lineno = 0
    group: list[tuple[int, int, Any]] = []  # (lineno, seq, raw) of an unfinished multi-event append
    group_start = (0, 0)  # (lineno, offset) where the unfinished group began
    if wal_file.exists():
        with open(wal_file, "rb") as f:
            offset = 0
            for line in f:
                lineno += 1
                try:
                    seq, raw, more = parse_line(line)
                except _BadLine as exc:
                    if bad is None:
                        bad = (lineno, offset, str(exc))
                    offset += len(line)
                    continue
                if bad is not None:
                    raise CorruptStateError(
                        f"{wal_file}: line {bad[0]} is corrupt ({bad[2]}) but valid entries follow it "
                        f"(line {lineno}, seq {seq}); refusing to drop history. Inspect or restore "
                        "the file, then restart the daemon"
                    )
                if prev_wal_seq is None:
                    floor = (
                        1 if snapshot_bad is not None or not snap_file.exists() else snap_seq + 1
                    )
                    if seq > floor:
                        raise CorruptStateError(
                            _gap_message(wal_file, lineno, seq, floor, snapshot_bad, snap_file)
                        )
                elif seq != prev_wal_seq + 1:
                    raise CorruptStateError(
                        f"{wal_file}: line {lineno}: seq {seq} does not follow seq {prev_wal_seq}"
                    )
                prev_wal_seq = seq
                if not group:
                    group_start = (lineno, offset)
                offset += len(line)
                group.append((lineno, seq, raw))
                if more:
                    continue
                valid_end = offset
                for g_lineno, g_seq, g_raw in group:
                    if g_seq <= snap_seq:
                        continue
                    try:
                        event = event_from_dict(g_raw, seq=g_seq)
                    except EventDecodeError as exc:
                        raise CorruptStateError(
                            f"{wal_file}: line {g_lineno}: {exc} (written by a newer oj?)"
                        ) from None
                    apply(event)
                    replayed += 1
                    last_seq = g_seq
                group.clear()
    if group:  # the tail is an append cut short by a crash: drop all of it
        bad = (group_start[0], group_start[1], "incomplete multi-event append")

    if snapshot_bad is not None and prev_wal_seq is None and snap_file.exists():
        raise CorruptStateError(
            f"{snap_file} is corrupt ({snapshot_bad}) and {wal_file} holds no history to rebuild "
            "from; refusing to start with an empty state. Restore the snapshot or move the state "
            "directory aside"
        )

    # --- the replay is good: now repair -----------------------------------------------------------
    for tmp in (state_dir / SNAPSHOT_TMP, wal_file.parent / WAL_TMP):
        if tmp.exists():
            tmp.unlink()
            warnings.append(f"removed leftover {tmp} from an interrupted snapshot/compaction")
    if snapshot_bad is not None:
        bak = _make_room_for_backup(snap_file)
        os.replace(snap_file, bak)
        fsync_dir(state_dir)
        warnings.append(
            f"snapshot {snap_file} was corrupt ({snapshot_bad}); moved to {bak.name}, "
            f"state rebuilt from the WAL ({replayed} events)"
        )
    if bad is not None:
        bak = _cut_tail(wal_file, valid_end)
        warnings.append(
            f"{wal_file}: cut a torn/corrupt tail at line {bad[0]} ({bad[2]}; "
            f"{lineno - bad[0] + 1} line(s)); original kept as {bak.name}"
        )
    for w in warnings:
        log.debug("replay: %s", w)
    return ReplayResult(
        state=state,
        last_seq=last_seq,
        snapshot_seq=snap_seq,
        replayed=replayed,
        warnings=warnings,
    )


def _gap_message(
    wal_file: Path, lineno: int, seq: int, floor: int, snapshot_bad: str | None, snap: Path
) -> str:
    if snapshot_bad is not None:
        return (
            f"{snap} is corrupt ({snapshot_bad}) and {wal_file} no longer reaches back to seq 1 "
            f"(it starts at seq {seq}, line {lineno}: it was compacted); refusing to start with "
            "lost history. Restore the snapshot or move the state directory aside"
        )
    return (
        f"{wal_file}: line {lineno}: history gap: first entry is seq {seq} but seq {floor} was "
        f"expected ({'no snapshot' if floor == 1 else f'snapshot covers seq {floor - 1}'})"
    )


def _cut_tail(wal_file: Path, valid_end: int) -> Path:
    """Keep the original as ``.bak`` and atomically replace the WAL with its first ``valid_end`` bytes."""
    bak = _make_room_for_backup(wal_file)
    try:
        os.link(wal_file, bak)  # same inode: the rename below leaves the original bytes in .bak
    except OSError:
        shutil.copy2(wal_file, bak)

    def copy_prefix(out: Any) -> None:
        remaining = valid_end
        with open(wal_file, "rb") as src:
            while remaining:
                chunk = src.read(min(remaining, 1 << 20))
                if not chunk:
                    break
                out.write(chunk)
                remaining -= len(chunk)

    _atomic_write(wal_file, wal_file.parent / WAL_TMP, copy_prefix)
    return bak


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


def _fdatasync(fd: int) -> None:
    (getattr(os, "fdatasync", None) or os.fsync)(fd)


class WalWriter:
    """Group-committing WAL appender for one trio loop.

    ``append`` frames its events under freshly assigned seqs into the open batch and waits; the
    flusher task (:meth:`run`) takes the whole open batch, writes it and fsyncs it in a worker thread,
    calls ``on_durable`` with the batch's ``(seq, event)`` pairs (the store applies them there, so the
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
        self._open = _Batch()
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
                    await self._flush(batch)
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
        try:
            await trio.to_thread.run_sync(self._write_sync, data)
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
        try:
            while view:
                n = os.write(self._fd, view)
                view = view[n:]
            if self._sync:
                self._fsync(self._fd)
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
                await trio.to_thread.run_sync(work)
            except Exception as exc:  # the snapshot failed; the WAL is intact, carry on
                log.error("snapshot at seq %d failed: %r", seq, exc)
                req.error = exc
                req.done.set()
                continue
            try:
                await trio.to_thread.run_sync(self._compact_sync)
            except BaseException as exc:
                req.error = exc
                req.done.set()
                raise WalError(f"WAL compaction failed: {exc}") from exc
            self.stats.checkpoints += 1
            req.seq = seq
            req.done.set()

    def _compact_sync(self) -> None:
        """Replace the WAL by an empty one: every entry it holds is ≤ the snapshot's seq."""
        _atomic_write(self.path, self.path.parent / WAL_TMP, lambda f: None)
        new_fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        old, self._fd = self._fd, new_fd
        os.close(old)

    def _fail(self, exc: BaseException) -> None:
        """Mark the writer failed and release every waiter with the error."""
        self._failure = exc
        pending = [self._open]
        self._open = _Batch()
        for batch in pending:
            batch.release(exc)
        for req in self._checkpoints:
            req.error = WalError(f"WAL writer stopped: {exc}")
            req.done.set()
        self._checkpoints = []
