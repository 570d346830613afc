"""An acknowledged `oj pipeline cancel` survives a daemon crash (SPEC §5: nothing acknowledged is
lost). A step that ignores SIGTERM keeps the cancellation from taking effect for the whole kill
grace, and the reply goes out before that; the request itself (`pipeline:cancel`) is durable
first, so a daemon SIGKILLed meanwhile cancels at its next start — through `on_cancel` — instead
of failing the step as interrupted through `on_fail`."""

from __future__ import annotations

import contextlib
import os
import signal
import uuid
from pathlib import Path

from blackbox import OjEnv, pids_with, wait_for

RUNBOOK = """
command "stubborn" {
  args = "<marker>"
  run  = { pipeline = "stubborn" }
}
pipeline "stubborn" {
  on_fail   = { step = "failed" }
  on_cancel = { step = "cleanup" }
  step "hold" {
    run = "trap '' TERM; sleep 300; echo ${var.marker}"
  }
  step "cleanup" { run = "touch cancelled.mark" }
  step "failed" { run = "touch failed.mark" }
}
"""


def test_an_acknowledged_cancel_survives_a_crash_before_it_took_effect(ojenv: OjEnv) -> None:
    ojenv.env.update({"OJ_STEP_KILL_GRACE_MS": "120000"})
    ojenv.runbook("stubborn.hcl", RUNBOOK)
    marker = f"stubborn-{uuid.uuid4().hex[:8]}"
    pid = ojenv.run_pipeline("stubborn", marker)
    ojenv.wait_status(pid, "Running")
    wait_for(lambda: pids_with(marker), what="the step's sleep")
    result = ojenv.oj("pipeline", "cancel", pid)
    assert result.returncode == 0, result.stderr
    assert ojenv.pipeline(pid)["step"] == "hold"  # the kill is still under way
    ojenv.kill_daemon()
    # The step's group (bash and its `sleep`) ignores SIGTERM: end it here, or the next start
    # would wait out the whole kill grace on it.
    for leader in pids_with(marker):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(leader, signal.SIGKILL)
    wait_for(lambda: not pids_with(marker), what="the step's processes to go")
    ojenv.ok("daemon", "start")
    done = ojenv.wait_step(pid, "cancelled", timeout=60)
    assert [s["name"] for s in done["steps"]] == ["hold", "cleanup"]
    assert done["steps"][0]["detail"] == "cancelled"
    root = Path(done["vars"]["invoke.dir"])
    assert (root / "cancelled.mark").exists() and not (root / "failed.mark").exists()
