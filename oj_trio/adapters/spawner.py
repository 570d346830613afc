"""ojd's side of the spawner (:mod:`.spawner_process`): step processes started off the event loop.

:func:`open_spawner` starts the helper and a task reading its messages, and yields a
:class:`Spawner`; :mod:`.process` sends it every spawn while it is installed
(:func:`.process.use_spawner`) and spawns in-process otherwise (the adapter's own tests, a
helper that could not start or has died).

The helper is the parent of the step processes, so it reaps them and reports each exit; a
:class:`RemoteChild` stands for one such process here, with the parts of ``subprocess.Popen`` the
adapter uses (``pid``, ``returncode``, ``poll``) and an awaitable end.

Failure handling follows one rule, that a step must never run twice or unwatched: a request
that could not be sent made no process, so it is spawned in-process instead; a request sent to
a helper that then died may have made one, so that spawn fails (the step fails through
``on_fail`` with the reason). The processes of a helper that died can no longer report their
exit: their groups are killed and they end with ``-SIGKILL``. Either way the daemon logs it
once, and every later spawn is in-process.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import logging
import marshal
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import trio

from . import spawner_process
from .spawner_process import MAX_MESSAGE

log = logging.getLogger("oj.process")

#: How long a spawn may take the helper (it answers once the child has exec'd: milliseconds,
#: unless the machine is swamped or the helper is stuck, which ends its use).
ANSWER_TIMEOUT = 30.0


class SpawnerGone(Exception):
    """The helper is not there; ``sent`` says whether the request reached it first."""

    def __init__(self, reason: str, *, sent: bool) -> None:
        super().__init__(reason)
        self.sent = sent


class RemoteChild:
    """A step process the helper started: ``pid``, ``returncode`` (``-N``: killed by signal
    ``N``, as ``subprocess`` has it), ``poll()``, and :meth:`ended` to await its end."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        #: /proc start ticks, as the helper read them just before the reap.
        self.start_ticks: int | None = None
        self._ended = trio.Event()

    def poll(self) -> int | None:
        return self.returncode

    async def ended(self) -> int:
        await self._ended.wait()
        assert self.returncode is not None
        return self.returncode

    def _end(self, returncode: int, start_ticks: int | None) -> None:
        self.returncode = returncode
        self.start_ticks = start_ticks
        self._ended.set()


