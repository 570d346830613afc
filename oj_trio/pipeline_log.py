"""Per-pipeline log files: ``$OJ_STATE_DIR/logs/<pipeline_id>.log``.

Line format (UTC, one line per record, ``\\n``-terminated)::

    2026-11-22T10:00:00Z [build] step started            runtime message (reference §2.8)
    2026-11-22T10:00:00Z [build] | compiling foo.c       the step's stdout, one line
    2026-11-22T10:00:01Z [build] ! warning: unused x     the step's stderr, one line

Output lines are marked by ``| `` (stdout) or ``! `` (stderr) right after the step label, so
``grep ' | '`` or ``grep ' ! '`` pulls a step's streams back out, and runtime messages (none of
which start with ``|`` or ``!``) stay distinguishable. A step run with ``output_fd`` (see
:meth:`PipelineLog.open_for_child`) writes its raw bytes into the same file with no prefix.

Why an LRU of descriptors: with 1,000 concurrent pipelines, keeping every log open costs 1,000 fds
for the daemon's lifetime, and open-append-close per line costs two extra syscalls per line. A small
LRU keeps the hot logs open and bounds the fd count; ``max_open=0`` gives pure open-append-close.
Every record goes out whole in one ``write(2)`` to an ``O_APPEND`` descriptor (the background writer
joins a pipeline's queued records into one), so lines from the runtime and from a child writing to
its own ``O_APPEND`` descriptor never tear each other.

Why the daemon writes from a background thread (``background=True``): appending a line to an open
file is microseconds, but *creating* a log file (one per pipeline) costs 100–300 µs on ext4, and
under a worker draining a queue that was a quarter of the event loop's time. The loop now only
queues ``(pipeline, bytes)``; one writer thread creates, appends and closes, in queue order, so
each log's lines keep their order. Readers that must see every line written so far (the
``GetPipelineLogs`` query, prune) call :meth:`PipelineLog.flush` first. Without ``background``
(tests, tools) every write is synchronous, as before.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from pathlib import Path

from oj_trio import paths

__all__ = ["STDERR_MARK", "STDOUT_MARK", "PipelineLog", "format_line", "read_from", "read_tail"]

log = logging.getLogger("oj.pipeline_log")

STDOUT_MARK = "|"
STDERR_MARK = "!"

_OPEN_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC


def format_line(timestamp: float, step: str, message: str) -> str:
    """One log line (with its newline). Newlines inside ``message`` are escaped so that one record
    stays one line and :func:`read_tail` counts records."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))
    if "\n" in message or "\r" in message:
        message = message.replace("\r", "\\r").replace("\n", "\\n")
    return f"{stamp} [{step}] {message}\n"


