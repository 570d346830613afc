"""Black-box: `oj queue wait` and the done/failed/remaining counter of `oj pipeline wait --all`
(issue 13): exit codes, plain lines when piped, one live line on a terminal (a real pty).

Steps are held by "hold" files the test removes, then fail if a "fail" file exists: no sleeps.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from blackbox import OJ, OjEnv, popen_oj, wait_for

RUNBOOK = """
queue "q" {
  type = "persisted"
  vars = ["tag"]
}
queue "ext" {
  type = "external"
  list = "echo '[]'"
  take = "true"
}
worker "w" {
  source      = { queue = "q" }
  handler     = { pipeline = "job" }
  concurrency = 3
}
pipeline "job" {
  vars = ["tag"]
  step "s" {
    run = <<-SHELL
      while test -f "MARKS/hold.${item.tag}"; do sleep 0.02; done
      test ! -f "MARKS/fail.${item.tag}"
    SHELL
  }
}
command "slow" {
  args = "<tag>"
  run  = { pipeline = "solo" }
}
pipeline "solo" {
  vars = ["tag"]
  step "s" {
    run = <<-SHELL
      while test -f "MARKS/hold.${var.tag}"; do sleep 0.02; done
      test ! -f "MARKS/fail.${var.tag}"
    SHELL
  }
}
"""

COUNTER = r"^\d+ done, \d+ failed, \d+ remaining$"


def setup(ojenv: OjEnv) -> Path:
    marks = ojenv.root / "m"
    marks.mkdir()
    ojenv.runbook("q.hcl", RUNBOOK.replace("MARKS", str(marks)))
    return marks


def push_held(ojenv: OjEnv, marks: Path, *tags: str) -> None:
    for tag in tags:
        (marks / f"hold.{tag}").touch()
        ojenv.ok("queue", "push", "q", "--var", f"tag={tag}")


def counters(text: str) -> list[str]:
    return [line for line in text.splitlines() if "remaining" in line]


def active_items(ojenv: OjEnv, n: int) -> None:
    def busy() -> bool:
        items = json.loads(ojenv.ok("queue", "items", "q", "-o", "json"))
        return sum(i["status"] == "active" for i in items) == n

    wait_for(busy, timeout=30, what=f"{n} active items")


def test_queue_wait_until_drained_prints_a_counter_line_per_change(ojenv: OjEnv) -> None:
    marks = setup(ojenv)
    push_held(ojenv, marks, "a", "b", "c")
    active_items(ojenv, 3)
    proc = popen_oj(ojenv, "queue", "wait", "q")
    assert proc.stdout is not None
    first = proc.stdout.readline()  # the wait has seen the queue busy
    for tag in ("a", "b", "c"):
        (marks / f"hold.{tag}").unlink()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    out = first + out
    lines = counters(out)
    assert lines == out.splitlines(), "piped: plain counter lines only"
    assert lines[0] == "0 done, 0 failed, 3 remaining"
    assert lines[-1] == "3 done, 0 failed, 0 remaining"
    assert len(lines) == len(set(lines)), "a line per change, not per poll"


def test_queue_wait_exits_1_when_an_item_went_dead(ojenv: OjEnv) -> None:
    marks = setup(ojenv)
    push_held(ojenv, marks, "ok", "bad")
    active_items(ojenv, 2)
    proc = popen_oj(ojenv, "queue", "wait", "q")
    assert proc.stdout is not None
    assert proc.stdout.readline() == "0 done, 0 failed, 2 remaining\n"
    (marks / "fail.bad").touch()  # no retry block: a failure is dead at once
    (marks / "hold.bad").unlink()
    (marks / "hold.ok").unlink()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, (out, err)
    assert counters(out)[-1] == "1 done, 1 failed, 0 remaining"
    # A dead item from before the wait does not fail the next one.
    assert ojenv.oj("queue", "wait", "q").returncode == 0


def test_queue_wait_timeout_exits_2_and_json_summary(ojenv: OjEnv) -> None:
    marks = setup(ojenv)
    push_held(ojenv, marks, "x")
    result = ojenv.oj("queue", "wait", "q", "--timeout", "1s")
    assert result.returncode == 2, result
    assert "Timeout waiting for queue 'q'" in result.stderr
    assert counters(result.stdout)[-1] == "0 done, 0 failed, 1 remaining"
    as_json = ojenv.oj("queue", "wait", "q", "--timeout", "1s", "-o", "json")
    assert as_json.returncode == 2
    assert json.loads(as_json.stdout) == {
        "queue": "q",
        "done": 0,
        "dead": 0,
        "remaining": 1,
        "timed_out": True,
    }
    (marks / "hold.x").unlink()
    done = ojenv.oj("queue", "wait", "q", "-o", "json")
    assert done.returncode == 0
    assert json.loads(done.stdout)["remaining"] == 0


def test_queue_wait_on_an_idle_queue_returns_at_once_and_errors_are_one_line(
    ojenv: OjEnv,
) -> None:
    setup(ojenv)
    ojenv.ok("daemon", "start")
    assert ojenv.ok("queue", "wait", "q") == "0 done, 0 failed, 0 remaining\n"
    unknown = ojenv.oj("queue", "wait", "nope")
    assert unknown.returncode != 0 and unknown.stderr.count("\n") == 1, unknown
    assert "nope" in unknown.stderr
    external = ojenv.oj("queue", "wait", "ext")
    assert external.returncode == 1
    assert external.stderr == "Error: queue 'ext' is external: oj cannot tell when it is empty\n"
    bad = ojenv.oj("queue", "wait", "q", "--timeout", "soon")
    assert bad.returncode == 2 and "invalid duration" in bad.stderr


def on_a_terminal(
    ojenv: OjEnv, *args: str, then: Callable[[], None] = lambda: None, until: float = 60
) -> tuple[int, str]:
    """Run `oj ARGS` with stdout on a pty, call `then` once it wrote something; return its exit
    status and everything it wrote."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [OJ, *args],
        cwd=ojenv.project,
        env=ojenv.env,
        stdout=follower,
        stderr=subprocess.PIPE,
    )
    os.close(follower)
    chunks = []
    deadline = time.monotonic() + until
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.1)
        if ready:
            try:
                data = os.read(leader, 4096)
            except OSError:  # EIO: the child closed its end
                break
            if not data:
                break
            if not chunks:
                then()
            chunks.append(data)
        elif proc.poll() is not None:
            break
    os.close(leader)
    code = proc.wait(timeout=30)
    assert proc.stderr is not None
    proc.stderr.close()
    return code, b"".join(chunks).decode()


