"""The systemd user unit for `ojd`, rendered for the `ojd` this installation runs.

`systemd/ojd.service` in the repository is this template rendered with `%h/.local/bin/ojd`;
a test keeps the two identical. `oj daemon install-unit` renders it with the real path.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

# TimeoutStopSec must exceed the drain: OJ_STOP_GRACE_MS (10 s default) plus flush and snapshot.
UNIT_TEMPLATE = """\
[Unit]
Description=oj job and pipeline daemon
Documentation=man:ojd(8) man:oj(1)

[Service]
Type=notify
NotifyAccess=main
ExecStart={exec_start}
Restart=on-failure
RestartSec=2
TimeoutStartSec=30
TimeoutStopSec=30
WatchdogSec=60
KillMode=mixed

[Install]
WantedBy=default.target
"""

REPO_EXEC_START = "%h/.local/bin/ojd"


def render_unit(daemon_command: list[str]) -> str:
    return UNIT_TEMPLATE.format(exec_start=shlex.join(daemon_command))


def default_unit_dir() -> Path:
    config = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(config) / "systemd" / "user"


def install_unit(daemon_command: list[str], directory: Path | None = None) -> Path:
    """Write `ojd.service` for `daemon_command` (absolute paths) and return its path."""
    command = [str(Path(daemon_command[0]).resolve()), *daemon_command[1:]]
    target_dir = directory or default_unit_dir()
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / "ojd.service"
    tmp = target.with_suffix(".service.tmp")
    tmp.write_text(render_unit(command), encoding="utf-8")
    os.replace(tmp, target)
    return target
