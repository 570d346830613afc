"""SIGKILL the daemon at random moments while pipelines run; after each restart nothing that
was acknowledged is lost, nothing stays stuck, and no step process outlives its step.

Every `oj run` that printed a pipeline id was acknowledged, so that pipeline must exist after
every later crash. Each pipeline must end terminal: `done`, or `failed` because a step was
interrupted by a crash (SPEC §3: interrupted steps fail and are routed, never left Running).
"""

from __future__ import annotations

import os
import random
import signal
import time
import uuid

from blackbox import OjEnv, pids_with, wait_for

INTERRUPTED = "interrupted: daemon stopped while step was running"

RUNBOOK = """
command "chain" {
  args = "<name> <marker>"
  run  = { pipeline = "chain" }
}
pipeline "chain" {
  step "a" {
    run     = "sleep 0.05; echo a ${var.marker}"
    on_done = { step = "b" }
  }
  step "b" {
    run     = "sleep 0.1; echo b ${var.marker}"
    on_done = { step = "c" }
  }
  step "c" {
    run = "sleep 0.05; echo c ${var.marker}"
  }
}
"""


def test_random_sigkills_lose_nothing_and_strand_nothing(ojenv: OjEnv) -> None:
    ojenv.runbook("chain.hcl", RUNBOOK)
    marker = f"soak-{uuid.uuid4().hex[:8]}"
    rng = random.Random(1234)
    acknowledged: list[str] = []
    for round_ in range(6):
        for i in range(4):
            acknowledged.append(ojenv.run_pipeline("chain", f"r{round_}-{i}", marker))
        time.sleep(rng.uniform(0.0, 0.3))  # a random crash point, not a wait for a condition
        ojenv.kill_daemon()
        assert ojenv.ok("daemon", "start") == "Daemon started\n"
        listed = {p["id"] for p in ojenv.json("pipeline", "list", "--no-limit")}
        missing = [pid for pid in acknowledged if pid not in listed]
        assert not missing, f"acknowledged pipelines lost after crash {round_}: {missing}"

    def all_terminal() -> list[dict[str, object]] | None:
        pipelines = ojenv.json("pipeline", "list", "--no-limit")
        return pipelines if all(p["terminal"] for p in pipelines) else None

    final = wait_for(all_terminal, timeout=60, what="every pipeline to end after the crashes")
    assert len(final) == len(acknowledged)
    for summary in final:
        detail = ojenv.pipeline(str(summary["id"]))
        if detail["step"] == "failed":
            assert detail["error"] == INTERRUPTED, detail
        else:
            assert detail["step"] == "done", detail
    wait_for(lambda: not pids_with(marker), what="no step process to outlive the crashes")


def test_graceful_stops_interrupt_nothing(ojenv: OjEnv) -> None:
    """`oj daemon stop` (and SIGTERM) at random moments: steps this short always finish within
    the grace, the next steps wait for the next start, and every pipeline ends done."""
    ojenv.runbook("chain.hcl", RUNBOOK)
    marker = f"stop-{uuid.uuid4().hex[:8]}"
    rng = random.Random(4321)
    acknowledged: list[str] = []
    for round_ in range(4):
        for i in range(4):
            acknowledged.append(ojenv.run_pipeline("chain", f"g{round_}-{i}", marker))
        time.sleep(rng.uniform(0.0, 0.3))  # a random stop point, not a wait for a condition
        if round_ % 2:
            assert ojenv.ok("daemon", "stop") == "Daemon stopped\n"
        else:
            pid = ojenv.daemon_pid()
            assert pid is not None
            os.kill(pid, signal.SIGTERM)
            wait_for(lambda: ojenv.daemon_pid() is None, what="the daemon to drain and exit")
        assert ojenv.ok("daemon", "start") == "Daemon started\n"

    def all_terminal() -> list[dict[str, object]] | None:
        pipelines = ojenv.json("pipeline", "list", "--no-limit")
        return pipelines if all(p["terminal"] for p in pipelines) else None

    final = wait_for(all_terminal, timeout=60, what="every pipeline to end")
    assert sorted(str(p["id"]) for p in final) == sorted(acknowledged)
    assert {str(p["step"]) for p in final} == {"done"}, final
