"""Blocking Unix-socket client for `ojd`: one request per connection, daemon auto-start, stop.

Stdlib-only (socket, struct, json, fcntl, subprocess): every `oj` invocation imports this, so it
must cost next to nothing. Three flavours, as in reference §6.9:

* **query** commands connect only; no daemon means `Daemon not running`.
* **action** commands make sure a daemon of the right version runs (starting one if needed).
* ``oj daemon stop`` asks for a graceful shutdown and escalates to SIGKILL only after the drain
  deadline (stop grace + exit timeout).

Liveness is judged by the daemon's lock on ``daemon.pid`` rather than by ``kill(pid, 0)``: a lock
cannot be fooled by PID reuse or by a zombie waiting to be reaped.

An ``Error`` reply is re-raised as the ``OjError`` subclass its ``kind`` names, with the daemon's
text and exit code (``protocol.exception_from``), so ``oj`` exits with the status the daemon-side
error's class carries. Replies come back as read-only ``Mapping``s: the typed shapes are in
:mod:`oj_trio.messages` (``messages.Response``) for callers that want to narrow them (under
``TYPE_CHECKING`` only: the client never imports that package at run time).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import paths, protocol
from ._version import __version__
from .errors import DaemonError
from .settings import env_seconds

if TYPE_CHECKING:
    import subprocess
    from collections.abc import Mapping

# subprocess and shutil are imported where used: together they cost more start-up time than
# the whole round trip of a query command, and only the auto-start path needs them.

STARTING_MARKER = "--- ojd: starting (pid: "


class DaemonNotRunning(DaemonError):
    """No daemon answers; query commands report this instead of starting one."""


class Client:
    """Talks to the daemon whose state lives in ``state_dir``."""

    def __init__(self, env: dict[str, str] | os._Environ[str] | None = None) -> None:
        self.env = os.environ if env is None else env
        self.state_dir = paths.state_dir(self.env)
        self.socket = paths.socket_path(self.state_dir)
        self.pid_file = paths.pid_path(self.state_dir)
        self.version_file = paths.version_path(self.state_dir)
        self.log_file = paths.log_path(self.state_dir)
        self.ipc_timeout = env_seconds("OJ_TIMEOUT_IPC_MS", 5000, self.env)
        self.connect_timeout = env_seconds("OJ_TIMEOUT_CONNECT_MS", 5000, self.env)
        self.exit_timeout = env_seconds("OJ_TIMEOUT_EXIT_MS", 2000, self.env)
        self.poll = env_seconds("OJ_CONNECT_POLL_MS", 50, self.env)
        self.stop_grace = env_seconds("OJ_STOP_GRACE_MS", 10000, self.env)
        self._restarted = False

    # -- raw round trip -------------------------------------------------------------------

    def send(
        self, message: Mapping[str, Any], *, timeout: float | None = None
    ) -> Mapping[str, Any]:
        """One request, one response (an ``Error`` one included). Raises DaemonNotRunning if
        nothing listens."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.ipc_timeout if timeout is None else timeout)
        try:
            try:
                sock.connect(str(self.socket))
            except (FileNotFoundError, ConnectionRefusedError) as exc:
                raise DaemonNotRunning("Daemon not running") from exc
            except OSError as exc:
                raise DaemonError(
                    f"cannot connect to {self.socket}: {exc.strerror or exc}"
                ) from exc
            try:
                sock.sendall(protocol.encode_frame(message))
                length = protocol.decode_length(_recv_exactly(sock, protocol.HEADER_SIZE))
                response = protocol.decode_body(_recv_exactly(sock, length))
            except TimeoutError:
                raise DaemonError("timed out waiting for the daemon's answer") from None
            except (ConnectionResetError, BrokenPipeError, EOFError):
                raise DaemonError("the daemon closed the connection before answering") from None
        finally:
            sock.close()
        return response

    def call(
        self, message: Mapping[str, Any], *, action: bool = False, timeout: float | None = None
    ) -> Mapping[str, Any]:
        """Send a request and turn an ``Error`` response into the exception its ``kind`` names.

        With ``action=True`` a daemon is started (or restarted on version mismatch) first.
        """
        if action:
            self.ensure_running()
        response = self.send(message, timeout=timeout)
        if response.get("type") == "Error":
            raise protocol.exception_from(response)
        return response

    def query(self, tag: str, **fields: object) -> Mapping[str, Any]:
        return self.call(protocol.query(tag, **fields))

    # -- liveness -------------------------------------------------------------------------

    def answers(self) -> bool:
        """Whether a daemon listens on the socket right now (one Ping)."""
        try:
            self.send(protocol.request("Ping"))
        except DaemonNotRunning:
            return False
        return True

    def daemon_alive(self) -> bool:
        """True while some process holds the lock on ``daemon.pid``."""
        try:
            fd = os.open(self.pid_file, os.O_RDONLY)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                return True
            raise
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return False
        finally:
            os.close(fd)

    def daemon_pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def daemon_version(self) -> str | None:
        try:
            return self.version_file.read_text().strip()
        except OSError:
            return None

    # -- auto-start -----------------------------------------------------------------------

    def ensure_running(self) -> None:
        """Make sure a daemon of our version answers, starting or restarting it if needed."""
        version = self.daemon_version()
        if (
            version is not None
            and version != __version__
            and not self._restarted
            and self.daemon_alive()
        ):
            print(
                f"warn: daemon version {version} does not match cli version {__version__}, restarting daemon",
                file=sys.stderr,
            )
            self._restarted = True
            # Same drain as `oj daemon stop`: running steps get their grace before any SIGKILL.
            self._terminate(self.stop_grace + self.exit_timeout)
        if self.socket.exists():
            if self.answers():
                return
            if self.daemon_alive():
                # A daemon holds the lock but does not answer yet: it is starting. Wait for it.
                self._wait_for_socket(None)
                return
            self._clean_stale()
        elif self.daemon_alive():
            self._wait_for_socket(None)
            return
        self.start()

    def _clean_stale(self) -> None:
        for path in (self.socket, self.pid_file, self.version_file):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def daemon_command(self) -> list[str]:
        """`OJ_DAEMON_BINARY`, else the `ojd` beside this `oj`, else on PATH, else `python -m`."""
        explicit = self.env.get("OJ_DAEMON_BINARY")
        if explicit:
            return [explicit]
        for directory in (Path(sys.argv[0]).parent, Path(sys.executable).parent):
            candidate = directory / "ojd"
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return [str(candidate)]
        import shutil

        found = shutil.which("ojd")
        if found:
            return [found]
        return [sys.executable, "-m", "oj_trio.daemon"]

    def start(self) -> None:
        """Spawn a detached daemon and wait until it answers."""
        import subprocess

        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        log_offset = self._log_size()
        try:
            child = subprocess.Popen(
                self.daemon_command(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
                env=dict(self.env),
                close_fds=True,
            )
        except OSError as exc:
            raise DaemonError(f"Failed to start daemon: {exc.strerror or exc}") from None
        self._wait_for_socket(child, log_offset)

    def _wait_for_socket(self, child: subprocess.Popen[bytes] | None, log_offset: int = 0) -> None:
        deadline = time.monotonic() + self.connect_timeout
        while True:
            if self.socket.exists() and self.answers():
                return
            if child is not None:
                status = child.poll()
                if status is not None:
                    error = self._wait_for_startup_error(log_offset)
                    raise DaemonError(
                        f"Failed to start daemon: {error or f'exited with status {status}'}"
                    )
            if time.monotonic() >= deadline:
                error = self.startup_error(log_offset)
                if error:
                    raise DaemonError(f"Failed to start daemon: {error}")
                raise DaemonError("Connection timeout waiting for daemon to start")
            time.sleep(self.poll)

    def _log_size(self) -> int:
        try:
            return self.log_file.stat().st_size
        except OSError:
            return 0

    def _wait_for_startup_error(self, log_offset: int) -> str | None:
        deadline = time.monotonic() + self.exit_timeout
        while True:
            error = self.startup_error(log_offset)
            if error or time.monotonic() >= deadline:
                return error
            time.sleep(self.poll)

    def startup_error(self, log_offset: int = 0) -> str | None:
        """ERROR lines the daemon logged after its last startup marker, one per line."""
        try:
            with open(self.log_file, "rb") as fh:
                fh.seek(log_offset)
                text = fh.read().decode("utf-8", "replace")
        except OSError:
            return None
        marker = text.rfind(STARTING_MARKER)
        if marker < 0:
            return None
        errors = []
        for line in text[marker:].splitlines():
            if " ERROR " in line or "Failed to start" in line:
                _, sep, rest = line.partition("Failed to start daemon: ")
                if not sep:
                    rest = line.split(" ERROR ", 1)[-1]
                errors.append(rest.strip())
        return "\n".join(errors) or None

    # -- stop -----------------------------------------------------------------------------

    def stop(self, *, kill: bool = False) -> bool:
        """Graceful shutdown; True if a daemon was running.

        Waits for the drain (stop grace + exit timeout), then escalates to SIGKILL.
        """
        if not self.socket.exists() and not self.daemon_alive():
            self._clean_stale()
            return False
        try:
            self.send(protocol.request("Shutdown", kill=kill or None))
        except DaemonNotRunning:
            if not self.daemon_alive():
                self._clean_stale()
                return False
        except DaemonError:
            pass  # it may have died mid-answer; the wait below decides
        if not self._wait_exit(self.stop_grace + self.exit_timeout):
            self._terminate(0, sig=signal.SIGKILL)
        return True

    def _wait_exit(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.daemon_alive():
            if time.monotonic() >= deadline:
                return False
            time.sleep(min(self.poll, 0.02))
        return True

    def _terminate(self, timeout: float, *, sig: int = signal.SIGTERM) -> None:
        """Signal the daemon, wait for its lock to drop, SIGKILL if it will not go."""
        pid = self.daemon_pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
            if not self._wait_exit(timeout) and sig != signal.SIGKILL:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
                self._wait_exit(self.exit_timeout)
            elif sig == signal.SIGKILL:
                self._wait_exit(self.exit_timeout)
        if not self.daemon_alive():
            self._clean_stale()


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    chunks = []
    remaining = n
    while remaining:
        chunk = sock.recv(min(remaining, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)
