"""`oj daemon start|stop|restart|status|logs|install-unit`: the `ojd` process's life cycle.

Starting, stopping and the liveness checks are `Client`'s job (pid file, socket, version
handshake); this module only chooses which to call and what to print. `status` and `logs` work
without a running daemon. The daemon log is read straight from the state directory, and the
systemd unit is rendered locally (imported only by `install-unit`).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .. import paths, protocol
from ..client import Client, DaemonNotRunning
from ..errors import DaemonError, NotFoundError, OjError
from ._args import AddParser, Subparsers, non_negative_int
from ._output import emit_json, follow_file, tail_lines, uptime_text


def register(sub: Subparsers, add: AddParser) -> None:
    daemon = add(sub, "daemon", "start, stop and inspect the daemon")
    dsub = daemon.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)
    p = add(dsub, "start", "start the daemon", cmd_daemon_start)
    p.add_argument("--foreground", action="store_true", help="run attached to this terminal")
    p = add(dsub, "stop", "stop the daemon gracefully", cmd_daemon_stop)
    p.add_argument("--kill", action="store_true", help="also kill agent tmux sessions")
    p = add(dsub, "restart", "stop, then start the daemon", cmd_daemon_restart)
    p.add_argument("--kill", action="store_true", help="also kill agent tmux sessions")
    add(dsub, "status", "is the daemon running", cmd_daemon_status)
    p = add(dsub, "logs", "show the daemon log", cmd_daemon_logs)
    p.add_argument("--lines", type=non_negative_int, default=100, help="last N lines (default 100)")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    p = add(dsub, "install-unit", "install the systemd user unit for ojd", cmd_daemon_install_unit)
    p.add_argument("--dir", type=Path, help="target directory (default ~/.config/systemd/user)")


def cmd_daemon_start(args: argparse.Namespace) -> int:
    client = Client()
    if args.foreground:
        import subprocess

        result = subprocess.run(client.daemon_command(), check=False)
        if result.returncode != 0:
            raise OjError(f"Daemon exited with status: {result.returncode}")
        return 0
    try:
        status = client.send(protocol.request("Status"))
        if status.get("type") == "Status":
            print(f"Daemon already running (uptime: {status['uptime_secs']}s)")
            return 0
    except DaemonError:
        # Not only "nothing listens": a connect that fails for another reason (e.g. a socket
        # path too long for AF_UNIX) must go on to the start, whose error names the real cause.
        pass
    client.ensure_running()
    print("Daemon started")
    return 0


def cmd_daemon_stop(args: argparse.Namespace) -> int:
    print("Daemon stopped" if Client().stop(kill=args.kill) else "Daemon not running")
    return 0


def cmd_daemon_restart(args: argparse.Namespace) -> int:
    client = Client()
    client.stop(kill=args.kill)
    client.ensure_running()
    print("Daemon restarted")
    return 0


def cmd_daemon_status(args: argparse.Namespace) -> int:
    try:
        status = Client().call(protocol.request("Status"))
    except DaemonNotRunning:
        if args.output == "json":
            emit_json({"status": "not_running"})
        else:
            print("Daemon not running")
        return 0
    uptime = uptime_text(status["uptime_secs"])
    if args.output == "json":
        emit_json(
            {
                "status": "running",
                "version": status.get("version"),
                "uptime_secs": status["uptime_secs"],
                "uptime": uptime,
                "pipelines_active": status["pipelines_active"],
                "sessions_active": status["sessions_active"],
                "orphan_count": status.get("orphan_count", 0),
            }
        )
        return 0
    print("Status: running")
    print(f"Version: {status.get('version') or 'unknown'}")
    print(f"Uptime: {uptime}")
    print(f"Pipelines: {status['pipelines_active']} active")
    print(f"Sessions: {status['sessions_active']} active")
    return 0


def cmd_daemon_logs(args: argparse.Namespace) -> int:
    path = paths.log_path(paths.state_dir())
    if not path.exists():
        raise NotFoundError(f"No log file found at {path}")
    lines, size = tail_lines(path, args.lines)
    if args.output == "json":
        emit_json({"log_path": str(path), "lines": lines})
        return 0
    for line in lines:
        print(line)
    if args.follow:
        sys.stdout.flush()
        follow_file(path, size)
    return 0


def cmd_daemon_install_unit(args: argparse.Namespace) -> int:
    from ..systemd_unit import install_unit

    target = install_unit(Client().daemon_command(), args.dir)
    print(f"Installed {target}")
    print("Enable and start it with:")
    print("    systemctl --user daemon-reload")
    print("    systemctl --user enable --now ojd.service")
    print("Keep it running after you log out with:")
    print(f"    loginctl enable-linger {os.environ.get('USER', '$USER')}")
    return 0
