"""The spawner: a small helper process that starts the daemon's step processes and reaps them.

Why it exists: starting a process from Python costs the calling thread ≈ 0.1 ms of interpreter
work plus the wait until the child has called ``exec`` (``vfork``), ≈ 0.2–0.3 ms on a quiet
machine and milliseconds on a busy one. On ojd's event loop that is time no other pipeline gets,
and a worker thread is worse (each hand-off waits for the GIL and for a core). This process does
that work on another core: ojd sends it one message per spawn and carries on.

It spawns with ``posix_spawn`` (``vfork`` + ``exec`` in the C library) after a ``chdir`` of its
own (it has one thread, so its working directory is its own business), and reaps its children
as they end, reporting each exit with the start time ``/proc`` gave the process (read before the
reap, so the daemon can still tell the process from a later one with the same pid).

The protocol, over a ``SOCK_SEQPACKET`` socket pair (one message per datagram, ``marshal``):

* ojd → helper: ``(token, executable, argv, env, cwd)`` with the child's stdin, stdout and
  stderr as ``SCM_RIGHTS``. ``executable`` is a path or None (then ``argv[0]`` is searched on
  the ``PATH`` of ``env``, as ``subprocess`` does).
* helper → ojd: ``("ready",)`` once, first; ``("spawned", token, pid, stage, errno, detail)``:
  ``stage`` is ``""`` when the child runs, else where it failed (``"chdir"``, ``"exec"``, or
  ``"invalid"``: what ``posix_spawn`` refuses with ``ValueError``, e.g. a NUL byte, with its
  text as ``detail``; no process was made);
  ``("exited", pid, status, start_ticks)``: a child ended and was reaped (``status`` as from
  ``waitpid``).

The helper exits when ojd's end of the socket closes; its children are then re-parented as a
crashed daemon's are. Deliberately minimal (stdlib only, no oj imports): it starts in ≈ 20 ms.
"""

from __future__ import annotations

import array
import contextlib
import errno
import marshal
import os
import select
import signal
import socket
import sys

#: The largest request: an environment of up to ~1 MB.
MAX_MESSAGE = 1 << 20
#: What the daemon's process group gets from a terminal or a supervisor (Ctrl-C, a hangup, a
#: stop sent to the group): ojd handles these itself (a graceful drain, or a shrug for SIGHUP),
#: and its helper must outlive that drain for the steps it started; it ends when ojd's socket
#: closes.
DAEMONS_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
#: What Python ignores (or we do), a program expects at its default, as subprocess restores it.
DEFAULT_SIGNALS = (signal.SIGPIPE, signal.SIGXFSZ, *DAEMONS_SIGNALS)


def main(fd: int) -> int:
    sock = socket.socket(fileno=fd)
    # Inherited through pass_fds, so inheritable: the steps must not hold it (our exit would
    # then never reach ojd as the end of the socket).
    sock.set_inheritable(False)
    for signum in DAEMONS_SIGNALS:  # the daemon's business (see DAEMONS_SIGNALS)
        signal.signal(signum, signal.SIG_IGN)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda _signum, _frame: None)
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    poller.register(wake_r, select.POLLIN)
    _send(sock, ("ready",))  # until this arrives, ojd sends nothing (a helper that cannot start
    # must not take a step with it)
    while True:
        for ready, _events in poller.poll():
            if ready == wake_r:
                os.read(wake_r, 4096)
                _reap(sock)
            elif not _serve(sock):
                return 0
        _reap(sock)  # a SIGCHLD may land between the poll and its handler


def _serve(sock: socket.socket) -> bool:
    """One request; False when ojd has gone."""
    try:
        message, fds = _receive(sock)
    except InterruptedError:
        return True
    except ConnectionError:
        return False
    if not message:
        return False
    token, executable, argv, env, cwd = marshal.loads(message)
    detail = ""
    try:
        pid, stage, number = _spawn(executable, argv, env, cwd, fds)
    except ValueError as exc:  # a NUL byte, a "=" in a name: this spawn's fault, not ours
        pid, stage, number, detail = 0, "invalid", errno.EINVAL, str(exc)
    finally:
        for child_fd in fds:
            os.close(child_fd)
        with contextlib.suppress(OSError):
            os.chdir("/")  # hold no step's directory (a workspace being deleted, a mount)
    _send(sock, ("spawned", token, pid, stage, number, detail))
    return True


def _receive(sock: socket.socket) -> tuple[bytes, list[int]]:
    """One request and its descriptors, close-on-exec: only the dup2s give them to the child.

    Not ``socket.recv_fds``: it drops its ``flags`` (MSG_CMSG_CLOEXEC), so every step inherited
    copies of its stdin, stdout and stderr beside 0-2.
    """
    fds = array.array("i")
    message, ancdata, _flags, _addr = sock.recvmsg(
        MAX_MESSAGE, socket.CMSG_LEN(3 * fds.itemsize), socket.MSG_CMSG_CLOEXEC
    )
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
    return message, list(fds)


def _spawn(
    executable: str | None, argv: list[str], env: dict[str, str], cwd: str, fds: list[int]
) -> tuple[int, str, int]:
    try:
        os.chdir(cwd)
    except OSError as exc:
        return 0, "chdir", exc.errno or errno.EIO
    actions = [(os.POSIX_SPAWN_DUP2, source, target) for target, source in enumerate(fds)]
    if executable is not None or "/" in argv[0]:
        candidates = [executable or argv[0]]
    else:
        # Only the directories that have it: a failed posix_spawn costs a whole vfork.
        candidates = [
            path
            for path in (os.path.join(d, argv[0]) for d in os.get_exec_path(env))
            if os.path.isfile(path)
        ]
    # As execvp: the first program that runs; else the first error that is not "not there".
    failure = 0
    for path in candidates:
        try:
            pid = os.posix_spawn(
                path, argv, env, file_actions=actions, setsid=True, setsigdef=DEFAULT_SIGNALS
            )
        except OSError as exc:
            number = exc.errno or errno.EIO
            if number not in (errno.ENOENT, errno.ENOTDIR) and not failure:
                failure = number
            continue
        return pid, "", 0
    return 0, "exec", failure or errno.ENOENT


def _reap(sock: socket.socket) -> None:
    while True:
        try:
            info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return
        if info is None:
            return
        pid = info.si_pid
        ticks = _start_ticks(pid)  # still a zombie: /proc has it
        _pid, status = os.waitpid(pid, 0)
        _send(sock, ("exited", pid, status, ticks))


def _start_ticks(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return int(f.read().rsplit(b")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _send(sock: socket.socket, message: tuple[str | int | None, ...]) -> None:
    with contextlib.suppress(OSError):  # ojd has gone: the next receive says so
        sock.send(marshal.dumps(message))


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1])))
