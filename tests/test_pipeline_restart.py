"""Black-box: pipelines across daemon crashes and restarts, graceful stop, many at once."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

from blackbox import OjEnv, pids_with, wait_for

INTERRUPTED = "interrupted: daemon stopped while step was running"


def _crash_runbook(marker: str) -> str:
    return f"""
    command "crashy" {{
      run = {{ pipeline = "crashy" }}
    }}
    command "plain" {{
      run = {{ pipeline = "plain" }}
    }}
    command "quick" {{
      run = {{ pipeline = "quick" }}
    }}
    pipeline "crashy" {{
      step "work" {{
        run     = "(exec -a {marker}-r sleep 300) & wait"
        on_fail = "recover"
      }}
      step "recover" {{
        run = "echo recovered > recovered.txt"
      }}
    }}
    pipeline "plain" {{
      step "work" {{
        run = "(exec -a {marker}-p sleep 300) & wait"
      }}
    }}
    pipeline "quick" {{
      step "a" {{
        run = "true"
      }}
    }}
    """


def test_sigkill_mid_step_then_restart(ojenv: OjEnv) -> None:
    marker = f"ojcrash{uuid.uuid4().hex[:10]}"
    ojenv.runbook("crash.hcl", _crash_runbook(marker))
    crashy = ojenv.run_pipeline("crashy")
    plain = ojenv.run_pipeline("plain")
    wait_for(lambda: len(pids_with(f"{marker}-r")) >= 2, what="crashy's step processes")
    wait_for(lambda: len(pids_with(f"{marker}-p")) >= 2, what="plain's step processes")

    ojenv.kill_daemon()
    # any action command brings the daemon back; reconciliation handles the lost steps
    quick = ojenv.run_pipeline("quick")
    wait_for(
        lambda: not pids_with(marker),
        what="the interrupted steps' leftover processes to be killed",
    )

    # on_fail routing applies to the interrupted step
    assert ojenv.oj("pipeline", "wait", crashy).returncode == 0
    assert (ojenv.project / "recovered.txt").read_text() == "recovered\n"
    detail = ojenv.pipeline(crashy)
    assert [(s["name"], s["outcome"]) for s in detail["steps"]] == [
        ("work", "failed"),
        ("recover", "completed"),
    ]
    assert INTERRUPTED in (detail["steps"][0]["detail"] or "")

    # without on_fail it is a terminal failure with the interruption as the error
    assert ojenv.oj("pipeline", "wait", plain).returncode == 1
    detail = ojenv.pipeline(plain)
    assert (detail["step"], detail["step_status"], detail["error"]) == (
        "failed",
        "Failed",
        INTERRUPTED,
    )
    assert ojenv.oj("pipeline", "wait", quick).returncode == 0
    assert INTERRUPTED in ojenv.ok("pipeline", "logs", plain)

    # `oj pipeline resume` re-runs the interrupted step
    ojenv.ok("pipeline", "resume", plain)
    wait_for(lambda: len(pids_with(f"{marker}-p")) >= 2, what="the resumed step to run")
    assert ojenv.wait_status(plain, "Running")["step"] == "work"
    ojenv.ok("pipeline", "cancel", plain)
    wait_for(lambda: not pids_with(marker), what="the resumed step to be cancelled")
    ojenv.wait_step(plain, "cancelled")


RUNBOOK = """
command "ok" {
  args = "<name>"
  run  = { pipeline = "ok" }
}
command "bad" {
  args = "<name>"
  run  = { pipeline = "bad" }
}
command "slow" {
  args = "<name>"
  run  = { pipeline = "slow" }
}
command "graceful" {
  run = { pipeline = "graceful" }
}
command "nap" {
  run = { pipeline = "nap" }
}
pipeline "ok" {
  step "a" {
    run     = "true"
    on_done = "b"
  }
  step "b" {
    run = "true"
  }
}
pipeline "bad" {
  step "a" {
    run = "exit 3"
  }
}
pipeline "slow" {
  step "a" {
    run = "sleep 300"
  }
}
pipeline "graceful" {
  step "short" {
    run     = "sleep 1; echo short >> graceful.trace"
    on_done = "next"
  }
  step "next" {
    run = "echo next >> graceful.trace"
  }
}
pipeline "nap" {
  step "a" {
    run = "sleep 0.5"
  }
}
"""


def _everything(ojenv: OjEnv) -> list[dict[str, object]]:
    listed = sorted(ojenv.json("pipeline", "list", "--no-limit"), key=lambda p: str(p["id"]))
    return [{"summary": p, "detail": ojenv.pipeline(str(p["id"]))} for p in listed]


def test_stop_start_keeps_every_pipeline(ojenv: OjEnv) -> None:
    ojenv.runbook("rb.hcl", RUNBOOK)
    done = ojenv.run_pipeline("ok", "good")
    failed = ojenv.run_pipeline("bad", "broken")
    cancelled = ojenv.run_pipeline("slow", "stopped")
    ojenv.wait_status(cancelled, "Running")
    ojenv.ok("pipeline", "cancel", cancelled)
    assert ojenv.oj("pipeline", "wait", done).returncode == 0
    assert ojenv.oj("pipeline", "wait", failed).returncode == 1
    ojenv.wait_step(cancelled, "cancelled")
    before = _everything(ojenv)
    assert len(before) == 3
    text_before = ojenv.ok("pipeline", "show", cancelled)

    assert ojenv.ok("daemon", "stop") == "Daemon stopped\n"
    assert ojenv.ok("daemon", "start") == "Daemon started\n"
    assert _everything(ojenv) == before
    assert ojenv.ok("pipeline", "show", cancelled) == text_before
    assert ojenv.pipeline(cancelled)["step"] == "cancelled"

    # and after a crash too
    ojenv.kill_daemon()
    assert ojenv.ok("daemon", "start") == "Daemon started\n"
    assert _everything(ojenv) == before


def test_graceful_stop_lets_a_short_step_finish(ojenv: OjEnv) -> None:
    ojenv.runbook("rb.hcl", RUNBOOK)
    slow = ojenv.run_pipeline("slow", "long")
    pid = ojenv.run_pipeline("graceful")
    ojenv.wait_status(slow, "Running")
    ojenv.wait_status(pid, "Running")
    assert ojenv.ok("daemon", "stop") == "Daemon stopped\n"
    # the running step was given the grace period (OJ_STOP_GRACE_MS=3000) and finished
    trace = ojenv.project / "graceful.trace"
    assert trace.read_text().split()[0] == "short"
    assert ojenv.ok("daemon", "start") == "Daemon started\n"
    wait = ojenv.oj("pipeline", "wait", pid)
    assert wait.returncode == 0, wait.stderr
    assert trace.read_text().split() == ["short", "next"]
    detail = ojenv.pipeline(pid)
    assert [(s["name"], s["outcome"]) for s in detail["steps"]] == [
        ("short", "completed"),
        ("next", "completed"),
    ]
    logged = [line.split(" ", 1)[1] for line in ojenv.ok("pipeline", "logs", pid).splitlines()]
    assert "[short] shell completed (exit 0)" in logged
    assert "[next] step started" in logged
    assert logged[-1].endswith("pipeline completed")
    # a step that outlives the grace period is recorded as interrupted (no on_fail: failed)
    assert ojenv.oj("pipeline", "wait", slow).returncode == 1
    detail = ojenv.pipeline(slow)
    assert (detail["step"], detail["error"]) == ("failed", INTERRUPTED)


def test_200_concurrent_pipelines(ojenv: OjEnv) -> None:
    ojenv.runbook("rb.hcl", RUNBOOK)
    ojenv.ok("daemon", "start")

    def start(_: int) -> str:
        # one process per pipeline: take the id prefix from `oj run`'s hints
        out = ojenv.ok("run", "nap", env={"OJ_RUN_WAIT_MS": "1"})
        return next(
            line.split()[-1]
            for line in out.splitlines()
            if line.strip().startswith("oj pipeline show ")
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        shorts = list(pool.map(start, range(200)))
    assert len(set(shorts)) == 200
    wait = ojenv.oj("pipeline", "wait", "--all", *shorts, "--timeout", "90s", timeout=120)
    assert wait.returncode == 0, wait.stderr[-2000:]
    assert wait.stdout.count(" completed\n") >= 200
    listed = ojenv.json("pipeline", "list", "--no-limit")
    assert sorted(p["id"][:12] for p in listed) == sorted(shorts)
    assert {(p["step"], p["step_status"]) for p in listed} == {("done", "Completed")}
