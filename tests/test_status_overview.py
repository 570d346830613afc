"""`oj status` (issue 13): the daemon's overview (pure, from state), its text, `--watch` on a
real terminal, and the whole thing black-box."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import time
from typing import Any

from blackbox import OJ, OjEnv, popen_oj, wait_for

from oj_trio.commands.status import RENDERERS, status_lines
from oj_trio.records import Pipeline, QueueItem, QueueItemStatus, Worker
from oj_trio.state import MaterializedState, StepStatus
from oj_trio.views.status import FAILED_RECENTLY_MS, SECTIONS, StatusInputs, status_overview

NOW = 1_800_000_000_000


def _pipeline(pid: str, **kw: Any) -> Pipeline:
    fields: dict[str, Any] = {
        "id": pid,
        "name": f"build-{pid}",
        "kind": "build",
        "namespace": "proj",
        "step": "test",
        "runbook_hash": "h",
        "cwd": "/",
        "created_at_ms": NOW - 65_000,
        "step_status": StepStatus.RUNNING,
        "updated_at_ms": NOW - 5_000,
    }
    fields.update(kw)
    return Pipeline(**fields)


def _state() -> MaterializedState:
    state = MaterializedState()
    for p in (
        _pipeline("run1aaaaaaaa"),
        _pipeline("wait1aaaaaaa", step_status=StepStatus.WAITING, error="gate check failed"),
        _pipeline(
            "agent1aaaaaa",
            step="fix",
            step_status=StepStatus.WAITING,
            error="agent idle",
            session_id="oj-agent1",
        ),
        _pipeline("fail1aaaaaaa", step="failed", terminal=True, error="exit 3"),
        _pipeline(
            "old1aaaaaaaa",
            step="failed",
            terminal=True,
            error="long ago",
            updated_at_ms=NOW - FAILED_RECENTLY_MS - 1,
        ),
        _pipeline("done1aaaaaaa", step="done", terminal=True),
        _pipeline("other1aaaaaa", namespace="other"),
    ):
        state.pipelines[p.id] = p
    state.workers["proj/fixer"] = Worker(
        name="fixer",
        namespace="proj",
        project_root="/p",
        runbook_hash="h",
        queue_name="bugs",
        concurrency=3,
        active_pipeline_ids=["run1aaaaaaaa"],
    )
    items = {}
    for n, status in enumerate(["pending", "active", "failed", "dead", "dead", "completed"]):
        items[f"i{n}"] = QueueItem(
            id=f"i{n}",
            queue_name="bugs",
            namespace="proj",
            data={},
            pushed_at_ms=NOW,
            status=QueueItemStatus(status),
        )
    state.queue_items["proj/bugs"] = items
    return state


def test_overview_holds_every_part_per_namespace() -> None:
    inputs = StatusInputs(state=_state(), now_ms=NOW, queue_errors={"proj/bugs": "conn refused"})
    other, proj = status_overview(inputs)
    assert (other["namespace"], proj["namespace"]) == ("other", "proj"), "sorted by namespace"
    assert [p["id"] for p in proj["active_pipelines"]] == ["run1aaaaaaaa"]
    assert proj["active_pipelines"][0]["elapsed_ms"] == 65_000
    assert sorted(p["waiting_reason"] for p in proj["escalated_pipelines"]) == [
        "agent idle",
        "gate check failed",
    ]
    assert [(w["name"], w["active"], w["concurrency"]) for w in proj["workers"]] == [
        ("fixer", 1, 3)
    ]
    (bugs,) = proj["queues"]
    assert (bugs["pending"], bugs["active"], bugs["failed"], bugs["dead"]) == (1, 1, 1, 2)
    assert proj["crons"] == []
    assert [(a["kind"], a["name"], a["reason"], a["hint"]) for a in proj["attention"]] == [
        ("pipeline", "build-wait1aaaaaaa", "gate check failed", "oj pipeline resume wait1aaa"),
        (
            "agent",
            "build-agent1aaaaaa/fix",
            "agent idle",
            "oj session attach agent1aa, then oj pipeline resume agent1aa",
        ),
        ("pipeline", "build-fail1aaaaaaa", "failed: exit 3", "oj pipeline show fail1aaa"),
        ("queue", "bugs", "backend unreachable: conn refused", None),
        ("queue", "bugs", "2 dead items", "oj queue retry bugs --all-dead"),
    ]
    assert other["attention"] == [] and len(other["active_pipelines"]) == 1


def test_an_idle_daemon_has_no_sections() -> None:
    assert status_overview(StatusInputs(state=MaterializedState(), now_ms=NOW)) == []
    assert len(SECTIONS) >= 4


def test_text_has_each_part_and_the_attention_list() -> None:
    inputs = StatusInputs(state=_state(), now_ms=NOW)
    answer = {"uptime_secs": 3700, "namespaces": status_overview(inputs)}
    lines = status_lines(answer, NOW)
    assert lines[0] == "oj daemon: up 1h1m | 2 active pipelines | 4 need attention"
    text = "\n".join(lines)
    assert "── proj ─" in text and "── other ─" in text
    assert "    run1aaaaaaaa  build-run1aaaaaaaa  test  Running  1m" in text
    assert "    fixer  ● running  1/3 active  bugs: 1 pending, 1 active, 1 retrying, 2 dead" in text
    assert "  Queues:" not in text, "a worker's queue is on the worker's line"
    assert "  Needs attention (4):" in text
    assert "    ⚠ agent build-agent1aaaaaa/fix (agent1aa) 5s ago: agent idle" in text
    assert "    ⚠ pipeline build-fail1aaaaaaa (fail1aaa) 5s ago: failed: exit 3" in text
    assert "      → oj queue retry bugs --all-dead" in text
    assert status_lines(None, NOW) == ["oj daemon: not running"]
    down = status_lines({**answer, "queue_errors": ["queue database db1: refused"]}, NOW)
    assert down[:2] == [
        "oj daemon: up 1h1m | 2 active pipelines | 5 need attention",
        "⚠ queue database db1: refused",
    ]


def test_crons_render_their_next_fire() -> None:
    ns = {
        "namespace": "proj",
        "active_pipelines": [],
        "crons": [
            {"name": "nightly", "status": "running", "next_fire_at_ms": NOW + 3_720_000},
            {"name": "paused", "status": "stopped", "next_fire_at_ms": None},
        ],
    }
    lines = [line for render in RENDERERS for line in render(ns, NOW)]
    assert lines == [
        "  Crons:",
        "    nightly  ● running  next in 1h2m",
        "    paused   ○ stopped  —",
    ]


# -- black-box -----------------------------------------------------------------------------------

RUNBOOK = """
queue "q" {
  type = "persisted"
  vars = ["tag"]
}
worker "w" {
  source      = { queue = "q" }
  handler     = { pipeline = "job" }
  concurrency = 2
}
pipeline "job" {
  vars = ["tag"]
  step "s" {
    run = <<-SHELL
      while test -f "MARKS/hold.${item.tag}"; do sleep 0.02; done
      test "${item.tag}" != bad
    SHELL
  }
}
"""


def test_status_through_the_real_oj(ojenv: OjEnv) -> None:
    assert ojenv.ok("status") == "oj daemon: not running\n"
    assert json.loads(ojenv.ok("status", "-o", "json")) == {"status": "not_running"}
    assert ojenv.daemon_pid() is None, "a query never starts the daemon"
    marks = ojenv.root / "m"
    marks.mkdir()
    ojenv.runbook("q.hcl", RUNBOOK.replace("MARKS", str(marks)))
    (marks / "hold.slow").touch()
    ojenv.ok("queue", "push", "q", "--var", "tag=bad")
    ojenv.ok("queue", "push", "q", "--var", "tag=slow")

    def settled() -> dict[str, Any] | None:
        overview = json.loads(ojenv.ok("status", "-o", "json"))
        (ns,) = overview["namespaces"]
        dead = [a for a in ns["attention"] if a["kind"] == "queue"]
        return ns if dead and len(ns["active_pipelines"]) == 1 else None

    ns = wait_for(settled, timeout=30, what="one dead item and one running pipeline")
    assert ns["namespace"] == "p"
    assert [(w["name"], w["status"], w["active"]) for w in ns["workers"]] == [("w", "running", 1)]
    kinds = sorted((a["kind"], a["reason"].split(":")[0]) for a in ns["attention"])
    assert kinds == [("pipeline", "failed"), ("queue", "1 dead item")]
    text = ojenv.ok("status")
    assert "1 active pipeline | 2 need attention" in text.splitlines()[0]
    assert "    w  ● running  1/2 active  q: 0 pending, 1 active, 1 dead" in text
    assert "  Needs attention (2):" in text
    # --project: only that project's section
    assert json.loads(ojenv.ok("status", "-o", "json", "--project", "nope"))["namespaces"] == []
    (marks / "hold.slow").unlink()
    bad = ojenv.oj("status", "--interval", "0")
    assert bad.returncode == 2 and "must be more than 0" in bad.stderr


def test_watch_redraws_in_place_on_a_terminal_until_ctrl_c(ojenv: OjEnv) -> None:
    ojenv.ok("daemon", "start")
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [OJ, "status", "--watch", "--interval", "0.1"],
        cwd=ojenv.project,
        env=ojenv.env,
        stdout=follower,
        stderr=subprocess.PIPE,
    )
    os.close(follower)
    seen = b""
    deadline = time.monotonic() + 60
    while seen.count(b"\x1b[H") < 3 and time.monotonic() < deadline:
        if select.select([leader], [], [], 0.1)[0]:
            seen += os.read(leader, 65536)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 0
    while select.select([leader], [], [], 0.2)[0]:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    os.close(leader)
    assert proc.stderr is not None
    assert proc.stderr.read() == b""
    proc.stderr.close()
    text = seen.decode()
    assert text.count("\x1b[H") >= 3, "redrawn from the top, in place"
    assert text.count("oj daemon: up") >= 3
    assert text.endswith("\x1b[?25h"), "the cursor is shown again"


def test_watch_piped_prints_one_json_document_a_line(ojenv: OjEnv) -> None:
    ojenv.ok("daemon", "start")
    proc = popen_oj(ojenv, "status", "--watch", "--interval", "0.05", "-o", "json")
    assert proc.stdout is not None
    first, second = proc.stdout.readline(), proc.stdout.readline()
    proc.send_signal(signal.SIGINT)
    _rest, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and err == ""
    for line in (first, second):
        assert set(json.loads(line)) == {"uptime_secs", "namespaces", "queue_errors"}
