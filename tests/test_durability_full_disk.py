"""docs/durability.md, "A full disk", checked on a real daemon.

A full disk is simulated with ``RLIMIT_FSIZE`` on `ojd` (no root, no mount needed): a write past
the limit fails with ``EFBIG`` where a full disk fails with ``ENOSPC``, and the WAL takes the same
path for both (any ``OSError`` of the write or fsync). The claims: the request whose append failed
gets a one-line error and a non-zero exit and is not applied; the daemon refuses further appends
and exits with status 1, killing the steps it was running; a restart with room again has every
acknowledged change, and routes the killed step through ``on_fail`` as interrupted.
"""

from __future__ import annotations

import resource
import subprocess

from blackbox import OJD, OjEnv, pids_with, wait_for

RUNBOOK = """
queue "jobs" {
  type = "persisted"
  vars = ["n"]
}

command "nap" {
  run = { pipeline = "nap" }
}

pipeline "nap" {
  step "sleep" {
    run     = "sleep 600; echo oj-full-disk-test"
    on_fail = { step = "after" }
  }
  step "after" {
    run = "echo routed"
  }
}
"""

LIMIT = 64 * 1024  #: bytes any one file of the daemon may grow to


def _limit_file_size() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, LIMIT))


def test_a_full_disk_stops_the_daemon_and_loses_nothing_acknowledged(ojenv: OjEnv) -> None:
    ojenv.runbook("full.hcl", RUNBOOK)
    ojenv.state.mkdir(mode=0o700)
    daemon = subprocess.Popen(
        [OJD],
        env=ojenv.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        preexec_fn=_limit_file_size,
    )
    try:
        assert daemon.stdout is not None
        assert daemon.stdout.readline().strip() == "READY"
        pid = ojenv.run_pipeline("nap")
        ojenv.wait_step(pid, "sleep")
        wait_for(lambda: pids_with("oj-full-disk-test"), what="the step's process")

        acknowledged = 0
        padding = "x" * 2000
        while True:
            result = ojenv.oj("queue", "push", "jobs", "--var", f"n={acknowledged}-{padding}")
            if result.returncode != 0:
                break
            acknowledged += 1
            assert acknowledged < 100, "the file size limit never hit the WAL"
        assert result.returncode == 1
        assert result.stderr.startswith("Error: WAL append failed: ")
        assert len(result.stderr.strip().splitlines()) == 1
        assert acknowledged > 5

        assert daemon.wait(timeout=60) == 1
        wait_for(lambda: not pids_with("oj-full-disk-test"), what="the step to be killed")
        log = (ojenv.state / "daemon.log").read_text()
        assert "WAL write failed, refusing further appends" in log
        assert "Daemon stopped on an error: " in log and "Failed to start daemon" not in log
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()

    # Room again: a normal start replays everything that was acknowledged, nothing more.
    ojenv.ok("daemon", "start")
    items = ojenv.json("queue", "items", "jobs")
    assert sorted(int(i["data"]["n"].split("-")[0]) for i in items) == list(range(acknowledged))
    ojenv.wait_status(pid, "Completed")
    detail = ojenv.pipeline(pid)
    assert [(s["name"], s["outcome"]) for s in detail["steps"]] == [
        ("sleep", "failed"),
        ("after", "completed"),
    ]
    assert detail["steps"][0]["detail"] == "interrupted: daemon stopped while step was running"
