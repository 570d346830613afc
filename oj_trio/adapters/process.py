"""Shell steps in their own process group (finding and killing them later:
:mod:`oj_trio.adapters.process_groups`, re-exported here).

Why this module exists: ``trio.run_process`` cancellation signals only the direct child, so a
step's ``sleep 300 &`` grandchildren would outlive a cancelled pipeline (see ecosystem notes, "trio
pitfalls"). Every shell step therefore runs with ``start_new_session=True`` — the child is the
leader of its own session and process group (``pgid == pid``) — and every kill targets the group.

The runtime records ``ProcessInfo(pid, pgid, start_ticks)`` durably: once the step has run for a
moment (``on_running``), or with its exit when it ends sooner. After a daemon crash the recorded
group may still run (children are re-parented, not killed), or the pid may have been recycled by
an unrelated process. ``start_ticks`` (field 22 of ``/proc/<pid>/stat``,
clock ticks since boot) tells the two apart, and the environment marker the runtime puts into every
step (``OJ_PIPELINE_ID``, ``OJ_STEP``) finds a group whose leader is already gone.

Exit codes: :func:`run_shell` returns the child's exit status, or ``-N`` when the shell itself
was killed by signal ``N`` (the ``subprocess``/trio convention; a command *inside* the shell that
dies of a signal shows up as bash's usual ``128 + N``). The reference records ``-1`` for any signal
death; :func:`reference_exit_code` maps to that when writing ``shell:exited``.

Linux only (``/proc``, process groups).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import resource
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from pathlib import Path

import trio

from oj_trio.errors import OjError

from .direct_exec import direct_command
from .process_groups import (
    _KILL_WAIT,
    PIPELINE_ID_ENV,
    STEP_ENV,
    ProcessInfo,
    _group_alive,
    _killpg,
    _wait_group_gone,
    find_step_processes,
    kill_process_group,
    process_start_ticks,
    terminate_orphans,
)
from .spawn_policy import SpawnPolicy
from .spawner import RemoteChild, Spawner, SpawnerGone

__all__ = [
    "DEFAULT_SHELL_PREFIX",
    "PIPELINE_ID_ENV",
    "STEP_ENV",
    "ProcessInfo",
    "ProcessSpawnError",
    "find_step_processes",
    "kill_process_group",
    "live_shells",
    "process_start_ticks",
    "raise_fd_limit",
    "reference_exit_code",
    "run_shell",
    "terminate_orphans",
]

log = logging.getLogger("oj.process")

#: What the reference prepends to every shell step: fail fast, on unset variables and in pipes.
DEFAULT_SHELL_PREFIX = "set -euo pipefail\n"

#: A line longer than this is delivered in pieces, so one newline-free stream cannot grow memory.
MAX_LINE_BYTES = 64 * 1024

#: How long a step with ``on_output`` runs before its pipes get reader tasks (a step that ends
#: sooner has its output read in one go after its exit; see :func:`run_shell`). Under load a
#: trivial step lives 5–30 ms; 50 ms catches those: adapter CPU per step at concurrency 16,
#: in-process, 521 µs with readers at once, 486 µs at 10 ms, 468 µs at 50 ms. The price: a
#: longer step's output reaches its log up to 50 ms late, and a step that fills a pipe (64 KB)
#: sooner waits for its reader until then.
PUMP_DELAY = 0.05

#: This process's spawn placement (inline or worker thread), fed by every inline spawn.
SPAWNS = SpawnPolicy()

#: Where spawns go while set (the daemon's helper process, :mod:`.spawner`); None: in-process.
_spawner: Spawner | None = None

#: The spawner takes a spawn only while this many shells of ours run already. With few, a
#: step's latency is what counts, and a round trip to another process (which must get a core
#: first) costs more than spawning right here: a chain of trivial steps ran 15–20 % slower
#: through the helper at concurrency 1 and 4. With many, the event loop is the bottleneck, and
#: every spawn taken off it counts: 1,000 trivial jobs at concurrency 16 ≈ 8 % faster, 1,000
#: `sleep 1` pipelines ≈ 15 % (bench/HISTORY.md, "Spawning on and off the loop").
SPAWNER_FROM = 8

#: Spawns under way in a worker thread or the spawner (not yet a :class:`_Child`).
_starting = 0


@contextlib.contextmanager
def use_spawner(spawner: Spawner | None) -> Iterator[None]:
    """Send this process's spawns to ``spawner`` for the block's duration."""
    global _spawner
    previous, _spawner = _spawner, spawner
    try:
        yield
    finally:
        _spawner = previous


class ProcessSpawnError(OjError):
    """The shell step could not be started at all (missing cwd, missing bash, permissions).

    Carries a one-line message meant for the pipeline's error field and log, so a spawn failure
    routes through ``on_fail`` like any other failure instead of surfacing as a traceback.
    """


def reference_exit_code(code: int) -> int:
    """Map :func:`run_shell`'s ``-N`` (killed by signal N) to the reference's ``-1``."""
    return -1 if code < 0 else code


def raise_fd_limit() -> int:
    """Raise the soft ``RLIMIT_NOFILE`` to the hard limit; return the new soft limit.

    Each running step holds up to three descriptors in the daemon (two pipes and a pidfd), so 1,000
    concurrent steps exceed the common default soft limit of 1,024. The daemon calls this once at
    start-up; it is a function (not import-time behaviour) so importing stays free of side effects.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