class PipelineLog:
    """Appends records to pipeline logs under ``logs_dir``, keeping at most ``max_open`` files open.

    Meant to be called from the daemon's trio thread only (with ``background``, the file work
    happens in a writer thread of its own). Call :meth:`close` when a pipeline ends (or its log is
    deleted by prune) and :meth:`close_all` at shutdown.
    """

    def __init__(
        self,
        logs_dir: Path,
        *,
        max_open: int = 64,
        clock: Callable[[], float] = time.time,
        background: bool = False,
    ) -> None:
        self.logs_dir = Path(logs_dir)
        self.max_open = max_open
        self._clock = clock
        self._fds: OrderedDict[str, int] = OrderedDict()
        self._dir_ready = False
        self._stamp_sec = -1
        self._stamp = ""
        self._writer = _Writer(self) if background else None

    @classmethod
    def for_state_dir(cls, state_dir: Path, *, max_open: int = 64) -> PipelineLog:
        """The log writer for a daemon whose state lives in ``state_dir``."""
        return cls(paths.logs_dir(state_dir), max_open=max_open)

    def path(self, pipeline_id: str) -> Path:
        """Where ``pipeline_id``'s log lives (whether or not it exists yet)."""
        return self.logs_dir / f"{pipeline_id}.log"

    # ---------------------------------------------------------------------------------- writing

    def write(self, pipeline_id: str, step: str, message: str) -> None:
        """Append a runtime message, e.g. ``write(pid, "build", "step started")``."""
        if "\n" in message or "\r" in message:
            message = message.replace("\r", "\\r").replace("\n", "\\n")
        self._append(pipeline_id, f"{self._now()} [{step}] {message}\n")

    def output(self, pipeline_id: str, step: str, stream: str, line: str) -> None:
        """Append one line of a step's output; ``stream`` is ``"stdout"`` or ``"stderr"``."""
        mark = STDERR_MARK if stream == "stderr" else STDOUT_MARK
        if "\r" in line:
            line = line.replace("\r", "\\r")
        self._append(pipeline_id, f"{self._now()} [{step}] {mark} {line}\n")

    def output_callback(self, pipeline_id: str, step: str) -> Callable[[str, str], None]:
        """An ``on_output`` for :func:`oj_trio.adapters.process.run_shell` writing to this log."""

        def on_output(stream: str, line: str) -> None:
            self.output(pipeline_id, step, stream, line)

        return on_output

    def open_for_child(self, pipeline_id: str) -> int:
        """A fresh ``O_APPEND`` descriptor on the log for a child to write into directly (the
        ``output_fd`` of ``run_shell``). The caller closes it once the child is spawned/finished."""
        self._ensure_dir()
        return os.open(self.path(pipeline_id), _OPEN_FLAGS, 0o600)

    def close(self, pipeline_id: str) -> None:
        """Close the cached descriptor of one log, if any (pipeline ended, or log deleted)."""
        if self._writer is not None:
            self._writer.put(pipeline_id, None)
        else:
            self._close_now(pipeline_id)

    def flush(self) -> None:
        """Block until every line queued so far is in its file (no-op without ``background``).
        Call it from a worker thread in the daemon (``trio.to_thread``)."""
        if self._writer is not None:
            self._writer.flush()

    def remove(self, pipeline_id: str) -> None:
        """Delete a pipeline's log (and the breadcrumb file the reference keeps beside it), for
        ``oj pipeline prune``; files already gone are fine."""
        self.close(pipeline_id)
        self.flush()
        for path in (self.path(pipeline_id), self.logs_dir / f"{pipeline_id}.crumb.json"):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def close_all(self) -> None:
        """Write what is queued, then close every cached descriptor (daemon shutdown)."""
        if self._writer is not None:
            self._writer.put("", None, close_all=True)
            self._writer.flush()
        else:
            self._close_all_now()

    @property
    def open_count(self) -> int:
        """How many descriptors are cached right now (for tests and status)."""
        return len(self._fds)

    # --------------------------------------------------------------------------------- internals

    def _now(self) -> str:
        """UTC timestamp; formatted at most once per second since many lines share a second."""
        now = int(self._clock())
        if now != self._stamp_sec:
            self._stamp_sec = now
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
        return self._stamp

    def _ensure_dir(self) -> None:
        if not self._dir_ready:
            self.logs_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._dir_ready = True

    def _append(self, pipeline_id: str, text: str) -> None:
        data = text.encode("utf-8", "replace")
        if self._writer is not None:
            self._writer.put(pipeline_id, data)
        else:
            self._write_now(pipeline_id, data)

    def _close_now(self, pipeline_id: str) -> None:
        fd = self._fds.pop(pipeline_id, None)
        if fd is not None:
            os.close(fd)

    def _close_all_now(self) -> None:
        while self._fds:
            _, fd = self._fds.popitem()
            os.close(fd)

    def _write_now(self, pipeline_id: str, data: bytes) -> None:
        try:
            if self.max_open <= 0:
                self._ensure_dir()
                fd = os.open(self.path(pipeline_id), _OPEN_FLAGS, 0o600)
                try:
                    _write_all(fd, data)
                finally:
                    os.close(fd)
                return
            cached = self._fds.get(pipeline_id)
            if cached is None:
                self._ensure_dir()
                fd = os.open(self.path(pipeline_id), _OPEN_FLAGS, 0o600)
                self._fds[pipeline_id] = fd
                while len(self._fds) > self.max_open:
                    _, old = self._fds.popitem(last=False)
                    os.close(old)
            else:
                fd = cached
                self._fds.move_to_end(pipeline_id)
            _write_all(fd, data)
        except OSError as exc:
            # A full disk must not take a pipeline down through its log; the WAL reports that.
            log.warning("cannot write pipeline log %s: %s", self.path(pipeline_id), exc)
            self._dir_ready = False


#: Once woken by a line, the writer thread gathers lines this long before it writes them: one
#: wake-up per burst instead of one per line. Each wake-up hands the GIL over to the thread and
#: back, and the event loop's every syscall then waits for it (``flush`` does not wait).
GATHER_SECONDS = 0.005


