"""Where oj keeps things on disk. One resolver for every caller (CLI, daemon, workspaces, prune).

Stdlib-only: imported by the CLI on every invocation.
"""

from __future__ import annotations

import os
from pathlib import Path

#: ``sun_path`` is 108 bytes on Linux including the terminating NUL.
MAX_SOCKET_PATH = 107


def state_dir(env: os._Environ[str] | dict[str, str] | None = None) -> Path:
    """`OJ_STATE_DIR`, then `$XDG_STATE_HOME/oj`, then `~/.local/state/oj`."""
    env = os.environ if env is None else env
    explicit = env.get("OJ_STATE_DIR")
    if explicit:
        return Path(explicit)
    xdg = env.get("XDG_STATE_HOME")
    if xdg:
        return Path(xdg) / "oj"
    home = env.get("HOME") or os.path.expanduser("~")
    return Path(home) / ".local" / "state" / "oj"


def socket_path(base: Path) -> Path:
    return base / "daemon.sock"


def pid_path(base: Path) -> Path:
    return base / "daemon.pid"


def version_path(base: Path) -> Path:
    return base / "daemon.version"


def log_path(base: Path) -> Path:
    return base / "daemon.log"


def wal_dir(base: Path) -> Path:
    return base / "wal"


def logs_dir(base: Path) -> Path:
    return base / "logs"


def workspaces_dir(base: Path) -> Path:
    return base / "workspaces"


def tmux_socket(base: Path) -> Path:
    """The daemon's private tmux server (agent sessions), never the user's default one."""
    return base / "tmux.sock"


def agents_dir(base: Path) -> Path:
    """Per-agent files the daemon writes (Claude settings, prime script)."""
    return base / "agents"


def agent_log_path(base: Path, agent_id: str) -> Path:
    """An agent's log (reference §2.8): ``logs/agent/<agent_id>.log``."""
    return logs_dir(base) / "agent" / f"{agent_id}.log"
