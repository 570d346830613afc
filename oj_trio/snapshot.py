"""Crash-safe files: the atomic replace, ``.bak`` rotation, and the snapshot file built on them.

Everything here is blocking and runs before the trio loop starts or in a worker thread. It is the
bottom layer of the durable core (:mod:`oj_trio.replay` and :mod:`oj_trio.wal` build on it).

File: ``$OJ_STATE_DIR/snapshot.json`` = ``{version, seq, created_at, crc, state}`` where ``crc`` is the
CRC-32 of the state's JSON bytes, so a flipped bit is caught, not only a truncated file.

* Writes are tmp file + write + fsync + rename + directory fsync: a crash leaves either the old or
  the new file, plus at most a stray ``.tmp`` that replay removes.
* A corrupt snapshot is reported as :class:`_BadSnapshot` (the caller moves it aside and rebuilds
  from the WAL); one written by a newer oj is a :class:`WalError` — refusing is safer than guessing.
  Tables and fields added since a snapshot was written load with their defaults, so old snapshots
  keep loading without a version bump.
* Backups replace the extension (``snapshot.json`` → ``snapshot.bak``, ``.bak.2``, ``.bak.3``); at most
  :data:`MAX_BACKUPS` are kept, the newest is always ``.bak`` (reference §5.5).
"""

import datetime
import os
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from oj_trio.errors import WalError
from oj_trio.state import MaterializedState

#: Snapshot format version this code writes and the newest it reads.
SNAPSHOT_VERSION = 1
SNAPSHOT_FILE = "snapshot.json"
SNAPSHOT_TMP = "snapshot.tmp"
MAX_BACKUPS = 3


def snapshot_path(state_dir: Path) -> Path:
    return Path(state_dir) / SNAPSHOT_FILE


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


def make_room_for_backup(path: Path) -> Path:
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


def atomic_write(target: Path, tmp: Path, chunks: Callable[[BinaryIO], object]) -> None:
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
    atomic_write(state_dir / SNAPSHOT_FILE, state_dir / SNAPSHOT_TMP, lambda f: f.write(data))


class _BadSnapshot(Exception):
    """The snapshot file is not an intact snapshot (torn, bit-flipped, not a valid state)."""


def load_snapshot(path: Path) -> tuple[int, MaterializedState]:
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