_devnull_fd: int | None = None


def _devnull() -> int:
    """A shared ``/dev/null`` descriptor (opened on first use, close-on-exec, never closed).

    ``subprocess.DEVNULL`` opens and closes ``/dev/null`` on every spawn; under load those two
    syscalls (and the GIL hand-offs around them) are a measurable share of a trivial step's cost.
    """
    global _devnull_fd
    if _devnull_fd is None:
        _devnull_fd = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    return _devnull_fd


def _spawn_error(exc: OSError, argv0: str, cwd: Path) -> ProcessSpawnError:
    """Turn the ``OSError`` of a failed spawn into a message a user can act on."""
    filename = os.fsdecode(exc.filename) if exc.filename is not None else None
    cwd_s = os.fspath(cwd)
    if filename == cwd_s or (filename is None and not os.path.isdir(cwd_s)):
        if exc.errno == errno.ENOENT:
            why = "does not exist"
        elif exc.errno == errno.ENOTDIR:
            why = "is not a directory"
        elif exc.errno == errno.EACCES:
            why = "is not accessible (permission denied)"
        else:
            why = f"cannot be entered ({exc.strerror})"
        return ProcessSpawnError(f"cannot start shell step: working directory {cwd_s} {why}")
    if exc.errno == errno.ENOENT:
        return ProcessSpawnError(f"cannot start shell step: {argv0} not found on PATH")
    if exc.errno == errno.EMFILE or exc.errno == errno.ENFILE:
        return ProcessSpawnError(f"cannot start shell step: too many open files ({exc.strerror})")
    return ProcessSpawnError(f"cannot start shell step: {argv0}: {exc.strerror or exc}")


