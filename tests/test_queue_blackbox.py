"""Black-box: persisted queues through the real `oj`/`ojd` (issue 9, reference §3.2–3.3).

Push (one item and `--file` batches) with its data rules and every error; the item lifecycle
(completed, dead without a retry block, retry attempts/cooldown in real time, manual retry,
drop, prune); `oj queue list|items`; two projects with the same queue names.

Steps record what ran in files under the test's own dir (`MARKS`), and are held by "hold" files
the test creates before a push and removes to let the step finish: no fixed sleeps.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from blackbox import OjEnv, wait_for

PUSHED = re.compile(r"^Pushed item '([0-9a-f-]{36})' to queue '([^']+)'\n$")

QUEUES = """
queue "q" {
  type = "persisted"
  vars = ["tag"]
}
queue "r" {
  type  = "persisted"
  vars  = ["tag"]
  retry = { attempts = 1, cooldown = "1s" }
}
queue "store" {
  type     = "persisted"
  vars     = ["tag", "size"]
  defaults = { size = "M" }
}
queue "two" {
  type = "persisted"
  vars = ["a", "b"]
}
queue "ext" {
  type = "external"
  list = "echo '[]'"
  take = "true"
}
worker "w" {
  source  = { queue = "q" }
  handler = { pipeline = "p" }
}
worker "wr" {
  source  = { queue = "r" }
  handler = { pipeline = "p" }
}
pipeline "p" {
  vars = ["job"]
  step "s" {
    run = <<-SHELL
      echo "run ${item.tag} $(date +%s.%N)" >> "MARKS/log"
      test ! -f "MARKS/fail.${item.tag}"
      while test -f "MARKS/hold.${item.tag}"; do sleep 0.02; done
    SHELL
  }
}
"""


# -- helpers ---------------------------------------------------------------------------------


def setup(ojenv: OjEnv, project: Path | None = None, marks: Path | None = None) -> Path:
    """Write the queues runbook into ``project`` (default: the env's); return its marks dir."""
    marks = marks or ojenv.root / "m"
    marks.mkdir(exist_ok=True)
    text = QUEUES.replace("MARKS", str(marks))
    if project is None:
        ojenv.runbook("queues.hcl", text)
    else:
        (project / ".oj" / "runbooks").mkdir(parents=True, exist_ok=True)
        (project / ".oj" / "runbooks" / "queues.hcl").write_text(text)
    return marks


def push(ojenv: OjEnv, queue: str, *args: str, cwd: Path | None = None) -> str:
    """`oj queue push QUEUE ARGS`; assert the one-line acknowledgement, return the item id."""
    out = ojenv.ok("queue", "push", queue, *args, cwd=cwd)
    match = PUSHED.match(out)
    assert match, out
    assert match.group(2) == queue
    assert uuid.UUID(match.group(1)).version == 4
    return match.group(1)


def items(ojenv: OjEnv, queue: str, *args: str, cwd: Path | None = None) -> list[dict[str, Any]]:
    """`oj queue items QUEUE -o json` (an empty queue prints a sentence, not JSON)."""
    out = ojenv.ok("queue", "items", queue, *args, "-o", "json", cwd=cwd)
    if out.startswith("No items in queue"):
        return []
    return json.loads(out)


def by_id(ojenv: OjEnv, queue: str, cwd: Path | None = None) -> dict[str, dict[str, Any]]:
    return {i["id"]: i for i in items(ojenv, queue, cwd=cwd)}


def wait_item(
    ojenv: OjEnv, queue: str, item_id: str, status: str, *, cwd: Path | None = None
) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        item = by_id(ojenv, queue, cwd=cwd).get(item_id)
        return item if item is not None and item["status"] == status else None

    return wait_for(reached, timeout=30, what=f"item {item_id[:8]} of {queue} to be {status}")


def runs(marks: Path, tag: str) -> list[float]:
    """When each run of item ``tag`` started (from the step's own log line)."""
    log = marks / "log"
    text = log.read_text() if log.exists() else ""
    return [float(line.split()[2]) for line in text.splitlines() if line.split()[1] == tag]


def wait_runs(marks: Path, tag: str, count: int) -> list[float]:
    return wait_for(
        lambda: len(r := runs(marks, tag)) >= count and r,
        timeout=30,
        what=f"{count} run(s) of {tag}",
    )


def assert_error(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """A user mistake: exit 1, nothing on stdout, one `Error: …` line holding ``fragments``."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def holds(predicate: Callable[[], object], seconds: float, what: str) -> None:
    """Assert ``predicate()`` stays truthy for ``seconds`` (a negative check: nothing happens)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert predicate(), what
        time.sleep(0.05)


# -- push ------------------------------------------------------------------------------------


def test_push_data_defaults_extras_and_json_text(ojenv: OjEnv) -> None:
    setup(ojenv)
    plain = push(ojenv, "store", '{"tag":"a"}')
    overridden = push(ojenv, "store", '{"tag":"a","size":"S","extra":"x"}', "--var", "tag=b")
    only_vars = push(ojenv, "store", "--var", "tag=c", "--var", "size=L", "--var", "tag=d")
    typed = push(
        ojenv,
        "store",
        '{"tag":"e","n":3,"l":[1,2],"o":{"k":true},"z":null,"f":false,"s":"3"}',
    )

    stored = by_id(ojenv, "store")
    assert set(stored) == {plain, overridden, only_vars, typed}
    assert stored[plain]["data"] == {"tag": "a", "size": "M"}  # default applied
    assert stored[overridden]["data"] == {"tag": "b", "size": "S", "extra": "x"}  # --var wins
    assert stored[only_vars]["data"] == {"tag": "d", "size": "L"}  # the later --var wins
    data = stored[typed]["data"]
    assert all(isinstance(v, str) for v in data.values()), data
    assert {k: json.loads(v) for k, v in data.items() if k not in ("tag", "size", "s")} == {
        "n": 3,
        "l": [1, 2],
        "o": {"k": True},
        "z": None,
        "f": False,
    }
    assert (data["tag"], data["size"], data["s"]) == ("e", "M", "3")
    for item in stored.values():
        assert item["status"] == "pending"  # no worker on `store`
        assert item["queue"] == "store"
        assert item["worker_name"] is None
        assert item["failure_count"] == 0

    # text: newest first, `<id8>\t<status>\tworker=<name|->\t<k=v …>`
    text = ojenv.ok("queue", "items", "store").splitlines()
    assert text[-1] == f"{plain[:8]}\tpending\tworker=-\ttag=a size=M"
    assert len(text) == 4


def test_push_errors_push_nothing(ojenv: OjEnv) -> None:
    setup(ojenv)
    assert_error(ojenv.oj("queue", "push", "store", "{bad"), "invalid JSON data")
    assert_error(ojenv.oj("queue", "push", "store", "[1,2]"), "JSON data must be an object")
    assert_error(ojenv.oj("queue", "push", "store", '"text"'), "JSON data must be an object")
    assert_error(ojenv.oj("queue", "push", "store"), "no data provided")
    assert_error(ojenv.oj("queue", "push", "store", "{}"), "no data provided")
    assert_error(
        ojenv.oj("queue", "push", "nope", '{"tag":"a"}'),
        "no runbook found containing queue 'nope'",
    )
    assert_error(
        ojenv.oj("queue", "push", "ext", '{"id":"1"}'), "queue 'ext' is not a persisted queue"
    )
    assert_error(ojenv.oj("queue", "push", "store", '{"size":"L"}'), "missing required fields: tag")
    assert_error(ojenv.oj("queue", "push", "two", '{"c":"1"}'), "missing required fields: a, b")
    bad_var = ojenv.oj("queue", "push", "store", "--var", "novalue")
    assert bad_var.returncode == 2, bad_var.stderr
    assert "must be key=value" in bad_var.stderr

    assert items(ojenv, "store") == []
    assert items(ojenv, "two") == []
    assert ojenv.ok("queue", "items", "store") == "No items in queue 'store'\n"
    unknown = ojenv.oj("queue", "items", "nope")
    assert_error(unknown, "no runbook found containing queue 'nope'")


# -- batch -----------------------------------------------------------------------------------


def test_batch_push_from_file_and_stdin(ojenv: OjEnv, tmp_path: Path) -> None:
    setup(ojenv)
    batch = tmp_path / "items.jsonl"
    batch.write_text('{"tag":"a"}\n\n   \n{"tag":"b","size":"S"}\n{"tag":"c","n":7}\n\n')
    out = ojenv.ok("queue", "push", "store", "--file", str(batch), "--var", "size=XL")
    assert out == "Pushed 3 items to queue 'store'\n"
    stored = sorted((i["data"] for i in items(ojenv, "store")), key=lambda d: d["tag"])
    assert stored == [
        {"tag": "a", "size": "XL"},
        {"tag": "b", "size": "XL"},  # --var is merged into every line, and wins
        {"tag": "c", "n": "7", "size": "XL"},
    ]

    out = ojenv.ok("queue", "push", "store", "--file", "-", input='{"tag":"d"}\n{"tag":"e"}\n')
    assert out == "Pushed 2 items to queue 'store'\n"
    out = ojenv.ok("queue", "push", "store", "--file", "-", input='\n{"tag":"f"}')
    assert out == "Pushed 1 item to queue 'store'\n"
    assert sorted(i["data"]["tag"] for i in items(ojenv, "store")) == list("abcdef")
    assert {i["data"]["size"] for i in items(ojenv, "store") if i["data"]["tag"] > "c"} == {"M"}


def test_batch_push_errors_name_the_line_and_push_nothing(ojenv: OjEnv, tmp_path: Path) -> None:
    setup(ojenv)
    push(ojenv, "store", '{"tag":"before"}')

    both = ojenv.oj("queue", "push", "store", '{"tag":"x"}', "--file", "-", input='{"tag":"y"}\n')
    assert both.returncode == 2, both.stderr
    assert both.stdout == ""

    # client side: the JSON of line 3 (line 2 is blank) is broken
    bad_json = tmp_path / "bad.jsonl"
    bad_json.write_text('{"tag":"a"}\n\n{"tag": \n{"tag":"c"}\n')
    assert_error(ojenv.oj("queue", "push", "store", "--file", str(bad_json)), "line 3", "JSON")
    not_object = tmp_path / "list.jsonl"
    not_object.write_text('{"tag":"a"}\n[1]\n')
    assert_error(
        ojenv.oj("queue", "push", "store", "--file", str(not_object)),
        "line 2",
        "JSON data must be an object",
    )
    # daemon side: line 4 lacks the required var; lines 1-3 are fine but must not be pushed
    missing = '{"tag":"a"}\n{"tag":"b"}\n\n{"size":"S"}\n'
    assert_error(
        ojenv.oj("queue", "push", "store", "--file", "-", input=missing),
        "line 4",
        "missing required fields: tag",
    )
    assert_error(ojenv.oj("queue", "push", "store", "--file", "-", input="\n\n"), "no items")
    assert_error(
        ojenv.oj("queue", "push", "ext", "--file", "-", input='{"id":"1"}\n'),
        "is not a persisted queue",
    )
    assert [i["data"]["tag"] for i in items(ojenv, "store")] == ["before"]


def test_batch_with_several_bad_lines_is_still_a_one_line_error(ojenv: OjEnv) -> None:
    setup(ojenv)
    result = ojenv.oj("queue", "push", "two", "--file", "-", input='{"a":"1"}\n{"b":"2"}\n')
    assert_error(result, "line 1", "missing required fields: b")
    assert items(ojenv, "two") == []


def test_invalid_json_message_reads_well(ojenv: OjEnv) -> None:
    setup(ojenv)
    line = assert_error(ojenv.oj("queue", "push", "store", "--file", "-", input='{"tag":"a\n'))
    assert " at at " not in line, line


# -- lifecycle -------------------------------------------------------------------------------


def test_lifecycle_completed_dead_manual_retry_and_drop(ojenv: OjEnv) -> None:
    marks = setup(ojenv)
    ok = push(ojenv, "q", "--var", "tag=ok")
    item = wait_item(ojenv, "q", ok, "completed")
    assert (item["worker_name"], item["failure_count"]) == ("w", 0)

    # no retry block: the first failure is final
    (marks / "fail.bad").touch()
    bad = push(ojenv, "q", "--var", "tag=bad")
    item = wait_item(ojenv, "q", bad, "dead")
    assert item["failure_count"] == 1
    assert item["error"] == "pipeline reached 'failed'"
    assert len(runs(marks, "bad")) == 1

    lines = ojenv.ok("queue", "list").splitlines()
    assert "q\tpersisted\tpending=0 active=0 dead=1\tworkers=w" in lines
    q = next(s for s in ojenv.json("queue", "list") if s["name"] == "q")
    assert (q["pending"], q["active"], q["dead"], q["completed"]) == (0, 0, 1, 1)
    assert q["type"] == "persisted" and q["workers"] == ["w"]
    dead = ojenv.ok("queue", "items", "q", "--status", "dead").splitlines()
    assert dead == [f"{bad[:8]}\tdead\tworker=w\ttag=bad"]
    assert [i["id"] for i in items(ojenv, "q", "--status", "dead")] == [bad]
    assert [i["id"] for i in items(ojenv, "q", "--status", "completed")] == [ok]

    # only failed or dead items can be retried
    assert_error(
        ojenv.oj("queue", "retry", "q", ok[:8]),
        "is Completed",
        "only dead or failed items can be retried",
    )
    pending = push(ojenv, "store", "--var", "tag=p")
    assert_error(ojenv.oj("queue", "retry", "store", pending), "is Pending", "only dead or failed")
    assert_error(ojenv.oj("queue", "retry", "q", "zzzz"), "item 'zzzz' not found in queue 'q'")
    assert_error(ojenv.oj("queue", "drop", "q", "zzzz"), "item 'zzzz' not found in queue 'q'")
    assert ojenv.oj("queue", "retry", "q").returncode == 2  # neither an id nor --all-dead

    # manual retry by prefix: pending again, runs again, failure count reset
    (marks / "fail.bad").unlink()
    assert ojenv.ok("queue", "retry", "q", bad[:6]) == f"Retrying item {bad[:8]} in queue q\n"
    item = wait_item(ojenv, "q", bad, "completed")
    assert item["failure_count"] == 0
    assert len(runs(marks, "bad")) == 2

    # --all-dead retries every dead item, and only those
    for tag in ("d1", "d2"):
        (marks / f"fail.{tag}").touch()
    d1, d2 = push(ojenv, "q", "--var", "tag=d1"), push(ojenv, "q", "--var", "tag=d2")
    wait_item(ojenv, "q", d1, "dead")
    wait_item(ojenv, "q", d2, "dead")
    for tag in ("d1", "d2"):
        (marks / f"fail.{tag}").unlink()
    retried = ojenv.ok("queue", "retry", "q", "--all-dead").splitlines()
    assert sorted(retried) == sorted(f"Retrying item {i[:8]} in queue q" for i in (d1, d2))
    wait_item(ojenv, "q", d1, "completed")
    wait_item(ojenv, "q", d2, "completed")
    assert ojenv.ok("queue", "retry", "q", "--all-dead") == "No dead items in queue 'q'\n"

    # drop by prefix
    assert ojenv.ok("queue", "drop", "q", ok[:8]) == f"Dropped item {ok[:8]} from queue q\n"
    assert ok not in by_id(ojenv, "q")
    assert ojenv.ok("queue", "drop", "store", pending) == (
        f"Dropped item {pending[:8]} from queue store\n"
    )
    assert items(ojenv, "store") == []


def test_retry_attempts_and_cooldown_in_real_time(ojenv: OjEnv) -> None:
    """`retry = { attempts = 1, cooldown = "1s" }`: two runs, one cooldown apart, then dead."""
    marks = setup(ojenv)
    (marks / "fail.x").touch()
    item_id = push(ojenv, "r", "--var", "tag=x")
    item = wait_item(ojenv, "r", item_id, "dead")
    started = runs(marks, "x")
    assert len(started) == 2, started
    assert started[1] - started[0] >= 0.9, started  # the cooldown was waited for
    assert item["failure_count"] == 2  # counted across the automatic retry (SPEC §4.3)
    assert item["error"] == "pipeline reached 'failed'"

    # a manual retry resets the count and starts over with the same policy
    (marks / "fail.x").unlink()
    ojenv.ok("queue", "retry", "r", item_id)
    assert wait_item(ojenv, "r", item_id, "completed")["failure_count"] == 0
    assert len(runs(marks, "x")) == 3


def test_prune_keeps_recent_and_never_pending_or_active(ojenv: OjEnv) -> None:
    marks = setup(ojenv)
    done = push(ojenv, "q", "--var", "tag=c")
    wait_item(ojenv, "q", done, "completed")
    (marks / "fail.d").touch()
    dead = push(ojenv, "q", "--var", "tag=d")
    wait_item(ojenv, "q", dead, "dead")
    (marks / "hold.a").touch()
    active = push(ojenv, "q", "--var", "tag=a")
    wait_item(ojenv, "q", active, "active")
    pending = push(ojenv, "q", "--var", "tag=b")  # concurrency 1: waits behind `a`
    assert by_id(ojenv, "q")[pending]["status"] == "pending"

    assert "q\tpersisted\tpending=1 active=1 dead=1\tworkers=w" in ojenv.ok("queue", "list")
    counts = {s["name"]: s for s in ojenv.json("queue", "list")}["q"]
    assert (counts["pending"], counts["active"], counts["dead"]) == (1, 1, 1)

    # without --all only items that ended more than 12 h ago go: none here
    assert ojenv.ok("queue", "prune", "q") == "0 item(s) pruned, 4 skipped\n"
    dry = ojenv.ok("queue", "prune", "q", "--all", "--dry-run").splitlines()
    assert sorted(dry[:2]) == sorted(
        [f"Would prune {done[:8]} (completed)", f"Would prune {dead[:8]} (dead)"]
    )
    assert dry[2:] == ["", "2 item(s) would be pruned, 2 skipped"]
    assert len(by_id(ojenv, "q")) == 4
    pruned = ojenv.ok("queue", "prune", "q", "--all").splitlines()
    assert sorted(pruned[:2]) == sorted(
        [f"Pruned {done[:8]} (completed)", f"Pruned {dead[:8]} (dead)"]
    )
    assert pruned[2:] == ["", "2 item(s) pruned, 2 skipped"]
    left = by_id(ojenv, "q")
    assert {k: v["status"] for k, v in left.items()} == {active: "active", pending: "pending"}

    (marks / "hold.a").unlink()
    wait_item(ojenv, "q", active, "completed")
    wait_item(ojenv, "q", pending, "completed")


def test_item_id_prefixes_must_be_unique(ojenv: OjEnv) -> None:
    setup(ojenv)
    # 17 items: two of them share a first hex digit (pigeonhole)
    text = "".join(json.dumps({"tag": f"t{i}"}) + "\n" for i in range(17))
    assert ojenv.ok("queue", "push", "store", "--file", "-", input=text) == (
        "Pushed 17 items to queue 'store'\n"
    )
    ids = [i["id"] for i in items(ojenv, "store")]
    firsts = [i[0] for i in ids]
    shared = next(c for c in firsts if firsts.count(c) > 1)
    ambiguous = ojenv.oj("queue", "drop", "store", shared)
    assert ambiguous.returncode == 1 and ambiguous.stderr.startswith("Error: "), ambiguous
    assert len(ambiguous.stderr.splitlines()) == 1
    assert len(items(ojenv, "store")) == 17


# -- namespaces ------------------------------------------------------------------------------


def test_two_projects_never_see_each_others_items(ojenv: OjEnv) -> None:
    marks = setup(ojenv)
    other = ojenv.root / "other"
    other_marks = setup(ojenv, project=other, marks=ojenv.root / "m2")

    mine = push(ojenv, "q", "--var", "tag=mine")
    theirs = push(ojenv, "q", "--var", "tag=theirs", cwd=other)
    kept_mine = push(ojenv, "store", "--var", "tag=mine")
    kept_theirs = push(ojenv, "store", "--var", "tag=theirs", cwd=other)
    wait_item(ojenv, "q", mine, "completed")
    wait_item(ojenv, "q", theirs, "completed", cwd=other)

    assert set(by_id(ojenv, "q")) == {mine}
    assert set(by_id(ojenv, "q", cwd=other)) == {theirs}
    assert set(by_id(ojenv, "store")) == {kept_mine}
    assert [i["id"] for i in items(ojenv, "store", "--project", "other")] == [kept_theirs]
    assert [i["id"] for i in items(ojenv, "store", "--project", "p", cwd=other)] == [kept_mine]
    assert [i["namespace"] for i in items(ojenv, "store", "--project", "other")] == ["other"]
    # each project's worker ran only its own items, in its own project
    assert runs(marks, "mine") and not runs(marks, "theirs")
    assert runs(other_marks, "theirs") and not runs(other_marks, "mine")
    workers = {(w["namespace"], w["name"]) for w in ojenv.json("worker", "list")}
    assert {("p", "w"), ("other", "w")} <= workers

    # ids of one project are unknown in the other
    assert_error(ojenv.oj("queue", "drop", "store", kept_theirs), "not found")
    pushed_there = push(ojenv, "store", "--project", "other", "--var", "tag=via-flag")
    assert pushed_there in by_id(ojenv, "store", cwd=other)
    assert pushed_there not in by_id(ojenv, "store")
