"""tmux sessions for agent steps, on the daemon's own tmux server.

Every call goes to a **private server** whose socket lives in the state dir
(:func:`oj_trio.paths.tmux_socket`), never the user's default server: ``tmux ls`` in the user's
terminal does not show agents, and killing the user's server does not kill them. The server is
started with a config that turns ``remain-on-exit`` on, so a pane whose process exited stays
around with its exit status (``#{pane_dead}``, ``#{pane_dead_status}``): liveness is the pane's
process, not the session's existence (ecosystem notes §9).

The environment tmux (and therefore the server and every pane) inherits is the daemon's minus
what would confuse an agent: ``TMUX``/``TMUX_PANE`` (a daemon started from inside tmux) and the
systemd unit's variables. Under systemd (``INVOCATION_ID`` set) the command that may start the
server runs through ``systemd-run --user --scope`` so the server lives outside ojd's cgroup and
``systemctl --user restart ojd`` does not kill the agents (SPEC §6).

Text goes to a pane through a paste buffer (``load-buffer`` from stdin, ``paste-buffer``), then
``Enter`` as a key of its own: ``send-keys`` eats a trailing ``;`` even with ``-l``.

All calls are ``trio.run_process`` (about 2 ms each); :class:`PaneMonitor` shares one
``list-panes -a`` between every watcher polling in the same interval.
"""

from __future__ import annotations

import logging
import math
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

import attrs
import trio

from .. import paths

log = logging.getLogger("oj.adapters.tmux")

#: Variables a pane must not inherit from the daemon.
SCRUBBED = ("TMUX", "TMUX_PANE", "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_PID")
SCRUBBED_PREFIXES = ("INVOCATION_ID", "JOURNAL_STREAM", "SYSTEMD_", "MANAGERPID", "LISTEN_FD")

_CONFIG = "set-option -g remain-on-exit on\nset-option -g history-limit 10000\n"
_NO_SERVER = ("no server running", "error connecting", "No such file or directory")


class TmuxError(Exception):
    """A tmux command failed; the message is tmux's own (one line)."""


