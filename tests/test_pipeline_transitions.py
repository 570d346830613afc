"""Black-box: transition rules (reference §2.5, SPEC §4.5), failures and shell commands.

Every step appends its own name to ``<kind>.trace`` in the invoking directory, so the order in
which steps really ran is visible from outside. All pipelines of one runbook run at the same
time (one daemon start-up for the whole rule table).
"""

from __future__ import annotations

from pathlib import Path

from blackbox import OjEnv, wait_for

RUNBOOK = """
command "chain" {
  run = { pipeline = "chain" }
}
command "nofall" {
  run = { pipeline = "nofall" }
}
command "stepfail" {
  run = { pipeline = "stepfail" }
}
command "pdone" {
  run = { pipeline = "pdone" }
}
command "pfail" {
  run = { pipeline = "pfail" }
}
command "pfail2" {
  run = { pipeline = "pfail2" }
}
command "precedence" {
  run = { pipeline = "precedence" }
}
command "attempts" {
  run = { pipeline = "attempts" }
}
command "attempts2" {
  run = { pipeline = "attempts2" }
}
command "failing" {
  run = { pipeline = "failing" }
}

# on_done chain: transition order a -> c -> b, not file order
pipeline "chain" {
  step "a" {
    run     = "echo a >> chain.trace"
    on_done = "c"
  }
  step "b" {
    run = "echo b >> chain.trace"
  }
  step "c" {
    run     = "echo c >> chain.trace"
    on_done = { step = "b" }
  }
}

# no fall-through: without on_done only the first step runs
pipeline "nofall" {
  step "a" {
    run = "echo a >> nofall.trace"
  }
  step "b" {
    run = "echo b >> nofall.trace"
  }
}

pipeline "stepfail" {
  step "a" {
    run     = "echo a >> stepfail.trace; exit 1"
    on_done = "b"
    on_fail = "recover"
  }
  step "b" {
    run = "echo b >> stepfail.trace"
  }
  step "recover" {
    run = "echo recover >> stepfail.trace"
  }
}

pipeline "pdone" {
  on_done = "teardown"
  step "a" {
    run     = "echo a >> pdone.trace"
    on_done = "b"
  }
  step "b" {
    run = "echo b >> pdone.trace"
  }
  step "teardown" {
    run = "echo teardown >> pdone.trace"
  }
}

pipeline "pfail" {
  on_fail = "cleanup"
  step "a" {
    run     = "echo a >> pfail.trace; exit 1"
    on_done = "b"
  }
  step "b" {
    run = "echo b >> pfail.trace"
  }
  step "cleanup" {
    run = "echo cleanup >> pfail.trace"
  }
}

# the pipeline-level on_fail target failing itself is a terminal failure
pipeline "pfail2" {
  on_fail = "cleanup"
  step "a" {
    run = "echo a >> pfail2.trace; exit 1"
  }
  step "cleanup" {
    run = "echo cleanup >> pfail2.trace; exit 2"
  }
}

# step-level transitions win over pipeline-level ones
pipeline "precedence" {
  on_done = "teardown"
  on_fail = "cleanup"
  step "a" {
    run     = "echo a >> precedence.trace; exit 1"
    on_fail = "fix"
  }
  step "fix" {
    run     = "echo fix >> precedence.trace"
    on_done = "last"
  }
  step "last" {
    run = "echo last >> precedence.trace"
  }
  step "teardown" {
    run = "echo teardown >> precedence.trace"
  }
  step "cleanup" {
    run = "echo cleanup >> precedence.trace"
  }
}

pipeline "attempts" {
  step "work" {
    run     = "echo work >> attempts.trace; exit 1"
    on_fail = { step = "retry", attempts = 2 }
  }
  step "retry" {
    run     = "echo retry >> attempts.trace"
    on_done = "work"
  }
}


# once the attempts are used up the step's on_fail is ignored: pipeline on_fail applies
pipeline "attempts2" {
  on_fail = "cleanup"
  step "work" {
    run     = "echo work >> attempts2.trace; exit 1"
    on_fail = { step = "work", attempts = 1 }
  }
  step "cleanup" {
    run = "echo cleanup >> attempts2.trace"
  }
}

pipeline "failing" {
  step "a" {
    run = "echo a >> failing.trace; exit 1"
  }
}
"""

EXPECTED = {
    # kind: (trace, final step, final status)
    "chain": (["a", "c", "b"], "done", "Completed"),
    "nofall": (["a"], "done", "Completed"),
    "stepfail": (["a", "recover"], "done", "Completed"),
    "pdone": (["a", "b", "teardown"], "done", "Completed"),
    "pfail": (["a", "cleanup"], "done", "Completed"),
    "pfail2": (["a", "cleanup"], "failed", "Failed"),
    "precedence": (["a", "fix", "last", "teardown"], "done", "Completed"),
    "attempts": (["work", "retry", "work", "retry", "work"], "failed", "Failed"),
    "attempts2": (["work", "work", "cleanup"], "done", "Completed"),
    "failing": (["a"], "failed", "Failed"),
}


def _trace(project: Path, kind: str) -> list[str]:
    path = project / f"{kind}.trace"
    return path.read_text().split() if path.exists() else []


