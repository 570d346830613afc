"""Black-box: workers through the real `oj`/`ojd` (issue 9, seeds 000 and 001, SPEC §2, §4.4).

Auto-start on push; concurrency never exceeded; item fields in steps; `oj worker stop` drains
(cancels nothing, dispatches nothing new, sticky against pushes) and `start` resumes; `stop
--all`; `resize` (durable, cancels nothing) and `restart`; workers across a graceful daemon
restart; external queues (dedup of items in flight, `poll`, a failing or malformed `list`).

Each handler step appends `start <tag>` to `MARKS/log`, waits for a gate file the test creates
(`go.<tag>`, or `go.all` for every item), and its next step appends `end <tag>`: the test decides
when a pipeline may finish and reads from the files what ran, in which order. No fixed sleeps,
except `holds()`, which checks that something does *not* happen for a short while.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from blackbox import OJ, OjEnv, wait_for

PUSHED = re.compile(r"^Pushed item '([0-9a-f-]{36})' to queue '([^']+)'\n$")

GATED = """
pipeline "p" {
  vars = ["job"]
  step "s" {
    run = <<-SHELL
      printf '%s|%s|%s|%s|%s\\n' "${item.tag}" "${var.job.tag}" "${item.note}" "${var.job.id}" "${item.id}" > "MARKS/vars.${item.tag}"
      echo "start ${item.tag}" >> "MARKS/log"
      while ! test -f "MARKS/go.${item.tag}" && ! test -f "MARKS/go.all"; do sleep 0.02; done
    SHELL
    on_done = "t"
  }
  step "t" {
    run = "echo \\"end ${item.tag}\\" >> \\"MARKS/log\\""
  }
}
"""

WORKERS = (
    """
queue "q" {
  type     = "persisted"
  vars     = ["tag"]
  defaults = { note = "-" }
}
queue "q2" {
  type     = "persisted"
  vars     = ["tag"]
  defaults = { note = "-" }
}
worker "w" {
  source      = { queue = "q" }
  handler     = { pipeline = "p" }
  concurrency = 2
}
worker "w2" {
  source  = { queue = "q2" }
  handler = { pipeline = "p" }
}
"""
    + GATED
)

EXTERNAL = """
queue "ext" {
  type = "external"
  list = "echo polled >> MARKS/polls; test ! -f MARKS/list.fail; cat MARKS/list.json"
  take = "echo ${item.id} >> MARKS/taken"
  poll = "1s"
}
worker "x" {
  source      = { queue = "ext" }
  handler     = { pipeline = "e" }
  concurrency = 3
}
pipeline "e" {
  vars = ["job"]
  step "s" {
    run = <<-SHELL
      printf '%s|%s\\n' "${item.title}" "${var.job.title}" > "MARKS/vars.${item.id}"
      echo "start ${item.id}" >> "MARKS/log"
      while ! test -f "MARKS/go.${item.id}" && ! test -f "MARKS/go.all"; do sleep 0.02; done
      echo "end ${item.id}" >> "MARKS/log"
    SHELL
  }
}
"""


# -- helpers ---------------------------------------------------------------------------------


def setup(ojenv: OjEnv, text: str = WORKERS) -> Path:
    marks = ojenv.root / "m"
    marks.mkdir(exist_ok=True)
    ojenv.runbook("workers.hcl", text.replace("MARKS", str(marks)))
    return marks


def push(ojenv: OjEnv, queue: str, *args: str) -> str:
    out = ojenv.ok("queue", "push", queue, *args)
    match = PUSHED.match(out)
    assert match, out
    return match.group(1)


def log_lines(marks: Path) -> list[str]:
    log = marks / "log"
    return log.read_text().splitlines() if log.exists() else []


def started(marks: Path) -> list[str]:
    return [line.split()[1] for line in log_lines(marks) if line.startswith("start ")]


def ended(marks: Path) -> list[str]:
    return [line.split()[1] for line in log_lines(marks) if line.startswith("end ")]


def wait_started(marks: Path, *tags: str) -> None:
    wait_for(
        lambda: set(tags) <= set(started(marks)),
        timeout=30,
        what=f"steps of {tags} to start",
    )


def statuses(ojenv: OjEnv, queue: str) -> dict[str, str]:
    out = ojenv.ok("queue", "items", queue, "-o", "json")
    if out.startswith("No items"):
        return {}
    return {i["data"]["tag"]: i["status"] for i in json.loads(out)}


def wait_statuses(ojenv: OjEnv, queue: str, expected: dict[str, str]) -> None:
    wait_for(
        lambda: all(statuses(ojenv, queue).get(t) == s for t, s in expected.items()),
        timeout=30,
        what=f"items of {queue} to be {expected}",
    )


def worker(ojenv: OjEnv, name: str, project: str = "p") -> dict[str, Any]:
    for w in ojenv.json("worker", "list"):
        if (w["name"], w["namespace"]) == (name, project):
            return w
    raise AssertionError(f"no worker {project}/{name} in `oj worker list`")


def queue_summary(ojenv: OjEnv, name: str) -> dict[str, Any]:
    return next(q for q in ojenv.json("queue", "list") if q["name"] == name)


def holds(predicate: Callable[[], object], seconds: float, what: str) -> None:
    """Assert ``predicate()`` stays truthy for ``seconds`` (a negative check: nothing happens)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert predicate(), what
        time.sleep(0.05)