def scrubbed_env(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` without the tmux and systemd variables a pane must not see."""
    return {
        k: v for k, v in env.items() if k not in SCRUBBED and not k.startswith(SCRUBBED_PREFIXES)
    }


@attrs.frozen
class PaneState:
    """One session's first pane: whether its process has exited, how, and its pid."""

    dead: bool
    exit_status: int | None
    pid: int | None


class Tmux:
    """The daemon's tmux server (one per state dir)."""

    def __init__(self, state_dir: Path, env: Mapping[str, str]) -> None:
        self.socket = paths.tmux_socket(state_dir)
        self.config = state_dir / "tmux.conf"
        self.env = scrubbed_env(env)
        self._under_systemd = bool(env.get("INVOCATION_ID"))

    def argv(self, *args: str) -> list[str]:
        return ["tmux", "-S", str(self.socket), "-f", str(self.config), *args]

    async def _run(self, argv: Sequence[str], *, stdin: bytes = b"") -> tuple[int, str, str]:
        result = await trio.run_process(
            list(argv),
            stdin=stdin,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            env=self.env,
        )
        out = result.stdout.decode("utf-8", "replace")
        err = result.stderr.decode("utf-8", "replace").strip()
        return result.returncode, out, err

    async def _checked(self, *args: str, stdin: bytes = b"") -> str:
        code, out, err = await self._run(self.argv(*args), stdin=stdin)
        if code != 0:
            raise TmuxError(err.splitlines()[0] if err else f"tmux {args[0]} exited with {code}")
        return out

    async def new_session(
        self, name: str, command: str, *, cwd: Path, env: Mapping[str, str], pipe_to: Path | None
    ) -> None:
        """Start ``command`` (run by the server's shell) in a detached session ``name``.

        ``pipe_to``: append everything the pane prints to this file (``pipe-pane``), set up in the
        same tmux call so no output is missed.

        Raises:
            TmuxError: tmux refused (e.g. the session exists, the cwd vanished).
            OSError: tmux cannot be run at all.
        """
        self.socket.parent.mkdir(parents=True, exist_ok=True)
        if not self.config.exists():
            self.config.write_text(_CONFIG)
        args = ["new-session", "-d", "-s", name, "-c", str(cwd), "-x", "200", "-y", "50"]
        for key, value in env.items():
            args += ["-e", f"{key}={value}"]
        args += [command, ";", "set-option", "-t", name, "remain-on-exit", "on"]
        if pipe_to is not None:
            pipe_to.parent.mkdir(parents=True, exist_ok=True)
            target = str(pipe_to).replace("'", "'\\''")
            args += [";", "pipe-pane", "-O", "-t", name, f"cat >> '{target}'"]
        argv = self.argv(*args)
        if self._under_systemd and shutil.which("systemd-run", path=self.env.get("PATH")):
            # The server this may start must not live in ojd's cgroup (SPEC §6).
            argv = ["systemd-run", "--user", "--scope", "--collect", "--quiet", *argv]
        code, _out, err = await self._run(argv)
        if code != 0:
            raise TmuxError(err.splitlines()[0] if err else f"tmux new-session exited with {code}")

    async def kill_session(self, name: str) -> bool:
        """End one session. True if tmux ended it; False if it was already gone.

        Raises:
            OSError: tmux cannot be run at all (not installed, not executable).
        """
        code, _out, _err = await self._run(self.argv("kill-session", "-t", f"={name}"))
        return code == 0

    async def send_text(self, name: str, text: str, *, enter: bool = True) -> None:
        """Type ``text`` into the pane literally (a trailing ``;`` included), then ``Enter``.

        Raises:
            TmuxError: the session does not exist.
        """
        if text:
            buffer = f"oj-{name}"
            await self._checked("load-buffer", "-b", buffer, "-", stdin=text.encode())
            await self._checked("paste-buffer", "-d", "-p", "-r", "-b", buffer, "-t", f"={name}:")
        if enter:
            # A separate call: bracketed paste must end before the key that submits it.
            await self._checked("send-keys", "-t", f"={name}:", "Enter")

    async def send_keys(self, name: str, *keys: str) -> None:
        """Press keys (``Enter``, ``y``, ``2``…) in the pane."""
        await self._checked("send-keys", "-t", f"={name}:", *keys)

    async def capture(self, name: str, *, lines: int = 40, color: bool = False) -> str:
        """The pane's last ``lines`` lines of text.

        Raises:
            TmuxError: the session does not exist.
        """
        args = ["capture-pane", "-p", "-J", "-t", f"={name}:", "-S", f"-{lines}"]
        if color:
            args.append("-e")
        return await self._checked(*args)

    async def panes(self) -> dict[str, PaneState] | None:
        """Every session's first pane, in one call; ``{}`` when no server runs; None when tmux
        failed otherwise (the caller must not conclude that anything died)."""
        fmt = "#{session_name}\t#{pane_index}\t#{pane_dead}\t#{pane_dead_status}\t#{pane_pid}"
        try:
            code, out, err = await self._run(self.argv("list-panes", "-a", "-F", fmt))
        except OSError as exc:
            log.warning("cannot run tmux: %s", exc)
            return None
        if code != 0:
            if any(marker in err for marker in _NO_SERVER):
                return {}
            log.warning("tmux list-panes failed: %s", err)
            return None
        found: dict[str, PaneState] = {}
        for line in out.splitlines():
            parts = line.split("\t")
            if len(parts) != 5 or parts[0] in found:
                continue
            name, _index, dead, status, pid = parts
            found[name] = PaneState(
                dead=dead == "1",
                exit_status=int(status) if status.lstrip("-").isdigit() else None,
                pid=int(pid) if pid.isdigit() else None,
            )
        return found


class PaneMonitor:
    """One ``list-panes -a`` shared by every watcher that asks within ``max_age`` seconds: 50 idle
    agents polling once a second cost one tmux call per second, not fifty."""

    def __init__(self, tmux: Tmux) -> None:
        self.tmux = tmux
        self._taken_at = -math.inf
        self._last: dict[str, PaneState] | None = None
        self._fetching: trio.Event | None = None

    async def snapshot(self, max_age: float) -> tuple[float, dict[str, PaneState] | None]:
        """``(taken_at, panes)``: a snapshot no older than ``max_age`` (trio time of the call that
        took it; a session created after ``taken_at`` may be missing from it)."""
        while True:
            if trio.current_time() - self._taken_at <= max_age:
                return self._taken_at, self._last
            if self._fetching is None:
                break
            await self._fetching.wait()
        self._fetching = trio.Event()
        started = trio.current_time()
        try:
            self._last = await self.tmux.panes()
            self._taken_at = started
        finally:
            self._fetching.set()
            self._fetching = None
        return started, self._last
