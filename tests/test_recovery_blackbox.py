"""Storage recovery through the real daemon (reference §9 "Storage / recovery", SPEC §3):
a torn WAL tail is cut and kept as `.bak`; unreadable history refuses to start, loudly, and
leaves the files for a human."""

from __future__ import annotations

import os
import signal

from blackbox import OjEnv, wait_for

RUNBOOK = """
command "hi" {
  args = "<name>"
  run  = "echo hi ${args.name}"
}
"""


def _one_finished_pipeline(ojenv: OjEnv) -> str:
    ojenv.runbook("hi.hcl", RUNBOOK)
    pid = ojenv.run_pipeline("hi", "bob")
    assert ojenv.oj("pipeline", "wait", pid).returncode == 0
    return pid


def _sigkill(ojenv: OjEnv) -> None:
    pid = ojenv.daemon_pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not ojenv.oj("daemon", "status").stdout.startswith("Status: running"))


def test_torn_wal_tail_is_cut_and_kept(ojenv: OjEnv) -> None:
    pipeline = _one_finished_pipeline(ojenv)
    _sigkill(ojenv)
    wal = ojenv.state / "wal" / "events.wal"
    with open(wal, "ab") as fh:
        fh.write(b'{"seq": 999, "event": {"ty')  # a crash mid-write
    assert ojenv.ok("daemon", "start") == "Daemon started\n"
    assert ojenv.pipeline(pipeline)["step"] == "done"
    assert (ojenv.state / "wal" / "events.bak").exists()
    assert not wal.read_bytes().endswith(b'"ty')
    logs = ojenv.ok("daemon", "logs")
    assert "WARNING" in logs and "torn/corrupt tail" in logs


def test_corruption_before_valid_entries_refuses_to_start(ojenv: OjEnv) -> None:
    _one_finished_pipeline(ojenv)
    _sigkill(ojenv)
    wal = ojenv.state / "wal" / "events.wal"
    lines = wal.read_bytes().splitlines(keepends=True)
    assert len(lines) > 2
    lines[1] = lines[1].replace(b'"seq"', b'"sEq"', 1)
    wal.write_bytes(b"".join(lines))
    before = wal.read_bytes()
    result = ojenv.oj("daemon", "start")
    assert result.returncode == 1
    assert result.stderr.startswith("Error: Failed to start daemon: ")
    assert "events.wal" in result.stderr
    assert "Traceback" not in result.stderr
    assert wal.read_bytes() == before, "history must be left untouched"
    assert not (ojenv.state / "daemon.sock").exists()


def test_corrupt_snapshot_without_history_refuses_to_start(ojenv: OjEnv) -> None:
    _one_finished_pipeline(ojenv)
    assert ojenv.ok("daemon", "stop") == "Daemon stopped\n"  # snapshot + compaction
    snapshot = ojenv.state / "snapshot.json"
    data = bytearray(snapshot.read_bytes())
    data[len(data) // 2] ^= 0x55
    snapshot.write_bytes(bytes(data))
    result = ojenv.oj("daemon", "start")
    assert result.returncode == 1
    assert "snapshot.json is corrupt" in result.stderr
    assert "refusing to start with an empty state" in result.stderr
    assert snapshot.read_bytes() == bytes(data)