def worker_events(ojenv: OjEnv) -> list[str]:
    """The WAL's `runbook:loaded` and `worker:started|wake|stopped` event types, in order
    (SPEC §3: one `{"seq", "event": {"type", …}}` object a line)."""
    wal = ojenv.state / "wal" / "events.wal"
    kinds = ("runbook:loaded", "worker:started", "worker:wake", "worker:stopped")
    types = [json.loads(line)["event"]["type"] for line in wal.read_text().splitlines()]
    return [t for t in types if t in kinds]


def max_running(lines: list[str]) -> int:
    running, most = 0, 0
    for line in lines:
        if line.startswith("start "):
            running += 1
            most = max(most, running)
        elif line.startswith("end "):
            running -= 1
    return most


def write_list(marks: Path, entries: list[dict[str, Any]] | str) -> None:
    """Replace what the external queue's `list` prints (atomically: `list` may be reading)."""
    tmp = marks / "list.json.tmp"
    tmp.write_text(entries if isinstance(entries, str) else json.dumps(entries))
    os.replace(tmp, marks / "list.json")


def lines_of(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


# -- auto-start, item fields, concurrency ----------------------------------------------------


def test_push_auto_starts_the_worker_and_steps_see_the_item(ojenv: OjEnv) -> None:
    marks = setup(ojenv)
    assert ojenv.ok("daemon", "start") == "Daemon started\n"
    assert ojenv.ok("worker", "list") == "No workers found\n"
    (marks / "go.a").touch()
    item_id = push(ojenv, "q", '{"tag":"a","note":"two words"}')
    # no `oj worker start`: the push started it (seed 001)
    w = worker(ojenv, "w")
    assert (w["status"], w["queue"], w["concurrency"]) == ("running", "q", 2)
    wait_statuses(ojenv, "q", {"a": "completed"})
    fields = (marks / "vars.a").read_text().rstrip("\n").split("|")
    assert fields == ["a", "a", "two words", item_id, item_id]
    assert ended(marks) == ["a"]
    assert worker_events(ojenv) == ["runbook:loaded", "worker:started"]
    # a push to a running worker wakes it (one `worker:wake`, no second `worker:started`);
    # `start` on a running worker only wakes it too
    (marks / "go.b").touch()
    push(ojenv, "q", "--var", "tag=b")
    wait_statuses(ojenv, "q", {"b": "completed"})
    assert worker_events(ojenv) == ["runbook:loaded", "worker:started", "worker:wake"]
    assert ojenv.ok("worker", "start", "w") == "Worker 'w' already running (woken)\n"
    assert worker_events(ojenv)[-2:] == ["worker:wake", "worker:wake"]
    assert [w["name"] for w in ojenv.json("worker", "list")] == ["w"]  # w2 was never started
    table = ojenv.ok("worker", "list").splitlines()
    assert table[0].split() == ["NAME", "PROJECT", "QUEUE", "STATUS", "ACTIVE", "CONCURRENCY"]
    assert table[1].split() == ["w", "p", "q", "running", "0", "2"]


def test_concurrency_two_with_five_items_never_exceeds_two(ojenv: OjEnv) -> None:
    marks = setup(ojenv)
    batch = "".join(json.dumps({"tag": f"i{n}"}) + "\n" for n in range(5))
    assert ojenv.ok("queue", "push", "q", "--file", "-", input=batch) == (
        "Pushed 5 items to queue 'q'\n"
    )
    wait_for(lambda: len(started(marks)) >= 2, timeout=30, what="two steps to start")
    summary = queue_summary(ojenv, "q")
    assert (summary["pending"], summary["active"]) == (3, 2), summary
    assert worker(ojenv, "w")["active"] == 2
    assert len(started(marks)) == 2

    (marks / "go.all").touch()
    wait_statuses(ojenv, "q", {f"i{n}": "completed" for n in range(5)})
    lines = log_lines(marks)
    assert sorted(started(marks)) == sorted(ended(marks)) == [f"i{n}" for n in range(5)]
    assert max_running(lines) == 2, lines
    assert worker(ojenv, "w")["active"] == 0


# -- stop (seed 000) -------------------------------------------------------------------------


def test_stop_drains_active_pipelines_and_is_sticky_until_start(ojenv: OjEnv) -> None:
    marks = setup(ojenv)
    push(ojenv, "q", "--var", "tag=a")
    push(ojenv, "q", "--var", "tag=b")
    wait_started(marks, "a", "b")

    assert ojenv.ok("worker", "stop", "w") == "Worker 'w' stopped\n"
    w = worker(ojenv, "w")
    assert (w["status"], w["active"]) == ("stopped", 2)
    assert "stopped" in ojenv.ok("worker", "list")
    # a push to a stopped worker's queue stays pending (stop is sticky)
    push(ojenv, "q", "--var", "tag=c")
    assert statuses(ojenv, "q") == {"a": "active", "b": "active", "c": "pending"}
    assert worker_events(ojenv)[-1] == "worker:stopped"  # the push did not start it again

    # nothing was cancelled: both pipelines finish and their items complete
    (marks / "go.a").touch()
    (marks / "go.b").touch()
    wait_statuses(ojenv, "q", {"a": "completed", "b": "completed"})
    assert sorted(ended(marks)) == ["a", "b"]
    w = worker(ojenv, "w")
    assert (w["status"], w["active"]) == ("stopped", 0)
    # ... and nothing new was dispatched when they ended
    holds(lambda: statuses(ojenv, "q")["c"] == "pending", 0.5, "c stays pending")
    assert "c" not in started(marks)
    assert len(ojenv.json("pipeline", "list")) == 2

    assert ojenv.ok("worker", "start", "w") == "Worker 'w' started\n"
    assert worker(ojenv, "w")["status"] == "running"
    wait_started(marks, "c")
    (marks / "go.c").touch()
    wait_statuses(ojenv, "q", {"c": "completed"})

    unknown = ojenv.oj("worker", "stop", "nope")
    assert (unknown.returncode, unknown.stdout) == (1, "")
    assert unknown.stderr.startswith("Error: ") and "nope" in unknown.stderr
    assert len(unknown.stderr.splitlines()) == 1
    unknown = ojenv.oj("worker", "start", "nope")
    assert unknown.returncode == 1 and "nope" in unknown.stderr
    assert ojenv.oj("worker", "stop").returncode == 2  # neither a name nor --all

    # --all: every running worker of the project
    (marks / "go.d").touch()
    push(ojenv, "q2", "--var", "tag=d")  # auto-starts w2
    wait_statuses(ojenv, "q2", {"d": "completed"})
    assert sorted(ojenv.ok("worker", "stop", "--all").splitlines()) == [
        "Worker 'w' stopped",
        "Worker 'w2' stopped",
    ]
    assert {w["name"]: w["status"] for w in ojenv.json("worker", "list")} == {
        "w": "stopped",
        "w2": "stopped",
    }
    assert ojenv.ok("worker", "stop", "--all") == "No running workers\n"
    push(ojenv, "q2", "--var", "tag=e")
    assert statuses(ojenv, "q2")["e"] == "pending"


# -- resize, restart -------------------------------------------------------------------------


def test_resize_holds_back_dispatch_is_durable_and_restart_resets(ojenv: OjEnv) -> None:
    marks = setup(ojenv)
    push(ojenv, "q", "--var", "tag=a")
    push(ojenv, "q", "--var", "tag=b")
    wait_started(marks, "a", "b")

    assert ojenv.ok("worker", "resize", "w", "1") == "Worker 'w' resized: 2 → 1\n"
    w = worker(ojenv, "w")
    assert (w["status"], w["active"], w["concurrency"]) == ("running", 2, 1)
    push(ojenv, "q", "--var", "tag=c")
    assert statuses(ojenv, "q") == {"a": "active", "b": "active", "c": "pending"}  # none cancelled

    (marks / "go.a").touch()
    wait_statuses(ojenv, "q", {"a": "completed"})
    # one still runs: that is not below a concurrency of 1
    holds(lambda: statuses(ojenv, "q")["c"] == "pending", 0.5, "c waits for b")
    (marks / "go.b").touch()
    wait_started(marks, "c")
    (marks / "go.c").touch()
    wait_statuses(ojenv, "q", {"b": "completed", "c": "completed"})
    assert max_running(log_lines(marks)) == 2

    # durable across a daemon restart
    assert ojenv.ok("daemon", "stop") == "Daemon stopped\n"
    assert ojenv.ok("daemon", "start") == "Daemon started\n"
    w = worker(ojenv, "w")
    assert (w["status"], w["concurrency"]) == ("running", 1)

    # restart re-reads the runbook: the resize is gone
    assert ojenv.ok("worker", "restart", "w") == "Worker 'w' restarted\n"
    w = worker(ojenv, "w")
    assert (w["status"], w["concurrency"]) == ("running", 2)

    # a resize of a stopped worker is kept and applies when it starts
    ojenv.ok("worker", "stop", "w")
    assert ojenv.ok("worker", "resize", "w", "3") == "Worker 'w' resized: 2 → 3\n"
    assert worker(ojenv, "w")["concurrency"] == 3
    ojenv.ok("worker", "start", "w")
    w = worker(ojenv, "w")
    assert (w["status"], w["concurrency"]) == ("running", 3)

    zero = ojenv.oj("worker", "resize", "w", "0")
    assert zero.returncode == 2 and "at least 1" in zero.stderr
    unknown = ojenv.oj("worker", "resize", "nope", "2")
    assert unknown.returncode == 1 and "nope" in unknown.stderr
    assert worker(ojenv, "w")["concurrency"] == 3


def test_workers_across_a_graceful_daemon_restart(ojenv: OjEnv) -> None:
    """A running worker comes back running with its pipeline; a stopped one stays stopped."""
    marks = setup(ojenv)
    ojenv.env["OJ_STOP_GRACE_MS"] = "60000"  # the step is released during the drain
    (marks / "go.z").touch()
    push(ojenv, "q2", "--var", "tag=z")
    wait_statuses(ojenv, "q2", {"z": "completed"})
    ojenv.ok("worker", "stop", "w2")
    push(ojenv, "q", "--var", "tag=a")
    wait_started(marks, "a")

    log = ojenv.state / "daemon.log"
    stopping = subprocess.Popen(
        [OJ, "daemon", "stop"],
        cwd=ojenv.project,
        env=ojenv.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: "shutting down" in log.read_text(), what="the daemon to start draining")
        (marks / "go.a").touch()  # step `s` ends within the grace; `t` must wait for the start
        out, err = stopping.communicate(timeout=60)
    finally:
        if stopping.poll() is None:
            stopping.kill()
    assert (stopping.returncode, out) == (0, "Daemon stopped\n"), err
    assert "a" not in ended(marks)

    assert ojenv.ok("daemon", "start") == "Daemon started\n"
    wait_statuses(ojenv, "q", {"a": "completed"})
    assert ended(marks).count("a") == 1 and started(marks).count("a") == 1
    workers = {w["name"]: w["status"] for w in ojenv.json("worker", "list")}
    assert workers == {"w": "running", "w2": "stopped"}
    # the running worker still dispatches, the stopped one still does not
    (marks / "go.b").touch()
    push(ojenv, "q", "--var", "tag=b")
    push(ojenv, "q2", "--var", "tag=y")
    wait_statuses(ojenv, "q", {"b": "completed"})
    assert statuses(ojenv, "q2")["y"] == "pending"


# -- external queues -------------------------------------------------------------------------


def test_external_queue_dedup_and_poll(ojenv: OjEnv) -> None:
    marks = setup(ojenv, EXTERNAL)
    polls, taken = marks / "polls", marks / "taken"
    write_list(marks, [{"id": "a", "title": "first one"}])
    refused = ojenv.oj("queue", "push", "ext", '{"id":"z"}')
    assert refused.returncode == 1
    assert refused.stderr == "Error: queue 'ext' is not a persisted queue\n"

    assert ojenv.ok("worker", "start", "x") == "Worker 'x' started\n"
    wait_started(marks, "a")
    assert lines_of(taken) == ["a"]
    assert (marks / "vars.a").read_text() == "first one|first one\n"

    # `a` is still listed while its pipeline runs: a re-poll does not dispatch it again (nor
    # does the one that picks up `b` below)
    seen = len(lines_of(polls))
    wait_for(lambda: len(lines_of(polls)) > seen, timeout=30, what="a re-poll")
    assert lines_of(taken) == ["a"] and started(marks) == ["a"]

    # `poll` picks up an item added later, without a push or a `worker start`
    write_list(marks, [{"id": "a", "title": "first one"}, {"id": "b", "title": "second"}])
    wait_started(marks, "b")
    assert lines_of(taken) == ["a", "b"]
    summary = queue_summary(ojenv, "ext")
    assert (summary["type"], summary["active"], summary["workers"]) == ("external", 2, ["x"])
    assert summary["error"] is None
    assert worker(ojenv, "x")["active"] == 2

    write_list(marks, [])
    (marks / "go.all").touch()
    wait_for(lambda: sorted(ended(marks)) == ["a", "b"], timeout=30, what="both to end")
    wait_for(lambda: worker(ojenv, "x")["active"] == 0, timeout=30, what="x to be idle")
    assert lines_of(taken) == ["a", "b"] and sorted(started(marks)) == ["a", "b"]


def ext_error(ojenv: OjEnv) -> str:
    return queue_summary(ojenv, "ext")["error"] or ""


def test_external_queue_list_errors_are_shown_and_never_stop_the_worker(ojenv: OjEnv) -> None:
    """A malformed and a failing `list` show in `oj queue list`; the worker stays running and
    works again once `list` is fixed (each step here wakes it with `oj worker start`)."""
    marks = setup(ojenv, EXTERNAL)
    write_list(marks, "this is not json")
    ojenv.ok("worker", "start", "x")
    wait_for(lambda: "JSON" in ext_error(ojenv), timeout=30, what="the malformed list to show")
    line = next(x for x in ojenv.ok("queue", "list").splitlines() if x.startswith("ext\t"))
    assert line.startswith("ext\texternal\t") and "\terror: list failed" in line
    assert worker(ojenv, "x")["status"] == "running"

    write_list(marks, [{"id": "a", "title": "t"}])
    (marks / "list.fail").touch()
    ojenv.ok("worker", "start", "x")
    wait_for(
        lambda: ext_error(ojenv).startswith("list failed") and "JSON" not in ext_error(ojenv),
        timeout=30,
        what="the failing list to show",
    )
    assert worker(ojenv, "x")["status"] == "running"
    assert not lines_of(marks / "taken")

    (marks / "list.fail").unlink()
    ojenv.ok("worker", "start", "x")
    wait_started(marks, "a")
    wait_for(lambda: not ext_error(ojenv), timeout=30, what="the error to clear")
    write_list(marks, [])  # done with `a` (its pipeline ending would dispatch it again)
    (marks / "go.a").touch()
    wait_for(lambda: ended(marks) == ["a"], timeout=30, what="a to end")
    assert lines_of(marks / "taken") == ["a"]


def test_external_queue_poll_recovers_after_a_failing_list(ojenv: OjEnv) -> None:
    """With `poll`, a worker whose `list` failed polls again and works once it is fixed."""
    marks = setup(ojenv, EXTERNAL)
    polls = marks / "polls"
    write_list(marks, [{"id": "a", "title": "t"}])
    (marks / "list.fail").touch()
    ojenv.ok("worker", "start", "x")
    wait_for(lambda: ext_error(ojenv), timeout=30, what="the failing list to show")
    seen = len(lines_of(polls))
    (marks / "list.fail").unlink()
    # poll = "1s": five seconds are five polls, with no wake, push or `worker start`
    wait_for(lambda: len(lines_of(polls)) > seen, timeout=5, what="a poll after the failure")
    wait_started(marks, "a")
    wait_for(lambda: not ext_error(ojenv), timeout=30, what="the error to clear")
    write_list(marks, [])
    (marks / "go.a").touch()
    wait_for(lambda: ended(marks) == ["a"], timeout=30, what="a to end")
