"""The smallest end-to-end path: auto-start, run a pipeline, wait for it, stop."""

from __future__ import annotations

from blackbox import OjEnv


def test_run_wait_stop(ojenv: OjEnv) -> None:
    ojenv.runbook(
        "build.hcl",
        """
        command "build" {
          args = "<name> <prompt>"
          run  = { pipeline = "build" }
        }
        pipeline "build" {
          step "execute" {
            run = "echo 'Building ${var.name}' > out.txt"
          }
        }
        """,
    )
    pid = ojenv.run_pipeline("build", "feat", "do it")
    wait = ojenv.oj("pipeline", "wait", pid)
    assert wait.returncode == 0, wait.stderr
    assert f"Pipeline feat ({pid[:8]}) completed" in wait.stdout
    assert (ojenv.project / "out.txt").read_text() == "Building feat\n"
    assert ojenv.ok("daemon", "stop") == "Daemon stopped\n"
    assert ojenv.ok("daemon", "status") == "Daemon not running\n"