class _Writer:
    """The thread that does a background :class:`PipelineLog`'s file work, in queue order."""

    def __init__(self, owner: PipelineLog) -> None:
        self._owner = owner
        #: (pipeline id, data to append | None to close, close every log)
        self._queue: deque[tuple[str, bytes | None, bool]] = deque()
        self._cond = threading.Condition()
        self._busy = False
        self._urgent = False
        threading.Thread(target=self._run, name="oj-pipeline-logs", daemon=True).start()

    def put(self, pipeline_id: str, data: bytes | None, *, close_all: bool = False) -> None:
        with self._cond:
            self._queue.append((pipeline_id, data, close_all))
            if len(self._queue) == 1:
                self._cond.notify_all()

    def flush(self) -> None:
        with self._cond:
            self._urgent = True
            self._cond.notify_all()
            self._cond.wait_for(lambda: not self._queue and not self._busy)

    def _run(self) -> None:
        owner = self._owner
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._queue))
                if not self._urgent:
                    self._cond.wait(GATHER_SECONDS)  # woken early by a flush
                self._urgent = False
                batch = list(self._queue)
                self._queue.clear()
                self._busy = True
            # A pipeline's lines of one batch go out in one write (a job's first three lines are
            # usually queued together); its lines keep their order, and a close comes after them.
            lines: dict[str, list[bytes]] = {}
            for pipeline_id, data, close_all in batch:
                if data is not None and not close_all:
                    lines.setdefault(pipeline_id, []).append(data)
                    continue
                if close_all:
                    self._write_out(lines)
                    self._do(owner._close_all_now)
                    continue
                if pipeline_id in lines:
                    self._write_out({pipeline_id: lines.pop(pipeline_id)})
                self._do(owner._close_now, pipeline_id)
            self._write_out(lines)
            with self._cond:
                self._busy = False
                self._cond.notify_all()

    def _write_out(self, lines: dict[str, list[bytes]]) -> None:
        for pipeline_id, chunks in lines.items():
            data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            self._do(self._owner._write_now, pipeline_id, data)
        lines.clear()

    @staticmethod
    def _do(fn: Callable[..., None], *args: object) -> None:
        try:
            fn(*args)
        except Exception:  # never let one bad write stop every log
            log.exception("pipeline log writer")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


# ------------------------------------------------------------------------------------- reading


def read_tail(path: Path, lines: int, *, block_size: int = 8192) -> list[str]:
    """The last ``lines`` lines of ``path`` (without newlines), reading backwards block by block so
    a huge log costs only what is shown. Missing file or ``lines <= 0`` → ``[]``. A final line
    without a newline (still being written) counts as a line."""
    if lines <= 0:
        return []
    try:
        f = open(path, "rb")  # noqa: SIM115 - a missing file is an answer, not an error
    except FileNotFoundError:
        return []
    with f:
        pos = f.seek(0, os.SEEK_END)
        chunks: list[bytes] = []
        newlines = 0
        # lines + 1 newlines guarantee the first wanted line is complete, whether or not the file
        # ends with a newline.
        while pos > 0 and newlines <= lines:
            size = min(block_size, pos)
            pos -= size
            f.seek(pos)
            chunk = f.read(size)
            chunks.append(chunk)
            newlines += chunk.count(b"\n")
    data = b"".join(reversed(chunks))
    parts = data.split(b"\n")
    if parts and parts[-1] == b"":
        parts.pop()
    return [p.decode("utf-8", "replace") for p in parts[-lines:]]


def read_from(path: Path, offset: int) -> tuple[list[str], int]:
    """Complete lines of ``path`` starting at byte ``offset``, and the offset to continue from —
    for ``oj pipeline logs -f``. A partial last line is left for the next call. Missing file →
    ``([], offset)``; a file that shrank (deleted and recreated) restarts at 0."""
    try:
        f = open(path, "rb")  # noqa: SIM115 - a missing file is an answer, not an error
    except FileNotFoundError:
        return [], offset
    with f:
        size = f.seek(0, os.SEEK_END)
        if size < offset:
            offset = 0
        f.seek(offset)
        data = f.read()
    end = data.rfind(b"\n")
    if end < 0:
        return [], offset
    complete = data[: end + 1]
    return [p.decode("utf-8", "replace") for p in complete.split(b"\n")[:-1]], offset + end + 1
