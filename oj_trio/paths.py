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