class _Child:
    """A spawned shell, waited for the cheapest correct way: a pidfd in trio's epoll, as trio
    itself does (where ``pidfd_open`` is missing, Linux < 5.3, a worker thread blocks in
    ``waitid(WNOWAIT)`` instead). ``Popen`` reaps it, so ``returncode`` follows the ``subprocess``
    convention (``-N`` for signal ``N``).

    Its start time is read lazily (:meth:`start_ticks`), at the latest just before the reap, when
    ``/proc`` still has it. Not right after the spawn: ``Popen`` returns while the child is still
    inside ``exec`` (``vfork`` lets the parent go on at that point), and a read of
    ``/proc/<pid>/stat`` then waits for the exec to finish, ≈ 1 ms in one read out of ten.
    """

    #: How many shells of this process are between spawn and reap (see :func:`_spawn`).
    live = 0

    def __init__(self, popen: subprocess.Popen[bytes] | RemoteChild) -> None:
        self.popen = popen
        self.pid = popen.pid
        self._pidfd: int | None = None
        if isinstance(popen, subprocess.Popen):
            try:
                self._pidfd = os.pidfd_open(popen.pid)
            except (AttributeError, OSError):  # pragma: no cover - kernels before 5.3
                self._pidfd = None
        self._ticks: int | None = None
        self._ticks_read = False
        #: Whether anyone will ask for the start time after the exit (``on_ended``): only then
        #: is ``/proc`` read just before the reap.
        self.keep_ticks = False
        self._counted = True
        _Child.live += 1

    def start_ticks(self) -> int | None:
        """``/proc/<pid>/stat`` start ticks (read once; ``None`` if reaped before it was read)."""
        if not self._ticks_read and self.popen.returncode is None:
            self._ticks = process_start_ticks(self.pid)
            self._ticks_read = True
        if self._ticks is None and isinstance(self.popen, RemoteChild):
            return self.popen.start_ticks  # read by the spawner just before it reaped
        return self._ticks

    @property
    def returncode(self) -> int | None:
        """The exit status, or ``None`` while it runs (reaps it if it has just exited)."""
        if self.popen.returncode is None and self.keep_ticks:
            self.start_ticks()
        code = self.popen.poll()
        if code is not None:
            self.close()
        return code

    async def wait(self) -> int:
        """Wait for the exit and reap. Cancellable (the child keeps running)."""
        if isinstance(self.popen, RemoteChild):
            await self.popen.ended()  # the spawner reaps it and says so
        elif self.popen.returncode is None:
            if self._pidfd is not None:
                await trio.lowlevel.wait_readable(self._pidfd)
            else:  # pragma: no cover - kernels before 5.3
                await trio.to_thread.run_sync(_waitid_exited, self.pid, abandon_on_cancel=True)
            # The child has exited (pidfd readable, or waitid returned): a zombie whose stat is
            # cheap to read (when someone will want it), and which this reaps at once.
            if self.keep_ticks:
                self.start_ticks()
            self.popen.wait()
        self.close()
        assert self.popen.returncode is not None
        return self.popen.returncode

    def close(self) -> None:
        """Drop the pidfd (idempotent); the child no longer counts as live."""
        if self._pidfd is not None:
            fd, self._pidfd = self._pidfd, None
            trio.lowlevel.notify_closing(fd)
            os.close(fd)
        if self._counted:
            self._counted = False
            _Child.live -= 1


def live_shells() -> int:
    """How many shells this process has spawned and not yet reaped."""
    return _Child.live


def _waitid_exited(pid: int) -> None:  # pragma: no cover - kernels before 5.3
    """Block until ``pid`` has exited, without reaping it (``Popen.wait`` does that)."""
    with contextlib.suppress(ChildProcessError):
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)


async def _spawn(
    argv: list[str],
    *,
    stdin: int,
    stdout: int,
    stderr: int,
    cwd: Path,
    env: Mapping[str, str],
    inline_ok: Callable[[], bool] | None = None,
    executable: str | None = None,
) -> _Child:
    """Start ``argv`` (``executable``, if given, is the program run with that argv) as the leader of a new session and process group.

    On the trio thread or in a worker thread, as :data:`SPAWNS` decides from how long recent
    inline spawns took (:mod:`.spawn_policy`) — or by the daemon's spawner process, while one is
    installed (:func:`use_spawner`, :mod:`.spawner_process`), when the loop is busy: at least
    :data:`SPAWNER_FROM` shells run, or the machine is too busy for inline spawns (where the
    spawner beats a worker thread). ``inline_ok`` says whether the caller's other
    work is idle (the daemon: no WAL batch being written); with no shell of ours running and no
    task ready either, the spawn is inline whatever the measurements say. A cancellation while
    a worker spawns is deferred until the spawn returns, so the caller always gets the child it
    has to kill.
    """

    def spawn() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            argv,
            executable=executable,
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            cwd=cwd,
            env=env,
            start_new_session=True,
        )

    global _starting
    busy = _Child.live + _starting  # shells running, and spawns under way elsewhere
    idle = (
        busy == 0
        and trio.lowlevel.current_statistics().tasks_runnable == 0
        and (inline_ok is None or inline_ok())
    )
    started = time.monotonic()
    inline = SPAWNS.inline(started, idle=idle)
    spawner = _spawner
    if (
        spawner is not None
        and spawner.ready
        and spawner.gone is None
        and not idle
        and (busy >= SPAWNER_FROM or not inline)
    ):
        _starting += 1
        try:
            child = await spawner.spawn(
                argv, executable=executable, fds=(stdin, stdout, stderr), cwd=cwd, env=env
            )
        except SpawnerGone as exc:
            if exc.sent:
                # It may have started the step: starting it again could run it twice.
                raise ProcessSpawnError(
                    f"cannot tell whether the step's process started: {exc}"
                ) from exc
            # No process was made: spawn it here (as every spawn from now on).
        else:
            return _Child(child)
        finally:
            _starting -= 1
    if inline:
        try:
            popen = spawn()
        finally:
            SPAWNS.record(time.monotonic() - started)
    else:
        _starting += 1
        try:
            popen = await trio.to_thread.run_sync(spawn)
        finally:
            _starting -= 1
    return _Child(popen)


