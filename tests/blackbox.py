"""Black-box harness: a real `ojd` in a short, isolated state dir, driven by the real `oj`.

State dirs live directly under /tmp with a short random name so the socket path stays far
below the 108-byte `sun_path` limit whatever pytest's tmp_path looks like.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

BIN = Path(sys.executable).parent
OJ = str(BIN / "oj")
OJD = str(BIN / "ojd")

T = TypeVar("T")


def wait_for(
    predicate: Callable[[], T], *, timeout: float = 15.0, interval: float = 0.02, what: str = ""
) -> T:
    """Poll until ``predicate()`` is truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)


class OjEnv:
    """One isolated oj world: a state dir, a project dir, an environment."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.state = root / "s"
        self.project = root / "p"
        (self.project / ".oj" / "runbooks").mkdir(parents=True)
        self.env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("OJ_", "NOTIFY_SOCKET", "WATCHDOG_"))
        }
        self.env.update(
            {
                "OJ_STATE_DIR": str(self.state),
                "OJ_DAEMON_BINARY": OJD,
                "OJ_TIMEOUT_CONNECT_MS": "10000",
                "OJ_TIMEOUT_EXIT_MS": "5000",
                "OJ_TIMEOUT_IPC_MS": "10000",
                "OJ_CONNECT_POLL_MS": "10",
                "OJ_WAIT_POLL_MS": "50",
                "OJ_RUN_WAIT_MS": "5000",
                "OJ_STOP_GRACE_MS": "3000",
            }
        )

    def runbook(self, name: str, text: str) -> Path:
        """Write `.oj/runbooks/<name>` (dedented) and return its path."""
        path = self.project / ".oj" / "runbooks" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        return path

    def oj(
        self,
        *args: str,
        cwd: Path | None = None,
        input: str | None = None,
        timeout: float = 60,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run `oj ARGS` and return the completed process (never raises on exit status)."""
        return subprocess.run(
            [OJ, *args],
            cwd=cwd or self.project,
            env={**self.env, **(env or {})},
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def ok(self, *args: str, **kw: Any) -> str:
        """Run `oj ARGS`, assert exit 0, return stdout."""
        result = self.oj(*args, **kw)
        assert result.returncode == 0, (
            f"oj {' '.join(args)} -> {result.returncode}\n{result.stdout}\n{result.stderr}"
        )
        return result.stdout

    def json(self, *args: str, **kw: Any) -> Any:
        import json

        return json.loads(self.ok(*args, "-o", "json", **kw))

    def run_pipeline(self, *args: str) -> str:
        """`oj run ARGS`; return the new pipeline's full id."""
        out = self.ok("run", *args)
        for line in out.splitlines():
            if line.strip().startswith("oj pipeline show "):
                short = line.split()[-1]
                return self.pipeline(short)["id"]
        raise AssertionError(f"no pipeline id in output:\n{out}")

    def pipeline(self, pid: str) -> dict[str, Any]:
        detail = self.json("pipeline", "show", pid)
        assert detail is not None, f"pipeline {pid} not found"
        return detail

    def wait_step(self, pid: str, step: str, *, timeout: float = 20.0) -> dict[str, Any]:
        return wait_for(
            lambda: (d := self.pipeline(pid)) and d["step"] == step and d,
            timeout=timeout,
            what=f"pipeline {pid[:8]} to reach step {step}",
        )

    def wait_status(self, pid: str, status: str, *, timeout: float = 20.0) -> dict[str, Any]:
        return wait_for(
            lambda: (d := self.pipeline(pid)) and d["step_status"] == status and d,
            timeout=timeout,
            what=f"pipeline {pid[:8]} to be {status}",
        )

    def daemon_pid(self) -> int | None:
        try:
            return int((self.state / "daemon.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def kill_daemon(self) -> None:
        """SIGKILL the daemon (crash test) and wait until its lock is gone."""
        pid = self.daemon_pid()
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not _alive(pid), what="daemon to die")

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.oj("daemon", "stop", timeout=30)
        pid = self.daemon_pid()
        if pid is not None and _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        _kill_leftovers(self.state)


def _kill_leftovers(state: Path) -> None:
    """SIGKILL processes still carrying this world's OJ_STATE_DIR (steps orphaned by a test that
    failed after killing the daemon), so a broken test never leaks `sleep 300`s."""
    needle = f"OJ_STATE_DIR={state}\0".encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as fh:
                environ = fh.read()
        except OSError:
            continue
        if needle in environ:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(entry), signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@contextlib.contextmanager
def oj_env() -> Iterator[OjEnv]:
    root = Path(tempfile.mkdtemp(prefix="oj", dir="/tmp"))
    env = OjEnv(root)
    try:
        yield env
    finally:
        env.stop()
        shutil.rmtree(root, ignore_errors=True)


def pids_with(marker: str) -> list[int]:
    """Live (non-zombie) processes whose command line contains ``marker``."""
    found = []
    needle = marker.encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmdline = fh.read()
        except OSError:
            continue
        if needle in cmdline and _alive(int(entry)):
            found.append(int(entry))
    return found


class LineReader:
    """Collects a child's stdout lines on a thread, so tests can wait for one with a deadline."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        import threading

        self.proc = proc
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._lock:
                self.lines.append(line.rstrip("\n"))

    def snapshot(self) -> list[str]:
        with self._lock:
            return list(self.lines)

    def wait_line(self, needle: str, *, timeout: float = 15.0) -> str:
        """The first line containing ``needle`` (waiting for it up to ``timeout`` s)."""
        try:
            return wait_for(
                lambda: next((line for line in self.snapshot() if needle in line), None),
                timeout=timeout,
                what=f"a line containing {needle!r}",
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}; lines so far: {self.snapshot()}") from None


def popen_oj(env: OjEnv, *args: str) -> subprocess.Popen[str]:
    """Start `oj ARGS` in the background (stdout/stderr piped, text mode)."""
    return subprocess.Popen(
        [OJ, *args],
        cwd=env.project,
        env=env.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
