"""`ojd` under systemd (issue 4, SPEC §6): the notify protocol and the user unit.

Pins down:
- with `NOTIFY_SOCKET` set (a path or an abstract `@name`), a real `ojd` sends `READY=1` (with its
  `MAINPID`) once it answers, `STOPPING=1` when told to stop, and `WATCHDOG=1` pings only when
  `WATCHDOG_USEC` is set;
- `oj daemon install-unit --dir D` writes a `Type=notify` unit whose `ExecStart` is the absolute
  path of an existing `ojd`, and prints the `systemctl --user` commands;
- the checked-in `systemd/ojd.service` is the rendered template, `Type=notify`, and gives the
  daemon more than the 10 s default drain grace to stop.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from blackbox import OJD, OjEnv

from oj_trio import systemd_unit

REPO = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def notify_socket(address: str) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        sock.bind(address)
        yield sock
    finally:
        sock.close()


def receive_until(
    sock: socket.socket, wanted: str, seen: list[str], *, timeout: float = 30.0
) -> list[str]:
    """Collect datagrams into ``seen`` until one holds the line ``wanted``."""
    deadline = time.monotonic() + timeout
    while not any(wanted in message.splitlines() for message in seen):
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"no {wanted} within {timeout}s; got {seen}"
        sock.settimeout(remaining)
        seen.append(sock.recv(4096).decode())
    return seen


def drain(sock: socket.socket, seen: list[str]) -> list[str]:
    """Whatever is already queued, without waiting."""
    sock.setblocking(False)
    with contextlib.suppress(BlockingIOError):
        while True:
            seen.append(sock.recv(4096).decode())
    return seen


def start_ojd(env: OjEnv, extra: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [OJD],
        env={**env.env, **extra},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop_ojd(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=30)


@pytest.mark.parametrize("abstract", [False, True], ids=["path", "abstract"])
def test_ready_and_stopping(ojenv: OjEnv, abstract: bool) -> None:
    if abstract:
        name = f"oj-test-notify-{os.getpid()}-{ojenv.root.name}"
        bind_to, variable = "\0" + name, "@" + name
    else:
        bind_to = variable = str(ojenv.root / "notify")
    with notify_socket(bind_to) as sock:
        proc = start_ojd(ojenv, {"NOTIFY_SOCKET": variable})
        try:
            seen = receive_until(sock, "READY=1", [])
            ready = next(m for m in seen if "READY=1" in m.splitlines())
            assert f"MAINPID={proc.pid}" in ready.splitlines()
            # READY means it answers
            assert ojenv.ok("daemon", "status").startswith("Status: running\n")
            proc.send_signal(signal.SIGTERM)
            receive_until(sock, "STOPPING=1", seen)
            assert proc.wait(timeout=60) == 0
        finally:
            stop_ojd(proc)
        drain(sock, seen)
    lines = [line for message in seen for line in message.splitlines()]
    assert lines.index("READY=1") < lines.index("STOPPING=1")
    assert "WATCHDOG=1" not in lines, "no watchdog pings unless WATCHDOG_USEC asks for them"
    assert any(line.startswith("STATUS=") for line in lines)


def test_watchdog_pings(ojenv: OjEnv) -> None:
    path = str(ojenv.root / "notify")
    with notify_socket(path) as sock:
        proc = start_ojd(ojenv, {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000"})
        try:
            receive_until(sock, "READY=1", [])
            # pings keep coming after READY (every WATCHDOG_USEC / 2), not just once
            after: list[str] = []
            for _ in range(3):
                receive_until(sock, "WATCHDOG=1", after)
                after.clear()
            seen: list[str] = []
            proc.send_signal(signal.SIGTERM)
            receive_until(sock, "STOPPING=1", seen)
            assert proc.wait(timeout=60) == 0
        finally:
            stop_ojd(proc)


def test_watchdog_ignored_for_another_pid(ojenv: OjEnv) -> None:
    """`WATCHDOG_PID` naming another process means the pings are not ours to send."""
    path = str(ojenv.root / "notify")
    with notify_socket(path) as sock:
        proc = start_ojd(
            ojenv, {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000", "WATCHDOG_PID": "1"}
        )
        try:
            seen = receive_until(sock, "READY=1", [])
            proc.send_signal(signal.SIGTERM)
            receive_until(sock, "STOPPING=1", seen)
            assert proc.wait(timeout=60) == 0
        finally:
            stop_ojd(proc)
        drain(sock, seen)
    assert "WATCHDOG=1" not in seen


# -- the unit -------------------------------------------------------------------------------------


def _unit_fields(text: str) -> dict[str, str]:
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.startswith(("#", ";", "[")):
            fields[key.strip()] = value.strip()
    return fields


def _seconds(value: str) -> float:
    match = re.fullmatch(r"(\d+)(s|min)?", value)
    assert match, f"unexpected time span {value!r}"
    return int(match[1]) * (60 if match[2] == "min" else 1)


def test_install_unit(ojenv: OjEnv) -> None:
    target = ojenv.root / "units"
    out = ojenv.ok("daemon", "install-unit", "--dir", str(target))
    unit = target / "ojd.service"
    assert f"Installed {unit}" in out
    assert "systemctl --user daemon-reload" in out
    assert "systemctl --user enable --now ojd.service" in out

    fields = _unit_fields(unit.read_text())
    assert fields["Type"] == "notify"
    exec_start = shlex.split(fields["ExecStart"])
    assert os.path.isabs(exec_start[0])
    assert Path(exec_start[0]).is_file() and os.access(exec_start[0], os.X_OK)
    assert Path(exec_start[0]) == Path(OJD).resolve()
    assert _seconds(fields["TimeoutStopSec"]) > 10


def test_install_unit_default_dir_and_sibling_ojd(ojenv: OjEnv) -> None:
    """Without OJ_DAEMON_BINARY the unit names the `ojd` beside `oj`, under XDG_CONFIG_HOME."""
    env = {k: v for k, v in ojenv.env.items() if k != "OJ_DAEMON_BINARY"}
    env["XDG_CONFIG_HOME"] = str(ojenv.root / "config")
    result = subprocess.run(
        [str(Path(OJD).parent / "oj"), "daemon", "install-unit"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    unit = ojenv.root / "config" / "systemd" / "user" / "ojd.service"
    exec_start = shlex.split(_unit_fields(unit.read_text())["ExecStart"])
    assert Path(exec_start[0]) == Path(OJD).resolve()


def test_checked_in_unit_matches_template() -> None:
    text = (REPO / "systemd" / "ojd.service").read_text()
    assert text == systemd_unit.render_unit([systemd_unit.REPO_EXEC_START])
    fields = _unit_fields(text)
    assert fields["Type"] == "notify"
    assert fields["ExecStart"].endswith("/ojd")
    # the drain (OJ_STOP_GRACE_MS, 10 s by default) plus flush must fit before systemd's SIGKILL
    assert _seconds(fields["TimeoutStopSec"]) > 10
    assert fields.get("Restart") in {"on-failure", "always", "on-abnormal"}
    if "WatchdogSec" in fields:
        assert _seconds(fields["WatchdogSec"]) > 0