class Spawner:
    """Sends spawns to the helper and routes its answers and exit reports."""

    def __init__(self, sock: socket.socket, helper: subprocess.Popen[bytes]) -> None:
        self._sock = sock
        self._helper = helper
        self._tokens = itertools.count(1)
        self._send_lock = trio.Lock()
        #: token → the answer slot of a spawn waiting for it
        self._waiting: dict[int, _Answer] = {}
        #: pid → a running child
        self._children: dict[int, RemoteChild] = {}
        #: The helper has started and said so (nothing is sent to it before).
        self.ready = False
        self._ready = trio.Event()
        self.gone: str | None = None

    async def spawn(
        self,
        argv: list[str],
        *,
        executable: str | None,
        fds: tuple[int, int, int],
        cwd: Path,
        env: Mapping[str, str],
    ) -> RemoteChild:
        """Start ``argv`` in ``cwd`` as the leader of a new session and process group.

        Raises:
            OSError: the helper could not enter ``cwd`` or run the program (no process made).
            ValueError: ``argv``, ``env`` or ``cwd`` cannot be passed to ``exec`` (a NUL byte),
                as ``subprocess`` raises it (no process made).
            SpawnerGone: the helper is not there (``sent``: it may have made a process).
        """
        if self.gone is not None or not self.ready:
            raise SpawnerGone(self.gone or "the spawner has not started yet", sent=False)
        token = next(self._tokens)
        request = marshal.dumps((token, executable, argv, dict(env), os.fspath(cwd)))
        if len(request) > MAX_MESSAGE:
            raise SpawnerGone("the request is too large for the spawner", sent=False)
        answer = _Answer()
        # Not cancellable once sent: the process it makes must not run unwatched. Bounded by
        # ANSWER_TIMEOUT instead.
        with trio.CancelScope(shield=True):
            try:
                await self._send(request, fds)
            except OSError as exc:
                if exc.errno == errno.EMSGSIZE:  # larger than the socket takes: this one only
                    raise SpawnerGone(
                        "the request is too large for the spawner", sent=False
                    ) from exc
                raise self._lost(f"cannot reach the spawner: {exc}", sent=False) from exc
            self._waiting[token] = answer
            with trio.move_on_after(ANSWER_TIMEOUT):
                await answer.done.wait()
            self._waiting.pop(token, None)
        if answer.gone is not None:
            raise SpawnerGone(answer.gone, sent=True)
        if not answer.done.is_set():
            # Stuck: stop it (the reader then abandons what it started, see _abandon).
            self._lost(f"the spawner did not answer within {ANSWER_TIMEOUT:.0f} s", sent=True)
            with contextlib.suppress(OSError):
                self._helper.kill()
            raise SpawnerGone(str(self.gone), sent=True)
        if answer.child is not None:
            return answer.child
        if answer.stage == "invalid":
            raise ValueError(answer.detail)
        filename = os.fspath(cwd) if answer.stage == "chdir" else (executable or argv[0])
        raise OSError(answer.errno, os.strerror(answer.errno), filename)

    async def wait_ready(self) -> bool:
        """Wait until the helper has started (or is gone); whether it is ready."""
        while not self.ready and self.gone is None:
            with trio.move_on_after(0.05):
                await self._ready.wait()
        return self.ready and self.gone is None

    async def _send(self, request: bytes, fds: tuple[int, int, int]) -> None:
        try:
            socket.send_fds(self._sock, [request], list(fds))
            return
        except BlockingIOError:
            pass
        async with self._send_lock:  # the socket is full: queue up for room, one at a time
            while True:
                try:
                    socket.send_fds(self._sock, [request], list(fds))
                    return
                except BlockingIOError:
                    await trio.lowlevel.wait_writable(self._sock)

    async def read_answers(self) -> None:
        """The reader task: answers to their spawns, exits to their children, until EOF."""
        reason = "the spawner has stopped"
        try:
            while True:
                try:
                    data = self._sock.recv(4096)
                except BlockingIOError:
                    await trio.lowlevel.wait_readable(self._sock)
                    continue
                if not data:
                    break
                self._dispatch(marshal.loads(data))
        except (OSError, ValueError, TypeError, EOFError) as exc:
            reason = f"the spawner's socket failed: {exc!r}"
        # Not on cancellation (the daemon closing it): only when the helper went away.
        self._abandon(self.gone or reason)

    def _dispatch(self, message: tuple[object, ...]) -> None:
        kind = message[0]
        if kind == "ready":
            self.ready = True
            self._ready.set()
        elif kind == "spawned":
            _kind, token, pid, stage, number, detail = message
            assert isinstance(token, int) and isinstance(pid, int)
            child = None
            if stage == "":
                child = self._children[pid] = RemoteChild(pid)
            answer = self._waiting.get(token)
            if answer is None:
                # Its spawn gave up waiting (timeout): nobody watches this process.
                if child is not None:
                    _kill_group(pid)
                return
            answer.child, answer.stage, answer.errno = child, str(stage), int(str(number))
            answer.detail = str(detail)
            answer.done.set()
        elif kind == "exited":
            _kind, pid, status, ticks = message
            assert isinstance(pid, int) and isinstance(status, int)
            child = self._children.pop(pid, None)
            if child is not None:
                child._end(
                    os.waitstatus_to_exitcode(status), ticks if isinstance(ticks, int) else None
                )

    def _lost(self, reason: str, *, sent: bool) -> SpawnerGone:
        if self.gone is None:
            self.gone = reason
            log.error("%s; steps are spawned by the daemon itself from now on", reason)
        return SpawnerGone(reason, sent=sent)

    def _abandon(self, reason: str) -> None:
        """The helper is gone: nothing it made can report any more."""
        self._lost(reason, sent=True)
        for answer in self._waiting.values():
            answer.gone = reason
            answer.done.set()
        self._waiting.clear()
        children, self._children = self._children, {}
        for pid, child in children.items():
            log.error(
                "step process %d: killed, its exit can no longer be reported (%s)", pid, reason
            )
            _kill_group(pid)
            child._end(-signal.SIGKILL, None)

    def close(self) -> None:
        """Stop the helper (it exits when its socket closes) and wait for it."""
        with contextlib.suppress(OSError):
            self._sock.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._helper.wait(timeout=2)
        if self._helper.returncode is None:
            self._helper.kill()
            self._helper.wait()


class _Answer:
    __slots__ = ("child", "detail", "done", "errno", "gone", "stage")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.child: RemoteChild | None = None
        self.stage = ""
        self.errno = 0
        self.detail = ""
        self.gone: str | None = None


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(OSError):
        os.killpg(pgid, signal.SIGKILL)


def start_spawner() -> Spawner | None:
    """Start the helper; None (logged) when it cannot start: the daemon then spawns itself."""
    if not sys.platform.startswith("linux"):
        return None
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        helper = subprocess.Popen(
            # By its path, with -P: ojd runs in the directory `oj` was started from (a
            # project's), which `-m` would put first on sys.path: a select.py or an oj_trio/
            # there would be what the helper imports. It needs the standard library only.
            [sys.executable, "-P", spawner_process.__file__, str(theirs.fileno())],
            pass_fds=(theirs.fileno(),),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )
    except OSError as exc:
        ours.close()
        log.error("cannot start the spawner (%s): steps are spawned by the daemon itself", exc)
        return None
    finally:
        theirs.close()
    ours.setblocking(False)
    return Spawner(ours, helper)


@contextlib.asynccontextmanager
async def open_spawner() -> AsyncIterator[Spawner | None]:
    """The spawner for the block's duration; stopped at its end (its socket closes)."""
    # Steps get the descriptor limit the daemon gives its own (raise_fd_limit), through the
    # helper that starts them.
    from .process import raise_fd_limit

    raise_fd_limit()
    spawner = await trio.to_thread.run_sync(start_spawner)
    if spawner is None:
        yield None
        return
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(spawner.read_answers)
            try:
                yield spawner
            finally:
                nursery.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(spawner.close)
