"""Black-box: `oj pipeline wait|logs|list|show|prune` against a handful of real pipelines."""

from __future__ import annotations

import signal

from blackbox import LineReader, OjEnv, popen_oj, wait_for

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
command "gate" {
  args = "<name>"
  run  = { pipeline = "gate" }
}
pipeline "ok" {
  step "hello" {
    run = "echo hello-out; echo err-out >&2"
  }
}
pipeline "bad" {
  step "a" {
    run = "exit 1"
  }
}
pipeline "slow" {
  step "sleep" {
    run = "sleep 300"
  }
}
pipeline "gate" {
  step "hold" {
    run = <<-SHELL
      while [ ! -f "${var.name}.go" ]; do sleep 0.05; done
      echo after-go
    SHELL
  }
}
"""


def test_wait_exit_codes(ojenv: OjEnv) -> None:
    ojenv.runbook("obs.hcl", RUNBOOK)
    alpha = ojenv.run_pipeline("ok", "alpha")
    beta = ojenv.run_pipeline("ok", "beta")
    gamma = ojenv.run_pipeline("bad", "gamma")
    slow = ojenv.run_pipeline("slow", "delta")

    done = ojenv.oj("pipeline", "wait", alpha[:8])
    assert done.returncode == 0, done.stderr
    assert f"Pipeline alpha ({alpha[:8]}) completed" in done.stdout.splitlines()

    failed = ojenv.oj("pipeline", "wait", gamma)
    assert failed.returncode == 1
    assert f"Pipeline gamma ({gamma[:8]}) failed: shell exited with code 1" in failed.stderr

    unknown = ojenv.oj("pipeline", "wait", "nope-nope")
    assert unknown.returncode == 3
    assert "Pipeline not found: nope-nope" in unknown.stderr

    for bad, message in (
        ("5x", "unknown duration unit 'x' in: 5x"),
        ("0s", "duration must be > 0: 0s"),
        ("soon", "invalid duration: soon"),
    ):
        rejected = ojenv.oj("pipeline", "wait", slow, "--timeout", bad)
        assert rejected.returncode != 0
        assert message in rejected.stderr

    timeout = ojenv.oj("pipeline", "wait", slow, "--timeout", "1s")
    assert timeout.returncode == 2
    assert "Timeout waiting for pipeline(s)" in timeout.stderr

    # several ids: returns on the first terminal one
    first = ojenv.oj("pipeline", "wait", slow, beta)
    assert first.returncode == 0, first.stderr
    assert f"Pipeline beta ({beta[:8]}) completed" in first.stdout

    both = ojenv.oj("pipeline", "wait", "--all", alpha, beta)
    assert both.returncode == 0, both.stderr
    finals = [line for line in both.stdout.splitlines() if line.startswith("Pipeline ")]
    assert sorted(finals) == [
        f"Pipeline alpha ({alpha[:8]}) completed",
        f"Pipeline beta ({beta[:8]}) completed",
    ]
    mixed = ojenv.oj("pipeline", "wait", "--all", alpha, gamma)
    assert mixed.returncode == 1

    # SIGINT → 130 (the first progress line shows wait is up and polling)
    proc = popen_oj(ojenv, "pipeline", "wait", slow)
    try:
        LineReader(proc).wait_line("sleep started")
        proc.send_signal(signal.SIGINT)
        code = wait_for(lambda: proc.poll() is not None and (proc.returncode,), what="wait to end")
        assert code == (130,)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    ojenv.ok("pipeline", "cancel", slow)


def test_logs(ojenv: OjEnv) -> None:
    ojenv.runbook("obs.hcl", RUNBOOK)
    pid = ojenv.run_pipeline("ok", "alpha")
    assert ojenv.oj("pipeline", "wait", pid).returncode == 0
    lines = wait_for(
        lambda: (
            (out := ojenv.ok("pipeline", "logs", pid[:10]).splitlines())
            and "pipeline completed" in out[-1]
            and out
        ),
        what="the pipeline log to end with `pipeline completed`",
    )
    body = [line.split(" ", 1)[1] for line in lines]  # drop the timestamp
    assert body[0] == "[init] pipeline created"
    assert "[hello] step started" in body
    assert f"[hello] shell (cwd: {ojenv.project}): echo hello-out; echo err-out >&2" in body
    assert any(b.startswith("[hello]") and b.endswith("hello-out") for b in body)
    assert any(b.startswith("[hello]") and b.endswith("err-out") for b in body)
    assert "[hello] shell completed (exit 0)" in body
    assert body[-1].endswith("pipeline completed")

    assert ojenv.ok("pipeline", "logs", pid, "-n", "2").splitlines() == lines[-2:]
    as_json = ojenv.json("pipeline", "logs", pid)
    assert as_json["lines"] == lines
    assert as_json["log_path"] == str(ojenv.state / "logs" / f"{pid}.log")

    failed = ojenv.run_pipeline("bad", "gamma")
    assert ojenv.oj("pipeline", "wait", failed).returncode == 1
    failed_lines = wait_for(
        lambda: (
            (out := ojenv.ok("pipeline", "logs", failed).splitlines())
            and "pipeline failed" in out[-1]
            and out
        ),
        what="the failed pipeline's log to end",
    )
    failed_body = [line.split(" ", 1)[1] for line in failed_lines]
    assert "[a] shell failed (exit 1)" in failed_body
    assert failed_body[-1] == "[a] pipeline failed: shell exited with code 1"

    unknown = ojenv.oj("pipeline", "logs", "nope-nope")
    assert unknown.returncode == 0
    assert "No log entries found for pipeline nope-nope" in unknown.stderr

    # -f prints lines appended later
    gate = ojenv.run_pipeline("gate", "g1")
    proc = popen_oj(ojenv, "pipeline", "logs", gate, "-f")
    try:
        reader = LineReader(proc)
        reader.wait_line("[hold] step started")
        (ojenv.project / "g1.go").touch()
        reader.wait_line("after-go")
        reader.wait_line("pipeline completed")
        # ...and ends by itself once the pipeline has ended and its log is drained.
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.terminate()
        proc.wait()


def test_list_show_prune(ojenv: OjEnv) -> None:
    ojenv.runbook("obs.hcl", RUNBOOK)
    ojenv.ok("daemon", "start")
    assert ojenv.ok("pipeline", "list") == "No pipelines\n"
    alpha = ojenv.run_pipeline("ok", "alpha")
    beta = ojenv.run_pipeline("ok", "beta")
    gamma = ojenv.run_pipeline("bad", "gamma")
    gate = ojenv.run_pipeline("gate", "held")
    for pid in (alpha, beta, gamma):
        ojenv.oj("pipeline", "wait", pid)
    ojenv.wait_status(gate, "Running")

    def ids(*args: str) -> list[str]:
        rows = ojenv.ok("pipeline", "list", *args).splitlines()
        assert rows[0].split()[0] == "ID"
        return sorted(row.split()[0] for row in rows[1:] if row.strip() and row[0] != ".")

    short = {pid: pid[:12] for pid in (alpha, beta, gamma, gate)}
    assert ids() == sorted(short.values())
    assert ids("ALP") == [short[alpha]]
    assert ids("--status", "failed") == [short[gamma]]
    assert ids("--status", "completed") == sorted([short[alpha], short[beta]])
    assert ids("--status", "Running") == [short[gate]]
    limited = ojenv.ok("pipeline", "list", "-n", "1")
    assert limited.endswith("\n... 3 more not shown. Use --no-limit or --limit N to see more.\n"), (
        limited
    )
    assert len(ids("-n", "1")) == 1
    assert len(ids("--no-limit")) == 4
    listed = ojenv.json("pipeline", "list")
    assert isinstance(listed, list)
    assert sorted(p["id"] for p in listed) == sorted(short)
    row = next(p for p in listed if p["id"] == gamma)
    assert (row["name"], row["kind"], row["step"], row["step_status"]) == (
        "gamma",
        "bad",
        "failed",
        "Failed",
    )

    status = ojenv.ok("status").splitlines()
    assert "  Pipelines (1 active):" in status
    assert any(line.split()[:1] == [short[gate]] for line in status)  # 12 characters, as listed

    show = ojenv.ok("pipeline", "show", alpha[:6]).splitlines()
    assert show[0] == f"Pipeline: {alpha}"
    assert "  Name: alpha" in show
    assert "  Kind: ok" in show
    assert "  Status: Completed" in show
    assert "    name: alpha" in show
    missing = ojenv.oj("pipeline", "show", "nonexistent-id")
    assert (missing.returncode, missing.stdout) == (0, "Pipeline not found: nonexistent-id\n")
    assert ojenv.oj("pipeline", "show", "nonexistent-id", "-o", "json").stdout.strip() == "null"

    # prune: dry run lists without removing; the running pipeline is skipped
    logs = {pid: ojenv.state / "logs" / f"{pid}.log" for pid in short}
    assert all(path.exists() for path in logs.values())
    dry = ojenv.ok("pipeline", "prune", "--all", "--dry-run").splitlines()
    assert dry[0] == "Dry run — no changes made"
    assert f"Would prune gamma ({short[gamma]}, failed)" in dry
    assert f"Would prune alpha ({short[alpha]}, done)" in dry
    assert dry[-1] == "3 pipeline(s) would be pruned, 1 skipped"
    assert len(ids()) == 4
    pruned = ojenv.ok("pipeline", "prune", "--all").splitlines()
    assert f"Pruned beta ({short[beta]}, done)" in pruned
    assert pruned[-1] == "3 pipeline(s) pruned, 1 skipped"
    assert ids() == [short[gate]]
    assert not any(logs[pid].exists() for pid in (alpha, beta, gamma))
    assert logs[gate].exists()
    assert ojenv.oj("pipeline", "show", alpha, "-o", "json").stdout.strip() == "null"
    (ojenv.project / "held.go").touch()
    assert ojenv.oj("pipeline", "wait", gate[:7]).returncode == 0