async def _terminate_group(proc: _Child, pgid: int, grace: float) -> None:
    """SIGTERM the group, wait up to ``grace`` for all of it, then SIGKILL and reap.

    Returns at once (two syscalls) when the leader has exited and nothing else is left in the group,
    which is the normal end of a step. SIGCONT follows SIGTERM so stopped members can act on it.
    The leader is signalled before it is reaped, so its pid (== pgid) cannot have been recycled.
    """
    if proc.returncode is not None and not _group_alive(pgid):
        return
    if _killpg(pgid, signal.SIGTERM):
        _killpg(pgid, signal.SIGCONT)
    with trio.move_on_after(grace):
        await proc.wait()
        await _wait_group_gone(pgid)
        return
    log.info("process group %d outlived its %.1fs grace; sending SIGKILL", pgid, grace)
    _killpg(pgid, signal.SIGKILL)
    with trio.move_on_after(_KILL_WAIT):
        await proc.wait()
        await _wait_group_gone(pgid)
        return
    log.warning("process group %d did not die within %.1fs of SIGKILL", pgid, _KILL_WAIT)


class _Lines:
    """Splits one stream's bytes into lines for ``on_output`` (a line longer than
    :data:`MAX_LINE_BYTES` is delivered in pieces; undecodable bytes are replaced)."""

    def __init__(self, name: str, on_output: Callable[[str, str], None]) -> None:
        self.name = name
        self.on_output = on_output
        self.buf = bytearray()

    def feed(self, chunk: bytes) -> None:
        buf, name, on_output = self.buf, self.name, self.on_output
        buf += chunk
        start = 0
        while True:
            nl = buf.find(b"\n", start)
            if nl < 0:
                break
            on_output(name, buf[start:nl].decode("utf-8", "replace"))
            start = nl + 1
        del buf[:start]
        while len(buf) >= MAX_LINE_BYTES:
            on_output(name, buf[:MAX_LINE_BYTES].decode("utf-8", "replace"))
            del buf[:MAX_LINE_BYTES]

    def end(self) -> None:
        """EOF: a trailing line without a newline is delivered too."""
        if self.buf:
            self.on_output(self.name, self.buf.decode("utf-8", "replace"))
            self.buf.clear()


def _read_ready(fd: int, lines: _Lines) -> bool:
    """Read what ``fd`` holds without waiting; True at EOF (``lines`` ended), False if the
    pipe is empty but still open (someone else still holds its write end)."""
    while True:
        try:
            chunk = os.read(fd, MAX_LINE_BYTES)
        except BlockingIOError:
            return False
        if not chunk:
            lines.end()
            return True
        lines.feed(chunk)


async def _pump(
    fd: int,
    lines: _Lines,
    scope: trio.CancelScope,
    errors: list[BaseException],
    on_error: Callable[[], None],
) -> None:
    """Read the pipe ``fd`` to EOF, hand each complete line to ``lines``, then close ``fd``.

    Runs in a shielded scope so output produced while the group is being killed is still delivered;
    the caller bounds it with ``scope.deadline`` once the group is gone. Reads the raw fd
    (``os.read`` + ``wait_readable``) rather than through a trio stream: this runs twice per step
    and the stream layer's bookkeeping is a visible share of a trivial step's cost.
    """
    try:
        with scope:
            try:
                while not _read_ready(fd, lines):
                    await trio.lowlevel.wait_readable(fd)
            except Exception as exc:
                errors.append(exc)
                on_error()
    finally:
        trio.lowlevel.notify_closing(fd)
        os.close(fd)


