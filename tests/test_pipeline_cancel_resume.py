"""Black-box: `oj pipeline cancel` (process groups, on_cancel) and `oj pipeline resume`."""

from __future__ import annotations

import uuid

from blackbox import OjEnv, pids_with, wait_for


def _runbook(marker: str) -> str:
    return f"""
    command "hang" {{
      run = {{ pipeline = "hang" }}
    }}
    command "hangclean" {{
      run = {{ pipeline = "hangclean" }}
    }}
    command "quick" {{
      run = {{ pipeline = "quick" }}
    }}
    command "hangpipe" {{
      run = {{ pipeline = "hangpipe" }}
    }}
    pipeline "hangpipe" {{
      on_cancel = "teardown"
      step "work" {{
        run = "(exec -a {marker}-d sleep 300) & wait"
      }}
      step "teardown" {{
        run = "echo torn > torn.txt"
      }}
    }}
    pipeline "hang" {{
      step "work" {{
        run = "(exec -a {marker}-a sleep 300) & (exec -a {marker}-b sleep 300) & sleep 300 & wait"
      }}
    }}
    pipeline "hangclean" {{
      step "work" {{
        run       = "(exec -a {marker}-c sleep 300) & wait"
        on_cancel = "cleanup"
      }}
      step "cleanup" {{
        run = "while [ ! -f cleanup.go ]; do sleep 0.05; done; echo cleaned > cleaned.txt"
      }}
    }}
    pipeline "quick" {{
      step "a" {{
        run = "true"
      }}
    }}
    """


def test_cancel(ojenv: OjEnv) -> None:
    marker = f"ojmark{uuid.uuid4().hex[:10]}"
    ojenv.runbook("cancel.hcl", _runbook(marker))
    hang = ojenv.run_pipeline("hang")
    clean = ojenv.run_pipeline("hangclean")
    quick = ojenv.run_pipeline("quick")
    piped = ojenv.run_pipeline("hangpipe")
    # the step's shell plus its grandchildren (two renamed sleeps, one plain) and hangclean's
    wait_for(lambda: len(pids_with(f"{marker}-a")) >= 2, what="hang's grandchildren")
    wait_for(lambda: len(pids_with(f"{marker}-b")) >= 2, what="hang's grandchildren")
    wait_for(lambda: len(pids_with(f"{marker}-c")) >= 2, what="hangclean's grandchild")

    busy = ojenv.oj("pipeline", "resume", hang)
    assert busy.returncode != 0  # a running step has nothing to resume
    assert ojenv.pipeline(hang)["step_status"] == "Running"

    out = ojenv.ok("pipeline", "cancel", hang[:10])
    assert out == f"Cancelled pipeline {hang[:10]}\n"
    wait_for(
        lambda: not pids_with(f"{marker}-a") and not pids_with(f"{marker}-b"),
        what="every process of the cancelled step to die",
    )
    detail = ojenv.wait_step(hang, "cancelled")
    assert detail["step_status"] == "Failed"
    assert detail["error"] == "cancelled"
    waited = ojenv.oj("pipeline", "wait", hang)
    assert waited.returncode == 4
    assert "was cancelled" in waited.stderr

    # on_cancel: the cleanup step runs, then the pipeline ends cancelled
    ojenv.ok("pipeline", "cancel", clean)
    wait_for(lambda: not pids_with(f"{marker}-c"), what="hangclean's step to die")
    ojenv.wait_status(clean, "Running")
    assert ojenv.pipeline(clean)["step"] == "cleanup"
    # a second cancel does not interrupt the cleanup step
    assert ojenv.oj("pipeline", "cancel", clean).returncode == 0
    (ojenv.project / "cleanup.go").touch()
    ojenv.wait_step(clean, "cancelled")
    assert (ojenv.project / "cleaned.txt").read_text() == "cleaned\n"
    detail = ojenv.pipeline(clean)
    assert [s["name"] for s in detail["steps"]] == ["work", "cleanup"]
    assert detail["step_status"] == "Failed"

    # pipeline-level on_cancel
    wait_for(lambda: len(pids_with(f"{marker}-d")) >= 2, what="hangpipe's step")
    ojenv.ok("pipeline", "cancel", piped)
    ojenv.wait_step(piped, "cancelled")
    assert not pids_with(f"{marker}-d")
    assert (ojenv.project / "torn.txt").read_text() == "torn\n"
    assert [s["name"] for s in ojenv.pipeline(piped)["steps"]] == ["work", "teardown"]

    # cancel of a terminal pipeline; unknown id
    assert ojenv.oj("pipeline", "wait", quick).returncode == 0
    again = ojenv.oj("pipeline", "cancel", quick[:8], hang)
    assert again.returncode == 0
    assert again.stdout.splitlines() == [
        f"Pipeline {quick[:8]} was already terminal",
        f"Pipeline {hang} was already terminal",
    ]
    unknown = ojenv.oj("pipeline", "cancel", "nope-nope")
    assert unknown.returncode == 1
    assert "Pipeline not found: nope-nope" in unknown.stderr
    assert ojenv.pipeline(quick)["step"] == "done"

    # wait --all: cancelled (and none failed) → 4
    assert ojenv.oj("pipeline", "wait", "--all", quick, hang).returncode == 4

    # a cancelled pipeline cannot be resumed
    before = ojenv.pipeline(hang)
    refused = ojenv.oj("pipeline", "resume", hang)
    assert refused.returncode != 0
    assert refused.stderr.strip()
    assert ojenv.pipeline(hang) == before