def test_queue_wait_redraws_one_line_on_a_terminal(ojenv: OjEnv) -> None:
    marks = setup(ojenv)
    push_held(ojenv, marks, "t")
    active_items(ojenv, 1)
    code, text = on_a_terminal(ojenv, "queue", "wait", "q", then=(marks / "hold.t").unlink)
    assert code == 0
    assert text.startswith("\r\x1b[2K")
    assert text.endswith("1 done, 0 failed, 0 remaining\r\n")  # the pty turns \n into \r\n
    assert text.count("\n") == 1, "one line, redrawn in place"


@pytest.mark.parametrize("terminal", [False, True])
def test_pipeline_wait_all_counts_done_failed_remaining(ojenv: OjEnv, terminal: bool) -> None:
    marks = setup(ojenv)
    for tag in ("p1", "p2", "p3"):
        (marks / f"hold.{tag}").touch()
    (marks / "fail.p3").touch()
    ids = [ojenv.run_pipeline("slow", tag) for tag in ("p1", "p2", "p3")]
    for tag in ("p1", "p2", "p3"):
        (marks / f"hold.{tag}").unlink()
    if terminal:
        code, text = on_a_terminal(ojenv, "pipeline", "wait", "--all", *ids)
        lines = text.replace("\r\n", "\n").split("\n")
        assert all("\r\x1b[2K" in line or not line.endswith("remaining") for line in lines)
        assert " s started" not in text, "a terminal gets the counter, not every step"
        assert lines[-2].endswith("2 done, 1 failed, 0 remaining")
    else:
        result = ojenv.oj("pipeline", "wait", "--all", *ids)
        code, text = result.returncode, result.stdout
        assert counters(text)[-1] == "2 done, 1 failed, 0 remaining"
        assert all(re.match(COUNTER, line) for line in counters(text))
    assert code == 1
