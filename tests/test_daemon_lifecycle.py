"""Black-box lifecycle of `ojd` as driven by the real `oj` (issue 4, reference §6.3, §6.4, §6.9, §7.2).

Pins down:
- `oj daemon start/stop/restart/status/logs` texts, `-o json` shapes and exit codes;
- query commands never start a daemon (`Daemon not running`, non-zero) while `oj status` and
  `oj daemon status` report `not running` with exit 0;
- action commands auto-start a daemon, clean up a stale socket after SIGKILL, and restart a
  daemon of another version with the `warn: … restarting daemon` line;
- a second `ojd` is refused by the pid-file lock and disturbs nothing;
- a startup failure (socket path too long) surfaces the OS error, not a connection timeout;
- SIGTERM/SIGINT stop gracefully (exit 0, files removed, logged), SIGHUP does not;
- the state dir is 0700 and the socket 0600, and a connection from another uid is refused
  (SO_PEERCRED) even when those permissions are opened up;
- a graceful drain keeps answering status queries and refuses new work; `oj daemon logs -f`.

Every wait polls with a deadline; nothing sleeps a fixed time.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import struct
import subprocess
import threading
from pathlib import Path

import pytest
from blackbox import OJ, OJD, OjEnv, _alive, wait_for

from oj_trio._version import __version__

DAEMON_FILES = ("daemon.sock", "daemon.pid", "daemon.version")


def _files(env: OjEnv) -> dict[str, bool]:
    return {name: (env.state / name).exists() for name in DAEMON_FILES}


def _start(env: OjEnv) -> int:
    assert env.ok("daemon", "start") == "Daemon started\n"
    pid = env.daemon_pid()
    assert pid is not None and _alive(pid)
    return pid


def _wait_dead(pid: int) -> None:
    wait_for(lambda: not _alive(pid), what=f"process {pid} to exit")


def _ojd(env: OjEnv, *args: str, extra_env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """A hand-started `ojd` in the env's state dir; the caller must stop it in a finally."""
    return subprocess.Popen(
        [OJD, *args],
        env={**env.env, **(extra_env or {})},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_answering(env: OjEnv, proc: subprocess.Popen[str]) -> None:
    def answering() -> bool:
        assert proc.poll() is None, f"ojd exited early with {proc.returncode}"
        return env.oj("daemon", "status").stdout.startswith("Status: running")

    wait_for(answering, what="hand-started ojd to answer")


def _stop_proc(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.communicate(timeout=30)


# -- status without a daemon --------------------------------------------------------------------


def test_status_commands_without_daemon_exit_zero(ojenv: OjEnv) -> None:
    result = ojenv.oj("daemon", "status")
    assert (result.returncode, result.stdout, result.stderr) == (0, "Daemon not running\n", "")
    assert ojenv.json("daemon", "status") == {"status": "not_running"}
    result = ojenv.oj("status")
    assert (result.returncode, result.stdout, result.stderr) == (0, "oj daemon: not running\n", "")
    assert ojenv.json("status") == {"status": "not_running"}
    assert not any(_files(ojenv).values()), "a status command must not start a daemon"


@pytest.mark.parametrize(
    "argv",
    [
        ("pipeline", "list"),
        ("pipeline", "show", "abc"),
        ("pipeline", "logs", "abc"),
        ("workspace", "list"),
        ("workspace", "show", "abc"),
    ],
)
def test_query_commands_do_not_start_a_daemon(ojenv: OjEnv, argv: tuple[str, ...]) -> None:
    result = ojenv.oj(*argv)
    assert result.returncode == 1
    assert result.stderr == "Error: Daemon not running\n"
    assert "Traceback" not in result.stderr
    assert not any(_files(ojenv).values())


# -- start / status / logs / restart / stop -----------------------------------------------------


def test_start_status_restart_stop_cycle(ojenv: OjEnv) -> None:
    pid = _start(ojenv)
    assert _files(ojenv) == dict.fromkeys(DAEMON_FILES, True)
    assert (ojenv.state / "daemon.version").read_text() == __version__

    again = ojenv.oj("daemon", "start")
    assert again.returncode == 0
    assert again.stdout.startswith("Daemon already running (uptime: ")
    assert ojenv.daemon_pid() == pid

    lines = ojenv.ok("daemon", "status").splitlines()
    assert lines[0] == "Status: running"
    assert lines[1] == f"Version: {__version__}"
    assert lines[2].startswith("Uptime: ") and lines[2].endswith("s")
    assert lines[3:] == ["Pipelines: 0 active", "Sessions: 0 active"]

    status = ojenv.json("daemon", "status")
    assert set(status) == {
        "status",
        "version",
        "uptime_secs",
        "uptime",
        "pipelines_active",
        "sessions_active",
        "orphan_count",
    }
    assert status["status"] == "running"
    assert status["version"] == __version__
    assert isinstance(status["uptime_secs"], int) and status["uptime_secs"] >= 0
    assert status["pipelines_active"] == status["sessions_active"] == status["orphan_count"] == 0

    overview = ojenv.json("status")
    assert {"uptime_secs", "namespaces"} <= set(overview)
    assert overview.get("queue_errors", []) == []  # no remote queue backend configured
    assert ojenv.ok("status").startswith("oj daemon: up ")

    assert ojenv.ok("daemon", "restart") == "Daemon restarted\n"
    new_pid = ojenv.daemon_pid()
    assert new_pid is not None and new_pid != pid
    _wait_dead(pid)
    assert ojenv.ok("daemon", "status").startswith("Status: running\n")

    assert ojenv.ok("daemon", "stop") == "Daemon stopped\n"
    # the lock is released (and the files are gone) before the interpreter has finished exiting
    _wait_dead(new_pid)
    assert not any(_files(ojenv).values()), _files(ojenv)
    assert ojenv.ok("daemon", "stop") == "Daemon not running\n"
    assert ojenv.ok("daemon", "status") == "Daemon not running\n"

    # and it starts again afterwards
    _start(ojenv)


def test_daemon_logs_text_and_json(ojenv: OjEnv) -> None:
    missing = ojenv.oj("daemon", "logs")
    assert missing.returncode == 1
    assert missing.stderr == f"Error: No log file found at {ojenv.state / 'daemon.log'}\n"

    pid = _start(ojenv)
    wait_for(
        lambda: "Daemon ready" in ojenv.ok("daemon", "logs", "--lines", "10"),
        what="'Daemon ready' in the log",
    )
    text = ojenv.ok("daemon", "logs", "--lines", "10")
    assert f"--- ojd: starting (pid: {pid})" in text

    data = ojenv.json("daemon", "logs", "--lines", "2")
    assert set(data) == {"log_path", "lines"}
    assert data["log_path"] == str(ojenv.state / "daemon.log")
    assert len(data["lines"]) == 2
    assert all(isinstance(line, str) for line in data["lines"])

    ojenv.ok("daemon", "stop")
    # no daemon is needed to read the log, and the stop is in it
    tail = ojenv.ok("daemon", "logs", "--lines", "5")
    assert "ojd stopped (exit 0)" in tail


def test_daemon_logs_follow(ojenv: OjEnv) -> None:
    pid = _start(ojenv)
    follower = subprocess.Popen(
        [OJ, "daemon", "logs", "-f", "--lines", "3"],
        env=ojenv.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    lines: list[str] = []

    def read() -> None:
        assert follower.stdout is not None
        for line in follower.stdout:
            lines.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        wait_for(lambda: len(lines) >= 3, what="the last 3 lines")
        ojenv.ok("daemon", "stop")
        _wait_dead(pid)
        # lines written after `-f` started show up
        wait_for(lambda: any("ojd stopped (exit 0)" in line for line in lines), what="the stop")
        assert follower.poll() is None, "-f keeps following"
    finally:
        follower.kill()
        follower.wait(timeout=30)
        reader.join(timeout=30)


# -- auto-start, stale socket, version mismatch --------------------------------------------------


def test_action_command_auto_starts_daemon(ojenv: OjEnv) -> None:
    assert ojenv.daemon_pid() is None
    result = ojenv.oj("pipeline", "prune")
    assert result.returncode == 0, result.stderr
    assert "0 pipeline(s) pruned" in result.stdout
    pid = ojenv.daemon_pid()
    assert pid is not None and _alive(pid)
    assert ojenv.ok("daemon", "status").startswith("Status: running\n")
    # a second action command reuses the running daemon
    ojenv.ok("pipeline", "prune")
    assert ojenv.daemon_pid() == pid


def test_stale_socket_after_sigkill(ojenv: OjEnv) -> None:
    old = _start(ojenv)
    ojenv.kill_daemon()
    assert (ojenv.state / "daemon.sock").exists(), "SIGKILL leaves the socket file behind"

    # connect-only commands see the stale socket as "not running" and leave it alone
    assert ojenv.ok("daemon", "status") == "Daemon not running\n"
    query = ojenv.oj("pipeline", "list")
    assert (query.returncode, query.stderr) == (1, "Error: Daemon not running\n")
    assert ojenv.daemon_pid() == old

    # the next action command cleans up and starts a fresh daemon
    result = ojenv.oj("pipeline", "prune")
    assert result.returncode == 0, result.stderr
    new = ojenv.daemon_pid()
    assert new is not None and new != old and _alive(new)
    assert ojenv.ok("daemon", "status").startswith("Status: running\n")


def test_stop_after_sigkill_cleans_stale_files(ojenv: OjEnv) -> None:
    _start(ojenv)
    ojenv.kill_daemon()
    assert ojenv.ok("daemon", "stop") == "Daemon not running\n"
    assert not any(_files(ojenv).values()), _files(ojenv)
    assert ojenv.ok("daemon", "start") == "Daemon started\n"


def test_version_mismatch_restarts_daemon(ojenv: OjEnv) -> None:
    old = _start(ojenv)
    (ojenv.state / "daemon.version").write_text("0.0.1-old")

    result = ojenv.oj("pipeline", "prune")
    assert result.returncode == 0, result.stderr
    assert (
        f"warn: daemon version 0.0.1-old does not match cli version {__version__}, "
        "restarting daemon\n"
    ) in result.stderr
    assert "0 pipeline(s) pruned" in result.stdout
    new = ojenv.daemon_pid()
    assert new is not None and new != old
    _wait_dead(old)
    assert (ojenv.state / "daemon.version").read_text() == __version__

    # once the versions agree there is no more warning
    again = ojenv.oj("pipeline", "prune")
    assert again.returncode == 0 and "warn:" not in again.stderr
    assert ojenv.daemon_pid() == new


# -- second ojd, startup errors ------------------------------------------------------------------


def test_second_ojd_is_refused_and_disturbs_nothing(ojenv: OjEnv) -> None:
    pid = _start(ojenv)
    sock = ojenv.state / "daemon.sock"
    inode = sock.stat().st_ino

    second = subprocess.run(
        [OJD], env=ojenv.env, capture_output=True, text=True, timeout=60, check=False
    )
    assert second.returncode == 1
    assert second.stderr.splitlines() == [
        "ojd is already running",
        f"  pid: {pid}",
        f"  version: {__version__}",
    ]
    assert second.stdout == ""

    assert _files(ojenv) == dict.fromkeys(DAEMON_FILES, True)
    assert sock.stat().st_ino == inode, "the second ojd must not re-create the socket"
    assert ojenv.daemon_pid() == pid
    assert ojenv.ok("daemon", "status").startswith("Status: running\n")
    assert ojenv.json("daemon", "status")["status"] == "running"


def test_second_ojd_reports_an_outdated_first_daemon(ojenv: OjEnv) -> None:
    pid = _start(ojenv)
    (ojenv.state / "daemon.version").write_text("0.0.1-old")
    second = subprocess.run(
        [OJD], env=ojenv.env, capture_output=True, text=True, timeout=60, check=False
    )
    assert second.returncode == 1
    assert f"  pid: {pid}" in second.stderr.splitlines()
    assert f"  version: 0.0.1-old (outdated — current: {__version__})" in second.stderr
    assert _alive(pid)


def test_startup_error_is_surfaced_not_a_timeout(ojenv: OjEnv) -> None:
    state = ojenv.root / ("x" * 110) / "s"
    env = {
        "OJ_STATE_DIR": str(state),
        # were the client to wait for the socket instead of noticing the failure, the run
        # below would hit its subprocess timeout first
        "OJ_TIMEOUT_CONNECT_MS": "120000",
    }
    result = ojenv.oj("daemon", "start", env=env, timeout=60)
    assert result.returncode == 1
    assert "AF_UNIX path too long" in result.stderr
    assert result.stderr.startswith("Error: Failed to start daemon: ")
    assert "Connection timeout" not in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    # the failed daemon cleaned up after itself
    assert not any((state / name).exists() for name in DAEMON_FILES)
    log = (state / "daemon.log").read_text()
    assert "ERROR" in log and "Failed to start daemon: Failed to bind socket at" in log

    # an action command reports the same
    action = ojenv.oj("pipeline", "prune", env=env, timeout=60)
    assert action.returncode == 1
    assert "AF_UNIX path too long" in action.stderr


def test_unusable_state_dir_is_reported_by_ojd(ojenv: OjEnv) -> None:
    blocker = ojenv.root / "file"
    blocker.write_text("not a directory")
    result = subprocess.run(
        [OJD],
        env={**ojenv.env, "OJ_STATE_DIR": str(blocker / "s")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "ojd: cannot use state directory" in result.stderr
    assert "Traceback" not in result.stderr


# -- signals ------------------------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_gracefully(ojenv: OjEnv, sig: signal.Signals) -> None:
    proc = _ojd(ojenv)
    try:
        _wait_answering(ojenv, proc)
        assert proc.stdout is not None
        assert proc.stdout.readline() == "READY\n"
        assert ojenv.daemon_pid() == proc.pid
        proc.send_signal(sig)
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert "Traceback" not in err
    finally:
        _stop_proc(proc)
    assert not any(_files(ojenv).values()), _files(ojenv)
    log = ojenv.ok("daemon", "logs", "--lines", "20")
    assert f"{sig.name} received: graceful stop" in log
    assert log.rstrip().endswith("ojd stopped (exit 0)")
    assert ojenv.ok("daemon", "status") == "Daemon not running\n"


def test_sigterm_right_after_ready_is_graceful(ojenv: OjEnv) -> None:
    """READY means the signal handlers are installed: a SIGTERM the instant READY is printed
    stops the daemon cleanly (regression: it used to meet Python's default action)."""
    for _ in range(3):
        proc = _ojd(ojenv)
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline() == "READY\n"
            proc.send_signal(signal.SIGTERM)
            _out, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err
        finally:
            _stop_proc(proc)
        assert not any(_files(ojenv).values()), _files(ojenv)


def test_second_sigterm_stops_without_waiting_for_the_grace(ojenv: OjEnv) -> None:
    """A graceful stop waits for running steps (here: up to 10 minutes) and keeps answering
    status queries meanwhile; a second SIGTERM ends the wait at once, and the daemon still exits
    cleanly."""
    ojenv.runbook(
        "slow.hcl",
        """
        command "slow" {
          run = { pipeline = "slow" }
        }
        pipeline "slow" {
          step "nap" {
            run = "sleep 120"
          }
        }
        """,
    )
    grace = {"OJ_STOP_GRACE_MS": "600000"}
    out = ojenv.ok("run", "slow", env=grace)
    short = next(
        line.split()[-1] for line in out.splitlines() if line.strip().startswith("oj pipeline show")
    )
    ojenv.wait_status(short, "Running")
    pid = ojenv.daemon_pid()
    assert pid is not None
    log = ojenv.state / "daemon.log"

    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: "SIGTERM received: graceful stop" in log.read_text(), what="first SIGTERM")
    assert _alive(pid), "the drain waits for the running step"
    # while it drains it still answers, and refuses new work with a clear error
    assert ojenv.ok("daemon", "status").startswith("Status: running\n")
    refused = ojenv.oj("pipeline", "prune")
    assert (refused.returncode, refused.stderr) == (1, "Error: daemon is shutting down\n")
    assert _alive(pid)

    os.kill(pid, signal.SIGTERM)
    _wait_dead(pid)
    text = log.read_text()
    assert "second SIGTERM: stopping immediately" in text
    assert text.rstrip().endswith("ojd stopped (exit 0)")
    assert not any(_files(ojenv).values()), _files(ojenv)


def test_sighup_does_not_kill_the_daemon(ojenv: OjEnv) -> None:
    pid = _start(ojenv)
    os.kill(pid, signal.SIGHUP)
    wait_for(
        lambda: "SIGHUP received" in (ojenv.state / "daemon.log").read_text(),
        what="the daemon to log SIGHUP",
    )
    assert _alive(pid)
    assert ojenv.daemon_pid() == pid
    assert ojenv.ok("daemon", "status").startswith("Status: running\n")
    assert ojenv.ok("daemon", "stop") == "Daemon stopped\n"


def test_shutdown_request_from_oj_daemon_stop_exits_zero(ojenv: OjEnv) -> None:
    proc = _ojd(ojenv)
    try:
        _wait_answering(ojenv, proc)
        assert ojenv.ok("daemon", "stop") == "Daemon stopped\n"
        proc.communicate(timeout=60)
        assert proc.returncode == 0
    finally:
        _stop_proc(proc)
    assert not any(_files(ojenv).values())


def test_shutdown_request_over_raw_socket(ojenv: OjEnv) -> None:
    pid = _start(ojenv)
    body = b'{"type":"Shutdown"}'
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(30)
        sock.connect(str(ojenv.state / "daemon.sock"))
        sock.sendall(struct.pack(">I", len(body)) + body)
        header = sock.recv(4, socket.MSG_WAITALL)
        answer = sock.recv(struct.unpack(">I", header)[0], socket.MSG_WAITALL)
    assert json.loads(answer) == {"type": "ShuttingDown"}
    _wait_dead(pid)
    assert not any(_files(ojenv).values())
    assert ojenv.ok("daemon", "status") == "Daemon not running\n"


# -- permissions --------------------------------------------------------------------------------


def test_state_dir_and_socket_permissions(ojenv: OjEnv) -> None:
    ojenv.state.mkdir(mode=0o755)
    os.chmod(ojenv.state, 0o755)  # a pre-existing, too-open state dir gets tightened
    _start(ojenv)
    assert stat.S_IMODE(ojenv.state.stat().st_mode) == 0o700
    sock = ojenv.state / "daemon.sock"
    assert stat.S_ISSOCK(sock.stat().st_mode)
    assert stat.S_IMODE(sock.stat().st_mode) == 0o600
    for sub in ("wal", "logs", "workspaces"):
        assert stat.S_IMODE((ojenv.state / sub).stat().st_mode) == 0o700, sub
    assert stat.S_IMODE((ojenv.state / "daemon.pid").stat().st_mode) == 0o600


def test_fresh_state_dir_is_created_0700(ojenv: OjEnv) -> None:
    nested = ojenv.root / "a" / "s"
    result = ojenv.oj("pipeline", "prune", env={"OJ_STATE_DIR": str(nested)})
    try:
        assert result.returncode == 0, result.stderr
        assert stat.S_IMODE(nested.stat().st_mode) == 0o700
    finally:
        ojenv.oj("daemon", "stop", env={"OJ_STATE_DIR": str(nested)})


def test_json_output_is_pretty_printed(ojenv: OjEnv) -> None:
    out = ojenv.ok("daemon", "status", "-o", "json")
    assert out == json.dumps({"status": "not_running"}, indent=2) + "\n"
    assert Path(ojenv.state).exists() is False


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to connect as another user")
def test_peer_uid_check_refuses_other_users(ojenv: OjEnv) -> None:
    """Even with the file permissions opened up, a connection from another uid is refused
    (SO_PEERCRED), with an Error answer and without disturbing the daemon."""
    _start(ojenv)
    sock = ojenv.state / "daemon.sock"
    os.chmod(ojenv.root, 0o711)  # mkdtemp made it 0700
    os.chmod(ojenv.state, 0o711)
    os.chmod(sock, 0o666)
    read_fd, write_fd = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through the pipe
        code = 1
        try:
            os.close(read_fd)
            os.setgid(65534)
            os.setuid(65534)
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                conn.settimeout(30)
                conn.connect(str(sock))
                body = b'{"type":"Ping"}'
                conn.sendall(struct.pack(">I", len(body)) + body)
                (length,) = struct.unpack(">I", conn.recv(4, socket.MSG_WAITALL))
                os.write(write_fd, conn.recv(length, socket.MSG_WAITALL))
            code = 0
        except BaseException as exc:
            os.write(write_fd, repr(exc).encode())
        finally:
            os._exit(code)
    os.close(write_fd)
    try:
        with os.fdopen(read_fd, "rb") as pipe:
            output = pipe.read().decode()
        _pid, status = os.waitpid(child, 0)
    finally:
        os.chmod(ojenv.root, 0o700)
        os.chmod(ojenv.state, 0o700)
        os.chmod(sock, 0o600)
    assert os.waitstatus_to_exitcode(status) == 0, output
    answer = json.loads(output)
    assert answer["type"] == "Error"
    assert "another user" in answer["message"]
    assert ojenv.ok("daemon", "status").startswith("Status: running\n")