RESUME = """
command "flaky" {
  args     = "[--extra <extra>]"
  defaults = { extra = "none" }
  run      = { pipeline = "flaky" }
}
command "quick" {
  run = { pipeline = "quick" }
}
pipeline "flaky" {
  step "check" {
    run     = "echo check >> flaky.trace; test -f flag"
    on_done = "after"
  }
  step "after" {
    run = "echo \\"after ${var.extra}\\" > after.out"
  }
}
pipeline "quick" {
  step "a" {
    run = "true"
  }
}
"""


def test_resume(ojenv: OjEnv) -> None:
    ojenv.runbook("flaky.hcl", RESUME)
    pid = ojenv.run_pipeline("flaky")
    assert ojenv.oj("pipeline", "wait", pid).returncode == 1
    detail = ojenv.pipeline(pid)
    assert (detail["step"], detail["error"]) == ("failed", "shell exited with code 1")

    # resume without fixing: the step re-runs and fails again
    out = ojenv.ok("pipeline", "resume", pid[:9])
    assert out.startswith(f"Resumed pipeline {pid[:9]}")
    wait_for(
        lambda: (ojenv.project / "flaky.trace").read_text().split() == ["check", "check"],
        what="the failed step to run again",
    )
    ojenv.wait_step(pid, "failed")

    # fix the cause, resume with a var: the step re-runs, the var reaches the next step
    (ojenv.project / "flag").touch()
    out = ojenv.ok("pipeline", "resume", pid[:9], "--var", "extra=given value")
    assert out.startswith(f"Updated vars and resumed pipeline {pid[:9]}")
    wait = ojenv.oj("pipeline", "wait", pid)
    assert wait.returncode == 0, wait.stderr
    detail = ojenv.pipeline(pid)
    assert (detail["step"], detail["step_status"]) == ("done", "Completed")
    assert detail["vars"]["extra"] == "given value"
    assert "    extra: given value" in ojenv.ok("pipeline", "show", pid).splitlines()
    assert (ojenv.project / "after.out").read_text() == "after given value\n"
    assert [s["name"] for s in detail["steps"]][-2:] == ["check", "after"]

    # resume of a completed pipeline is refused and changes nothing
    before = ojenv.pipeline(pid)
    done_again = ojenv.oj("pipeline", "resume", pid, "--var", "extra=x")
    assert done_again.returncode != 0
    assert done_again.stderr.strip()
    assert ojenv.pipeline(pid) == before

    bad_var = ojenv.oj("pipeline", "resume", pid, "--var", "novalue")
    assert bad_var.returncode != 0
    assert "invalid input format 'novalue': must be key=value" in bad_var.stderr

    unknown = ojenv.oj("pipeline", "resume", "nope-nope")
    assert unknown.returncode != 0
    assert "not found" in unknown.stderr.lower()


STUBBORN = """
command "stubborn" {
  args = "<marker>"
  run  = { pipeline = "stubborn" }
}
pipeline "stubborn" {
  step "hold" {
    run = "trap '' TERM; sleep 300; echo ${var.marker}"
  }
}
"""


def test_cancel_of_a_term_ignoring_step_answers_before_the_kill(ojenv: OjEnv) -> None:
    """The reply must not wait out the SIGTERM→SIGKILL grace (longer than the client's IPC
    timeout here); the step is still killed and the pipeline still ends cancelled."""
    ojenv.env.update({"OJ_STEP_KILL_GRACE_MS": "4000", "OJ_TIMEOUT_IPC_MS": "3500"})
    ojenv.runbook("stubborn.hcl", STUBBORN)
    marker = f"stubborn-{uuid.uuid4().hex[:8]}"
    pid = ojenv.run_pipeline("stubborn", marker)
    ojenv.wait_status(pid, "Running")
    wait_for(lambda: pids_with(marker), what="the step's sleep")
    result = ojenv.oj("pipeline", "cancel", pid)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"Cancelled pipeline {pid}\n"
    done = ojenv.wait_step(pid, "cancelled", timeout=30)
    assert done["step_status"] == "Failed"
    wait_for(lambda: not pids_with(marker), what="the step's processes to be killed")


HANDLED = """
command "handled" {
  args = "<name>"
  run  = { pipeline = "handled" }
}
pipeline "handled" {
  on_fail = { step = "report" }
  step "work" {
    run     = "test -f work.ok"
    on_done = { step = "finish" }
  }
  step "finish" { run = "touch finished" }
  step "report" { run = "echo report >> reports; exit 1" }
}
"""


def test_resume_reruns_the_step_whose_failure_started_it_all(ojenv: OjEnv) -> None:
    """A failed pipeline whose on_fail handler also failed resumes at the original step, not
    at the handler (re-running a failed report step would fix nothing)."""
    ojenv.runbook("handled.hcl", HANDLED)
    pid = ojenv.run_pipeline("handled", "h")
    assert ojenv.oj("pipeline", "wait", pid).returncode == 1
    assert [s["name"] for s in ojenv.pipeline(pid)["steps"]] == ["work", "report"]
    (ojenv.project / "work.ok").touch()
    ojenv.ok("pipeline", "resume", pid[:8])
    assert ojenv.oj("pipeline", "wait", pid).returncode == 0
    steps = [s["name"] for s in ojenv.pipeline(pid)["steps"]]
    assert steps == ["work", "report", "work", "finish"]
    assert (ojenv.project / "finished").exists()
    assert (ojenv.project / "reports").read_text() == "report\n"
