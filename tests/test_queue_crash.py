"""Crash scenarios for queues and workers: SIGKILL of the real `ojd` while worker pipelines run,
and while pushes are in flight (issue 9, SPEC §3).

- Worker pipelines killed with the daemon: after each restart every pushed item is still there;
  no item ever runs twice at once (each run checks whether the previous run of its item is still
  alive, by pid and start time, before it records itself); every item ends `completed` (the
  queue retries the runs the crashes interrupted).
- Pushes racing SIGKILLs: every push that `oj` acknowledged is there after the restarts, with
  its data, exactly once.

The random sleeps pick crash points; they never wait for a condition.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from blackbox import OjEnv, wait_for

PUSHED = re.compile(r"^Pushed item '([0-9a-f-]{36})' to queue 'jobs'\n$")
PUSHED_BATCH = re.compile(r"^Pushed (\d+) items? to queue 'jobs'\n$")

# The step records `<pid>:<start time>` of its own bash; a run whose item's previous run is still
# alive (same pid *and* start time, not a zombie) reports an overlap.
WORKER = """
queue "jobs" {
  type  = "persisted"
  vars  = ["tag"]
  retry = { attempts = 10, cooldown = "0s" }
}
worker "w" {
  source      = { queue = "jobs" }
  handler     = { pipeline = "p" }
  concurrency = 3
}
pipeline "p" {
  vars = ["job"]
  step "s" {
    run = <<-SHELL
      if test -f "MARKS/pid.${item.tag}"; then
        IFS=: read -r opid ostart < "MARKS/pid.${item.tag}"
        if read -r oline 2>/dev/null < "/proc/$opid/stat"; then
          set -- $oline
          if test "$3" != Z; then
            shift 21
            if test "$1" = "$ostart"; then echo "overlap ${item.tag} $opid" >> "MARKS/log"; fi
          fi
        fi
      fi
      read -r line < /proc/$$/stat
      set -- $line
      shift 21
      echo "$$:$1" > "MARKS/pid.${item.tag}"
      echo "start ${item.tag} $$" >> "MARKS/log"
      sleep 0.3
      echo "end ${item.tag} $$" >> "MARKS/log"
    SHELL
  }
}
"""

STORE = """
queue "jobs" {
  type = "persisted"
  vars = ["n"]
}
"""


def _items(ojenv: OjEnv) -> list[dict[str, Any]]:
    out = ojenv.ok("queue", "items", "jobs", "-o", "json")
    return [] if out.startswith("No items") else json.loads(out)


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def _sigkill_running_daemon(ojenv: OjEnv, previous: int | None) -> int:
    """SIGKILL the daemon that runs now (not a stale pid file's) and wait until it is gone."""
    pid = wait_for(
        lambda: (p := ojenv.daemon_pid()) is not None and p != previous and _alive(p) and p,
        timeout=30,
        what="a running daemon to kill",
    )
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not _alive(pid), what="the daemon to die")
    return pid


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_sigkill_with_active_worker_pipelines_loses_nothing_and_never_overlaps(
    ojenv: OjEnv,
) -> None:
    marks = ojenv.root / "m"
    marks.mkdir()
    ojenv.runbook("jobs.hcl", WORKER.replace("MARKS", str(marks)))
    log = marks / "log"
    rng = random.Random(2024)
    tags = [f"i{n}" for n in range(9)]
    batch = "".join(json.dumps({"tag": t}) + "\n" for t in tags)
    assert ojenv.ok("queue", "push", "jobs", "--file", "-", input=batch) == (
        "Pushed 9 items to queue 'jobs'\n"
    )
    pushed = {i["id"] for i in _items(ojenv)}
    assert len(pushed) == 9

    def starts() -> int:
        return sum(line.startswith("start ") for line in _lines(log))

    def all_completed() -> list[dict[str, Any]] | None:
        now = _items(ojenv)
        return now if all(i["status"] == "completed" for i in now) else None

    previous = None
    for _ in range(3):
        before = starts()
        wait_for(lambda: starts() > before or all_completed(), what="a step to start")  # noqa: B023
        time.sleep(rng.uniform(0.0, 0.25))  # a random crash point, not a wait for a condition
        previous = _sigkill_running_daemon(ojenv, previous)
        assert ojenv.ok("daemon", "start") == "Daemon started\n"
        assert {i["id"] for i in _items(ojenv)} == pushed, "an item was lost in the crash"
        assert ojenv.json("worker", "list")[0]["status"] == "running"

    final = wait_for(all_completed, timeout=90, what="every item to complete after the crashes")
    assert {i["id"] for i in final} == pushed
    lines = log.read_text().splitlines()
    assert not [line for line in lines if line.startswith("overlap")], lines
    finished = Counter(line.split()[1] for line in lines if line.startswith("end "))
    assert set(finished) == set(tags), lines
    # the crashes did interrupt runs, and those were run again (a run whose exit the daemon did
    # not record is failed and retried, even if its orphaned process got to write `end`)
    assert sum(line.startswith("start ") for line in lines) > len(tags), lines
    # concurrency 3 held across the restarts too: at most 3 item runs alive at once is not
    # observable after a SIGKILL (killed runs write no `end`), but no pipeline is left behind
    pipelines = ojenv.json("pipeline", "list", "--no-limit")
    assert all(p["terminal"] for p in pipelines), pipelines
    assert ojenv.json("worker", "list")[0]["active"] == 0