async def run_shell(
    command: str,
    *,
    cwd: Path,
    env: Mapping[str, str],
    on_output: Callable[[str, str], None] | None,
    on_spawn: Callable[[ProcessInfo], Awaitable[None]] | None = None,
    on_running: Callable[[ProcessInfo], Awaitable[None]] | None = None,
    running_after: float = 0.0,
    on_ended: Callable[[ProcessInfo], None] | None = None,
    grace: float = 10.0,
    shell_prefix: str = DEFAULT_SHELL_PREFIX,
    output_fd: int | None = None,
    drain_timeout: float = 2.0,
    shell: str = "bash",
    inline_ok: Callable[[], bool] | None = None,
) -> int:
    """Run ``bash -c "<shell_prefix><command>"`` as its own session and process group; return its
    exit code (``-N`` if bash was killed by signal ``N``, see :func:`reference_exit_code`). A
    command that is one simple command is spawned directly, as bash would exec it
    (:mod:`.direct_exec`).

    Output, pick one:

    * ``on_output(stream, line)`` — stdout and stderr are read through pipes and delivered line
      by line (``stream`` is ``"stdout"`` or ``"stderr"``; order is kept within each stream, not
      across them). The callback is synchronous so lines cannot be reordered; keep it cheap.
    * ``output_fd`` — an fd (ideally opened ``O_APPEND``) the child writes to directly for both
      streams, with no Python in between. Cheapest, but the bytes are raw: no per-line prefix.
    * neither — output goes to ``/dev/null``.

    The shell's :class:`ProcessInfo` (pid, pgid, start ticks) is handed out three ways:

    * ``on_spawn(info)`` is awaited right after the spawn. Its start ticks are read at once,
      which can wait ≈ 1 ms for the child's exec to finish (see :class:`_Child`).
    * ``on_running(info)`` is awaited once the shell has run for ``running_after`` seconds, and
      never for a shell that ends sooner.
    * ``on_ended(info)`` is called once the shell has ended and been reaped (exited, killed on
      cancel, or killed because a callback failed), before ``run_shell`` returns or raises.

    The runtime makes a long step's info durable in ``on_running`` and puts a short step's
    (from ``on_ended``) into the commit of its exit, so a trivial step pays one durable commit,
    not two. If ``on_spawn`` or ``on_running`` raises, the step is killed and the error
    propagates.

    When the leader exits, whatever it left behind in its group (background jobs it did not wait
    for) is terminated the same way as on cancel: a step's lifetime is its shell's lifetime, as in
    CI runners. Output is then drained for at most ``drain_timeout`` seconds (a process that escaped
    the group with ``setsid`` could otherwise hold the pipe open forever).

    ``inline_ok`` tells whether the spawn may block the event loop now (see :func:`_spawn`).

    Cancellation: the group gets SIGTERM (+SIGCONT), up to ``grace`` seconds to exit, then SIGKILL;
    the leader is reaped and output drained — all shielded — and only then does ``trio.Cancelled``
    propagate. Raises :class:`ProcessSpawnError` if the shell cannot be started.
    """
    if on_output is not None and output_fd is not None:
        raise ValueError("run_shell: pass on_output or output_fd, not both")
    # Pipes are made here rather than by trio (``subprocess.PIPE``) so the pumps can read the raw
    # fds. Both ends are close-on-exec; the child gets its write ends through dup2 onto 1 and 2.
    readers: list[tuple[int, str]] = []
    writers: list[int] = []
    if on_output is not None:
        for name in ("stdout", "stderr"):
            r, w = os.pipe()
            os.set_blocking(r, False)
            readers.append((r, name))
            writers.append(w)
        out, err = writers
    elif output_fd is not None:
        out = err = output_fd
    else:
        out = err = _devnull()
    argv = [shell, "-c", shell_prefix + command]
    # One simple command is exec'd by bash anyway: spawn it directly (see direct_exec).
    direct = (
        direct_command(command, env, cwd)
        if shell == "bash" and shell_prefix == DEFAULT_SHELL_PREFIX
        else None
    )
    try:
        proc = None
        if direct is not None:
            # On failure bash says why (and runs a script without "#!", as it does).
            with contextlib.suppress(OSError):
                proc = await _spawn(
                    direct.argv,
                    executable=direct.executable,
                    stdin=_devnull(),
                    stdout=out,
                    stderr=err,
                    cwd=cwd,
                    env=direct.env,
                    inline_ok=inline_ok,
                )
        if proc is None:
            proc = await _spawn(
                argv,
                stdin=_devnull(),
                stdout=out,
                stderr=err,
                cwd=cwd,
                env=env,
                inline_ok=inline_ok,
            )
    except BaseException as exc:  # no process to read from (or a lost helper may have one)
        for r, _ in readers:
            os.close(r)
        if isinstance(exc, ValueError):  # a NUL byte in the command, env or cwd
            raise ProcessSpawnError(f"cannot start shell step: {exc}") from exc
        if isinstance(exc, OSError):
            raise _spawn_error(exc, shell, cwd) from exc
        raise
    finally:
        # Only the child may hold the write ends, or the pumps would never see EOF.
        for w in writers:
            os.close(w)

    # setsid() in the child made it the leader of a new group whose id is its pid.
    pgid = proc.pid
    proc.keep_ticks = on_ended is not None

    def info() -> ProcessInfo:
        return ProcessInfo(pid=proc.pid, pgid=pgid, start_ticks=proc.start_ticks())

    wait_scope = trio.CancelScope()
    pump_scopes: list[trio.CancelScope] = []
    pump_errors: list[BaseException] = []
    unread = [(fd, _Lines(name, on_output)) for fd, name in readers] if on_output else []
    failure: BaseException | None = None
    try:
        async with trio.open_nursery() as nursery:

            def start_pumps() -> None:
                for fd, lines in unread:
                    scope = trio.CancelScope(shield=True)
                    pump_scopes.append(scope)
                    nursery.start_soon(_pump, fd, lines, scope, pump_errors, wait_scope.cancel)
                unread.clear()

            # Exceptions (Cancelled included) are caught here and re-raised after the nursery: a
            # nursery would wrap them in an ExceptionGroup, and callers expect a bare Cancelled.
            try:
                with wait_scope:
                    running_at = trio.current_time() + running_after
                    if on_spawn is not None:
                        start_pumps()  # on_spawn may take a while: never hold output back
                        await on_spawn(info())
                    if unread:
                        # Most steps of a busy daemon end within milliseconds: their output is
                        # then read straight from the pipes after the exit, sparing two reader
                        # tasks and their epoll registrations. A step that lives longer (or
                        # fills a pipe meanwhile) gets its readers after PUMP_DELAY.
                        with trio.move_on_after(PUMP_DELAY):
                            await proc.wait()
                        if proc.popen.returncode is None:
                            start_pumps()
                    if on_running is not None and proc.popen.returncode is None:
                        with trio.move_on_at(running_at):
                            await proc.wait()
                        if proc.popen.returncode is None:
                            await on_running(info())
                    await proc.wait()
                await _terminate_group(proc, pgid, grace)
            except BaseException as exc:
                failure = exc
            if failure is not None or proc.returncode is None or wait_scope.cancelled_caught:
                with trio.CancelScope(shield=True):
                    await _terminate_group(proc, pgid, grace)
            # The group is gone: what the pipes hold is all there is, unless a process that
            # escaped the group keeps a write end open; only then is a reader needed.
            pending, unread[:] = list(unread), []
            for fd, lines in pending:
                try:
                    at_eof = _read_ready(fd, lines)
                except Exception as exc:
                    pump_errors.append(exc)
                    at_eof = True
                if at_eof:
                    os.close(fd)
                else:
                    unread.append((fd, lines))
            start_pumps()
            deadline = trio.current_time() + drain_timeout
            for scope in pump_scopes:
                scope.deadline = min(scope.deadline, deadline)
    finally:
        proc.close()
        for fd, _lines in unread:  # only if something above raised before the drain
            os.close(fd)
    if on_ended is not None and proc.popen.returncode is not None:
        on_ended(info())
    if failure is not None:
        raise failure
    if pump_errors:
        raise pump_errors[0]
    assert proc.returncode is not None
    return proc.returncode