def test_transition_rules(ojenv: OjEnv) -> None:
    ojenv.runbook("rules.hcl", RUNBOOK)
    ids = {kind: ojenv.run_pipeline(kind) for kind in EXPECTED}
    for kind, pid in ids.items():
        ojenv.oj("pipeline", "wait", pid[:10], "--timeout", "60s")
        trace, step, status = EXPECTED[kind]
        detail = ojenv.pipeline(pid)
        assert (kind, detail["step"], detail["step_status"]) == (kind, step, status)
        assert (kind, _trace(ojenv.project, kind)) == (kind, trace)

    # the history shows each step in the order it ran
    chain = ojenv.pipeline(ids["chain"])
    assert [s["name"] for s in chain["steps"]] == ["a", "c", "b"]
    assert all(s["outcome"] == "completed" for s in chain["steps"])
    assert ojenv.pipeline(ids["pfail2"])["error"] == "shell exited with code 2"
    attempts = ojenv.pipeline(ids["attempts"])
    assert attempts["error"] == "shell exited with code 1"
    # a manual resume starts a new run: the attempts budget is available again
    ojenv.ok("pipeline", "resume", ids["attempts"])
    wait_for(
        lambda: (
            len(_trace(ojenv.project, "attempts")) == 10
            and ojenv.pipeline(ids["attempts"])["step"] == "failed"
        ),
        what="the resumed pipeline to use up its attempts again",
    )
    assert _trace(ojenv.project, "attempts") == ["work", "retry", "work", "retry", "work"] * 2

    # a failing step: list shows failed / Failed, show prints the error
    failing = ids["failing"]
    show = ojenv.ok("pipeline", "show", failing[:8])
    assert "  Error: shell exited with code 1" in show.splitlines()
    rows = [line.split() for line in ojenv.ok("pipeline", "list", "--no-limit").splitlines()]
    row = next(r for r in rows if r[0] == failing[:12])
    assert row[-1] == "Failed"
    assert "failed" in row
    wait = ojenv.oj("pipeline", "wait", failing)
    assert wait.returncode == 1
    assert "failed" in wait.stderr


DONE_STEP = """
command "donestep" {
  run = { pipeline = "donestep" }
}
# a step named done is an ordinary step (SPEC 4.5): it runs, then the pipeline is done
pipeline "donestep" {
  step "a" {
    run     = "echo a >> donestep.trace"
    on_done = "done"
  }
  step "done" {
    run = "while [ ! -f go ]; do sleep 0.05; done; echo done >> donestep.trace"
  }
}
"""


def test_step_named_done_runs_then_pipeline_is_done(ojenv: OjEnv) -> None:
    ojenv.runbook("done.hcl", DONE_STEP)
    pid = ojenv.run_pipeline("donestep")
    wait_for(
        lambda: (d := ojenv.pipeline(pid))["step"] == "done" and d["step_status"] == "Running",
        what="the step named done to run",
    )
    assert ojenv.pipeline(pid)["step_status"] == "Running"
    running = ojenv.ok("pipeline", "list", "--status", "running").splitlines()
    assert [line.split()[0] for line in running[1:]] == [pid[:12]]
    # while the step named `done` runs, the pipeline is not terminal: wait times out
    early = ojenv.oj("pipeline", "wait", pid, "--timeout", "1s")
    assert (early.returncode, early.stderr.strip()) == (2, "Timeout waiting for pipeline(s)")
    (ojenv.project / "go").touch()
    wait = ojenv.oj("pipeline", "wait", pid, "--timeout", "60s")
    assert wait.returncode == 0, wait.stderr
    assert _trace(ojenv.project, "donestep") == ["a", "done"]
    detail = ojenv.pipeline(pid)
    assert (detail["step"], detail["step_status"]) == ("done", "Completed")
    assert [(s["name"], s["outcome"]) for s in detail["steps"]] == [
        ("a", "completed"),
        ("done", "completed"),
    ]


def test_shell_command_runs_in_project_root(ojenv: OjEnv) -> None:
    ojenv.runbook(
        "sh.hcl",
        """
        command "greet" {
          args = "<who>"
          run  = "printf '%s\\n' \\"hello ${args.who}\\" \\"$(pwd)\\" > greet.out"
        }
        """,
    )
    sub = ojenv.project / "sub" / "dir"
    sub.mkdir(parents=True)
    out = ojenv.ok("run", "greet", "it's me", cwd=sub)
    assert "Command greet invoked." in out
    pid = next(
        line.split()[-1] for line in out.splitlines() if line.strip().startswith("oj pipeline show")
    )
    wait = ojenv.oj("pipeline", "wait", pid)
    assert wait.returncode == 0, wait.stderr
    detail = ojenv.pipeline(pid)
    assert detail["kind"] == "greet"
    assert [s["name"] for s in detail["steps"]] == ["run"]
    assert (detail["step"], detail["step_status"]) == ("done", "Completed")
    # cwd is the project root, not the invoking directory
    written = (ojenv.project / "greet.out").read_text().splitlines()
    assert written == ["hello it's me", str(ojenv.project)]
    assert not (sub / "greet.out").exists()