def test_acknowledged_pushes_survive_sigkills(ojenv: OjEnv) -> None:
    ojenv.runbook("jobs.hcl", STORE)
    rng = random.Random(99)
    acked_single: dict[str, str] = {}  # item id -> n
    acked_batch: list[str] = []  # n of every item of an acknowledged batch
    stop = threading.Event()
    errors: list[str] = []

    def pusher() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            if n % 4 == 0:
                values = [f"{n}-{k}" for k in range(3)]
                text = "".join(json.dumps({"n": v}) + "\n" for v in values)
                result = ojenv.oj("queue", "push", "jobs", "--file", "-", input=text, timeout=60)
                if result.returncode == 0:
                    match = PUSHED_BATCH.match(result.stdout)
                    if not match or int(match.group(1)) != 3:
                        errors.append(result.stdout)
                    acked_batch.extend(values)
            else:
                result = ojenv.oj("queue", "push", "jobs", "--var", f"n={n}", timeout=60)
                if result.returncode == 0:
                    match = PUSHED.match(result.stdout)
                    if not match:
                        errors.append(result.stdout)
                    else:
                        acked_single[match.group(1)] = str(n)

    assert ojenv.ok("daemon", "start") == "Daemon started\n"
    thread = threading.Thread(target=pusher, daemon=True)
    thread.start()
    previous = None
    try:
        for _ in range(5):
            seen = len(acked_single) + len(acked_batch)
            wait_for(
                lambda: len(acked_single) + len(acked_batch) > seen,  # noqa: B023
                timeout=60,
                what="pushes to be acknowledged again",
            )
            time.sleep(rng.uniform(0.0, 0.5))  # a random crash point, not a wait for a condition
            previous = _sigkill_running_daemon(ojenv, previous)
    finally:
        stop.set()
        thread.join(timeout=120)
    assert not thread.is_alive()
    assert not errors, errors

    started = ojenv.oj("daemon", "start")
    assert started.returncode == 0, started.stderr
    stored = _items(ojenv)
    counts = Counter(i["data"]["n"] for i in stored)
    assert all(c == 1 for c in counts.values()), [n for n, c in counts.items() if c > 1]
    by_id = {i["id"]: i for i in stored}
    lost = {i: n for i, n in acked_single.items() if i not in by_id}
    assert not lost, f"acknowledged pushes lost: {lost}"
    for item_id, n in acked_single.items():
        assert by_id[item_id]["data"] == {"n": n}
        assert by_id[item_id]["status"] == "pending"
    lost_batch = [n for n in acked_batch if n not in counts]
    assert not lost_batch, f"acknowledged batch items lost: {lost_batch}"
    assert len(acked_single) >= 4 and acked_batch
