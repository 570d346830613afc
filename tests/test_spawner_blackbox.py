"""The daemon's spawner helper through the real binaries: with many steps at once some are started
by the helper (their parent), they run and end as any other step; a SIGKILLed daemon takes its
helper with it, and the restarted daemon recovers the helper's steps as it recovers its own."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

from blackbox import OjEnv, wait_for

from oj_trio.adapters.process import SPAWNER_FROM

WIDTH = SPAWNER_FROM + 4  # enough steps at once that the last ones go through the helper

# Each run records its own pid and its parent's command line, then waits for GO (or times out).
WORKER = f"""
queue "jobs" {{
  type  = "persisted"
  vars  = ["tag"]
  retry = {{ attempts = 5, cooldown = "0s" }}
}}
worker "w" {{
  source      = {{ queue = "jobs" }}
  handler     = {{ pipeline = "p" }}
  concurrency = {WIDTH}
}}
pipeline "p" {{
  vars = ["job"]
  step "s" {{
    run = <<-SHELL
      read -r line < /proc/$$/stat
      set -- $line
      ls /proc/$$/fd > "MARKS/fds.${{item.tag}}.$$"
      tr '\\0' ' ' < /proc/$4/cmdline > "MARKS/parent.${{item.tag}}.$$"
      for _ in $(seq 300); do test -e MARKS/GO && break; sleep 0.05; done
      echo done > "MARKS/end.${{item.tag}}.$$"
    SHELL
  }}
}}
"""


def _items(ojenv: OjEnv) -> list[dict[str, Any]]:
    out = ojenv.ok("queue", "items", "jobs", "-o", "json")
    return [] if out.startswith("No items") else json.loads(out)


def _helpers(daemon_pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == daemon_pid and b"spawner_process" in cmdline:
            found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _push(ojenv: OjEnv, tags: list[str]) -> None:
    batch = "".join(json.dumps({"tag": t}) + "\n" for t in tags)
    assert ojenv.ok("queue", "push", "jobs", "--file", "-", input=batch).startswith("Pushed")


def test_many_steps_at_once_go_through_the_helper_and_end_normally(ojenv: OjEnv) -> None:
    marks = ojenv.root / "m"
    marks.mkdir()
    ojenv.runbook("jobs.hcl", WORKER.replace("MARKS", str(marks)))
    tags = [f"t{n}" for n in range(WIDTH)]
    _push(ojenv, tags)
    parents = wait_for(
        lambda: (found := list(marks.glob("parent.*"))) and len(found) == WIDTH and found,
        timeout=60,
        what="every step to start",
    )
    daemon = ojenv.daemon_pid()
    assert daemon is not None
    helpers = _helpers(daemon)
    assert len(helpers) == 1, "the daemon runs one spawner helper"
    by_helper = [p for p in parents if "spawner_process" in p.read_text()]
    assert by_helper, "no step was started by the helper"
    # A step started by the helper holds the descriptors one started by ojd holds, no more.
    fds = {
        p.name: (marks / p.name.replace("parent.", "fds.", 1)).read_text().split() for p in parents
    }
    inline = {tuple(fds[p.name]) for p in parents if p not in by_helper}
    assert inline and {tuple(fds[p.name]) for p in by_helper} == inline, fds
    (marks / "GO").touch()
    final = wait_for(
        lambda: (now := _items(ojenv)) and all(i["status"] == "completed" for i in now) and now,
        timeout=60,
        what="every item to complete",
    )
    assert len(final) == WIDTH
    assert len(list(marks.glob("end.*"))) == WIDTH


def test_a_killed_daemon_takes_its_helper_and_the_restart_recovers_the_helpers_steps(
    ojenv: OjEnv,
) -> None:
    marks = ojenv.root / "m"
    marks.mkdir()
    ojenv.runbook("jobs.hcl", WORKER.replace("MARKS", str(marks)))
    tags = [f"k{n}" for n in range(WIDTH)]
    _push(ojenv, tags)
    wait_for(
        lambda: len(list(marks.glob("parent.*"))) == WIDTH, timeout=60, what="every step to start"
    )
    daemon = ojenv.daemon_pid()
    assert daemon is not None
    (helper,) = _helpers(daemon)
    started = {int(p.name.rsplit(".", 1)[1]) for p in marks.glob("parent.*")}
    os.kill(daemon, signal.SIGKILL)
    wait_for(lambda: not _alive(daemon), what="the daemon to die")
    wait_for(lambda: not _alive(helper), what="the helper to follow its daemon")
    assert ojenv.ok("daemon", "start") == "Daemon started\n"
    # The restarted daemon kills the interrupted runs (its own and the helper's alike) and
    # retries their items; with GO set, the retries finish.
    (marks / "GO").touch()
    final = wait_for(
        lambda: (now := _items(ojenv)) and all(i["status"] == "completed" for i in now) and now,
        timeout=90,
        what="every item to complete after the restart",
    )
    assert {i["data"]["tag"] for i in final} == set(tags)
    leftovers = [pid for pid in started if _alive(pid)]
    assert not leftovers, f"interrupted runs still alive: {leftovers}"


def test_a_step_the_os_refuses_to_start_fails_alone_and_the_helper_stays(ojenv: OjEnv) -> None:
    """A NUL byte in a step's command (from an item's field) cannot reach exec: that step fails
    like any step that cannot start, and the helper's other steps run on (not SIGKILLed with
    a helper that died of it)."""
    marks = ojenv.root / "m"
    marks.mkdir()
    runbook = WORKER.replace("MARKS", str(marks))
    ojenv.runbook(
        "jobs.hcl", runbook.replace(f"concurrency = {WIDTH}", f"concurrency = {WIDTH + 1}")
    )
    tags = [f"n{n}" for n in range(WIDTH)]
    _push(ojenv, tags)
    wait_for(
        lambda: len(list(marks.glob("parent.*"))) == WIDTH, timeout=60, what="every step to start"
    )
    daemon = ojenv.daemon_pid()
    assert daemon is not None
    (helper,) = _helpers(daemon)
    started = {int(p.name.rsplit(".", 1)[1]) for p in marks.glob("parent.*")}
    _push(ojenv, ["bad\0tag"])  # WIDTH steps run: this one's spawn goes to the helper
    bad = wait_for(
        lambda: [
            i
            for i in _items(ojenv)
            if i["data"]["tag"].startswith("bad") and i["status"] in ("dead", "failed")
        ],
        timeout=60,
        what="the item that cannot start to fail",
    )
    assert bad
    assert _alive(helper), "the helper died of a step it could not start"
    assert all(_alive(pid) for pid in started), "the helper's running steps were killed"
    (marks / "GO").touch()
    final = wait_for(
        lambda: (
            (now := [i for i in _items(ojenv) if i["data"]["tag"] in tags])
            and all(i["status"] == "completed" for i in now)
            and now
        ),
        timeout=60,
        what="the other items to complete",
    )
    assert len(final) == WIDTH
    assert len(list(marks.glob("parent.*"))) == WIDTH, "a step was run again"


def test_a_signal_to_the_daemons_process_group_stops_it_gracefully_helper_steps_included(
    ojenv: OjEnv,
) -> None:
    """SIGTERM (or a terminal's SIGHUP) sent to ojd's whole process group — `timeout`, a
    supervisor's stop-as-group, `kill -- -PGID` — reaches the helper too. ojd drains (running
    steps may finish within the stop grace); the helper must not die of it first and take the
    steps it started down with SIGKILL."""
    marks = ojenv.root / "m"
    marks.mkdir()
    ojenv.runbook("jobs.hcl", WORKER.replace("MARKS", str(marks)))
    _push(ojenv, [f"g{n}" for n in range(WIDTH)])
    wait_for(
        lambda: len(list(marks.glob("parent.*"))) == WIDTH, timeout=60, what="every step to start"
    )
    by_helper = [p for p in marks.glob("parent.*") if "spawner_process" in p.read_text()]
    assert by_helper, "no step was started by the helper"
    daemon = ojenv.daemon_pid()
    assert daemon is not None
    group = os.getpgid(daemon)
    assert group != os.getpgrp()
    os.killpg(group, signal.SIGHUP)  # ojd shrugs it off: so must the helper
    os.killpg(group, signal.SIGTERM)
    (marks / "GO").touch()  # the running steps now finish, within the daemon's stop grace
    wait_for(lambda: not _alive(daemon), timeout=60, what="the daemon to stop")
    unfinished = [
        p.name for p in by_helper if not (marks / p.name.replace("parent.", "end.", 1)).exists()
    ]
    assert not unfinished, f"steps the helper started were killed on a graceful stop: {unfinished}"


def test_the_helper_does_not_import_the_projects_modules(ojenv: OjEnv) -> None:
    """ojd runs in the directory `oj` was started from, a project's: a `select.py` (or an
    `oj_trio/` of another version, in a checkout of oj) there must not be what the helper
    imports — its modules are ojd's own."""
    marks = ojenv.root / "m"
    marks.mkdir()
    shadow = ojenv.root / "shadowed"
    for name in ("select", "array", "socket"):
        (ojenv.project / f"{name}.py").write_text(
            f"open({str(shadow)!r}, 'a').write({name!r})\nraise ImportError('not the stdlib')\n"
        )
    ojenv.runbook("jobs.hcl", WORKER.replace("MARKS", str(marks)))
    _push(ojenv, [f"i{n}" for n in range(WIDTH)])
    parents = wait_for(
        lambda: (found := list(marks.glob("parent.*"))) and len(found) == WIDTH and found,
        timeout=60,
        what="every step to start",
    )
    (marks / "GO").touch()
    assert not shadow.exists(), f"the helper imported the project's {shadow.read_text()}"
    assert any("spawner_process" in p.read_text() for p in parents), "no step by the helper"
