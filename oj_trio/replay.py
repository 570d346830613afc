"""Reading the journal back: the WAL line format, and replay of snapshot + WAL with crash repair.

File: ``$OJ_STATE_DIR/wal/events.wal``, one ``{"seq": N, "event": {...}, "crc": C}`` line per event.
``C`` is the CRC-32 of every byte before ``,"crc":`` — so a flipped bit in the seq or the event is
caught, not just a torn line. Lines without a ``crc`` (hand-written, reference format) are accepted.
A line only counts if it ends with ``\\n``: an ``append`` is acknowledged after its whole line
(newline included) is fsynced. ``"more": true`` marks every line of a multi-event append but the last,
so an append cut short by a crash is dropped whole (commits are atomic).

The line format lives here, next to its parser, and :mod:`oj_trio.wal`'s writer frames lines with
:func:`frame_line`: one module owns what a line looks like. Everything here is blocking; it runs
before the trio loop starts (or in a worker thread).

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

import logging
import os
import shutil
import zlib
from pathlib import Path
from typing import Any, BinaryIO

import attrs
import orjson

from oj_trio.errors import CorruptStateError
from oj_trio.events import EventBase, EventDecodeError, encode_event, event_from_dict
from oj_trio.snapshot import (
    SNAPSHOT_TMP,
    _BadSnapshot,
    atomic_write,
    fsync_dir,
    load_snapshot,
    make_room_for_backup,
    snapshot_path,
)
from oj_trio.state import MaterializedState

log = logging.getLogger("oj.wal")

WAL_DIR = "wal"
WAL_FILE = "events.wal"
WAL_TMP = "events.tmp"

_CRC_SEP = b',"crc":'


def wal_path(state_dir: Path) -> Path:
    return Path(state_dir) / WAL_DIR / WAL_FILE


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
            snap_seq, state = load_snapshot(snap_file)
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
        bak = make_room_for_backup(snap_file)
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
    bak = make_room_for_backup(wal_file)
    try:
        os.link(wal_file, bak)  # same inode: the rename below leaves the original bytes in .bak
    except OSError:
        shutil.copy2(wal_file, bak)

    def copy_prefix(out: BinaryIO) -> None:
        remaining = valid_end
        with open(wal_file, "rb") as src:
            while remaining:
                chunk = src.read(min(remaining, 1 << 20))
                if not chunk:
                    break
                out.write(chunk)
                remaining -= len(chunk)

    atomic_write(wal_file, wal_file.parent / WAL_TMP, copy_prefix)
    return bak
