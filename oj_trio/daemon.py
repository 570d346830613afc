"""`ojd`: the daemon process — lock, log marker, replay, bind, sd_notify, signals, shutdown.

Startup order matters (reference §6.3, SPEC §3):

1. append ``--- ojd: starting (pid: N)`` to ``daemon.log`` so a client can find *this* start's
   errors;
2. take an exclusive non-blocking lock on ``daemon.pid`` **before** touching the socket: a second
   daemon must exit without disturbing the first (anyio's listener unlinks an existing socket);
3. replay snapshot + WAL (a corrupt history is an error, never an empty state);
4. bind ``daemon.sock`` (0600), print ``READY``, send ``READY=1`` to systemd;
5. serve until SIGTERM/SIGINT or a ``Shutdown`` request, then drain, flush, snapshot, clean up.

Any failure after the lock is logged as ``ERROR Failed to start daemon: …`` (the client shows
it), the files are removed, and the exit status is non-zero.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import fcntl
import gc
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from . import paths
from ._version import __version__
from .errors import OjError

log = logging.getLogger("oj.daemon")

LOG_FORMAT = "%(asctime)s.%(msecs)03dZ %(levelname)s %(name)s: %(message)s"

#: Allocations between two collections of the youngest generation (Python's default: 700).
GC_YOUNG_THRESHOLD = 10_000


def get_parser() -> argparse.ArgumentParser:
    """`ojd`'s (small) command line; also the source of the ojd.8 man page."""
    parser = argparse.ArgumentParser(
        prog="ojd",
        description=(
            "The oj daemon: owns all state, runs pipelines and workers, and appends every change "
            "to a write-ahead log. Usually started by `oj` on demand or by systemd."
        ),
        epilog=(
            "Environment: OJ_STATE_DIR (state directory, default $XDG_STATE_HOME/oj or "
            "~/.local/state/oj), OJ_STOP_GRACE_MS (grace for running steps on stop, default 10000), "
            "OJ_STEP_KILL_GRACE_MS (SIGTERM to SIGKILL for a cancelled step's process group, "
            "default 5000), OJ_LOG (log level, default INFO), "
            "NOTIFY_SOCKET and WATCHDOG_USEC (systemd)."
        ),
    )
    parser.add_argument("-v", "-V", "--version", action="version", version=f"ojd {__version__}")
    parser.add_argument(
        "--foreground",
        action="store_true",
        help="run in the foreground (the default; ojd never forks itself)",
    )
    return parser


def _parse_args(argv: Sequence[str]) -> argparse.Namespace:
    argv = list(argv)
    if argv and argv[0] == "help":
        argv[0] = "--help"
    parser = get_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        print(f"error: unexpected argument '{unknown[0]}'", file=sys.stderr)
        print("Usage: ojd [--help | --version | --foreground]", file=sys.stderr)
        raise SystemExit(1)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    _parse_args(sys.argv[1:] if argv is None else argv)
    state = paths.state_dir()
    code = run(state)
    if argv is None:
        sys.exit(code)
    return code


def _setup_logging(log_file: Path) -> None:
    # The daemon logs a line or two per pipeline: skip what LOG_FORMAT never shows (the caller's
    # file and line, thread and process names), as the logging HOWTO's "Optimization" advises.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.FileHandler(log_file, encoding="utf-8")
    formatter = logging.Formatter(LOG_FORMAT, datefmt="%Y-%m-%dT%H:%M:%S")
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    level = os.environ.get("OJ_LOG", "INFO").upper()
    root.setLevel(getattr(logging, level, logging.INFO))


class PidLock:
    """The exclusive lock on ``daemon.pid`` that makes this process *the* daemon."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None

    def acquire(self) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                return False
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd
        return True

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _already_running(state: Path) -> None:
    try:
        pid = paths.pid_path(state).read_text().strip() or "unknown"
    except OSError:
        pid = "unknown"
    try:
        version = paths.version_path(state).read_text().strip()
    except OSError:
        version = "unknown"
    if version not in ("unknown", __version__):
        version = f"{version} (outdated — current: {__version__})"
    print("ojd is already running", file=sys.stderr)
    print(f"  pid: {pid}", file=sys.stderr)
    print(f"  version: {version}", file=sys.stderr)


def run(state: Path) -> int:
    """Run the daemon for ``state`` until it is told to stop; return the exit status."""
    try:
        state.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(state, 0o700)
        log_file = paths.log_path(state)
        with open(log_file, "a", encoding="utf-8") as fh:
            fh.write(f"--- ojd: starting (pid: {os.getpid()})\n")
    except OSError as exc:
        print(f"ojd: cannot use state directory {state}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    _setup_logging(log_file)

    lock = PidLock(paths.pid_path(state))
    try:
        if not lock.acquire():
            _already_running(state)
            return 1
    except OSError as exc:
        log.error("Failed to start daemon: cannot lock %s: %s", paths.pid_path(state), exc)
        return 1

    try:
        import trio

        from .server import Daemon

        for sub in (paths.wal_dir(state), paths.workspaces_dir(state), paths.logs_dir(state)):
            sub.mkdir(parents=True, exist_ok=True, mode=0o700)
        version_file = paths.version_path(state)
        version_file.write_text(__version__)
        daemon = Daemon.open(state)
    except (OjError, OSError) as exc:
        log.error("Failed to start daemon: %s", exc)
        _cleanup(state, lock)
        return 1
    except Exception as exc:
        log.exception("Failed to start daemon: %s", exc)
        _cleanup(state, lock)
        return 1

    # The replayed state and every module stay for the daemon's life: keep them out of the
    # cyclic collector's scans, and let young objects pile up ten times longer before a scan.
    # A daemon running 1,000 jobs otherwise spent ≈ 9 % of its loop in 200+ collections;
    # after this, ≈ 1 % (bench/HISTORY.md, "Spawning on and off the loop"). Garbage without
    # cycles is freed by reference counting either way.
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
    try:
        code = trio.run(daemon.serve)
    except BaseException as exc:  # also KeyboardInterrupt escaping trio: never leave files behind
        # trio's nurseries wrap errors in (strict) exception groups; look through a group of one
        # so that e.g. a bind failure is logged as the plain error the client shows the user.
        leaf = _single_leaf(exc)
        if isinstance(leaf, OjError | OSError) and daemon.ready:
            log.error("Daemon stopped on an error: %s", leaf)
        elif isinstance(leaf, OjError | OSError):
            log.error("Failed to start daemon: %s", leaf)
        else:
            log.exception("daemon crashed: %s", exc)
        code = 1
    finally:
        _cleanup(state, lock)
    log.info("ojd stopped (exit %d)", code)
    return code


def _single_leaf(exc: BaseException) -> BaseException:
    """The one exception inside nested single-member exception groups (else ``exc`` itself)."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def _cleanup(state: Path, lock: PidLock) -> None:
    for path in (paths.socket_path(state), paths.version_path(state), paths.pid_path(state)):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    lock.release()


if __name__ == "__main__":
    main()
