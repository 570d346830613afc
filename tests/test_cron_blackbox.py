"""Black-box: crons through the real `oj`/`ojd` (issue 11), with `1s` intervals.

start → runs happen (with `${cron.name}`/`${cron.scheduled_at}`); stop → they end; `oj cron
list` and `oj status`; stop is sticky across a daemon restart while a running cron resumes;
`once`; catch-up after the daemon was down a few seconds (exactly one immediate run with
`catch_up`, none without); every runbook validation error as one line and a non-zero exit.

Each fire appends `<cron> <scheduled_at> <catch_up>` to `MARKS/fires`; the tests read that file.
No fixed sleeps except `holds()`, which checks that something does *not* happen for a while, and
the few seconds of wall time a catch-up test must let pass while the daemon is down.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from blackbox import OjEnv, wait_for

CRONS = """
pipeline "tick" {
  step "mark" {
    run = "echo ${cron.name} ${cron.scheduled_at} ${cron.catch_up} >> MARKS/fires"
  }
}
cron "every" {
  interval = "1s"
  run      = { pipeline = "tick" }
}
cron "other" {
  interval = "1s"
  run      = { pipeline = "tick" }
}
cron "catchy" {
  interval = "1s"
  catch_up = "1h"
  run      = { pipeline = "tick" }
}
"""


def setup(ojenv: OjEnv) -> Path:
    marks = ojenv.root / "m"
    marks.mkdir(exist_ok=True)
    ojenv.runbook("crons.hcl", CRONS.replace("MARKS", str(marks)))
    return marks


def fires(marks: Path, name: str | None = None) -> list[tuple[str, str, str]]:
    path = marks / "fires"
    lines = path.read_text().splitlines() if path.exists() else []
    rows = [tuple(line.split()) for line in lines if line.strip()]
    return [(r[0], r[1], r[2]) for r in rows if name is None or r[0] == name]


def holds(predicate: Callable[[], object], seconds: float, what: str) -> None:
    """Assert ``predicate()`` stays truthy for ``seconds`` (a negative check: nothing happens)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert predicate(), what
        time.sleep(0.05)


def cron(ojenv: OjEnv, name: str) -> dict[str, object]:
    crons = ojenv.json("cron", "list")
    return next(c for c in crons if c["name"] == name)


def all_ended(ojenv: OjEnv) -> bool:
    return all(p["step_status"] in ("Completed", "Failed") for p in ojenv.json("pipeline", "list"))


def test_start_runs_until_stop(ojenv: OjEnv) -> None:
    marks = setup(ojenv)
    out = ojenv.ok("cron", "start", "every")
    # ("now" when the reply took over a second on a loaded machine)
    assert re.fullmatch(r"Cron 'every' started; next fire (?:in [12]s|now)\n", out), out
    assert ojenv.ok("cron", "start", "every").startswith("Cron 'every' already running")
    wait_for(lambda: len(fires(marks, "every")) >= 3, timeout=30, what="three fires")
    _, scheduled, catch_up = fires(marks, "every")[0]
    assert catch_up == "false"
    assert datetime.fromisoformat(scheduled).utcoffset() is not None  # ISO 8601 with offset
    listed = cron(ojenv, "every")
    assert listed["namespace"] == "p" and listed["status"] == "running"
    assert isinstance(listed["last_fire_at_ms"], int) and isinstance(listed["next_fire_at_ms"], int)
    assert listed["schedule"] == "every 1s"
    status = ojenv.ok("status")
    assert re.search(r"  Crons:\n +every +● running +next in \d+s\n", status), status
    table = ojenv.ok("cron", "list")
    assert table.splitlines()[0].split() == [
        "NAME",
        "PROJECT",
        "SCHEDULE",
        "STATUS",
        "LAST",
        "NEXT",
    ]
    # stop: the runs end
    assert ojenv.ok("cron", "stop", "every") == "Cron 'every' stopped\n"
    wait_for(lambda: all_ended(ojenv), timeout=30, what="the cron's pipelines to end")
    count = len(fires(marks, "every"))
    holds(lambda: len(fires(marks, "every")) == count, 2.5, "no fire after stop")
    listed = cron(ojenv, "every")
    assert listed["status"] == "stopped" and listed["next_fire_at_ms"] is None
    assert ojenv.ok("cron", "stop", "every") == "Cron 'every' was not running\n"
    assert "Crons:" not in ojenv.ok("status")


def test_stop_is_sticky_across_a_daemon_restart(ojenv: OjEnv) -> None:
    marks = setup(ojenv)
    ojenv.ok("cron", "start", "every")
    ojenv.ok("cron", "start", "other")
    wait_for(lambda: fires(marks, "every") and fires(marks, "other"), timeout=30, what="fires")
    ojenv.ok("cron", "stop", "every")
    ojenv.ok("daemon", "stop")
    ojenv.ok("daemon", "start")
    before = len(fires(marks, "every"))
    others = len(fires(marks, "other"))
    wait_for(lambda: len(fires(marks, "other")) >= others + 2, timeout=30, what="other resumed")
    assert len(fires(marks, "every")) == before
    assert cron(ojenv, "every")["status"] == "stopped"
    assert cron(ojenv, "other")["status"] == "running"
    # --all stops every running cron of the project
    assert ojenv.ok("cron", "stop", "--all") == "Cron 'other' stopped\n"
    assert ojenv.ok("cron", "stop", "--all") == "No running crons\n"


def test_once_fires_now_whatever_the_status(ojenv: OjEnv) -> None:
    marks = setup(ojenv)
    out = ojenv.ok("cron", "once", "every")
    assert re.fullmatch(r"Cron 'every' fired: pipeline [0-9a-f-]{12}\n", out), out
    wait_for(lambda: fires(marks, "every"), timeout=30, what="the fire")
    holds(lambda: len(fires(marks, "every")) == 1, 1.5, "once fires once")
    listed = cron(ojenv, "every")
    assert listed["status"] == "stopped" and listed["fires"] == 1
    assert listed["next_fire_at_ms"] is None
    # the shell completion's lookup knows it now (`oj cron start|stop|once <TAB>`)
    assert ojenv.ok("__names", "cron") == "every\n"
    assert "_oj_names_cron" in ojenv.ok("completion", "bash")


def test_catch_up_after_the_daemon_was_down(ojenv: OjEnv) -> None:
    marks = setup(ojenv)
    ojenv.ok("cron", "start", "catchy")
    ojenv.ok("cron", "start", "other")
    wait_for(lambda: fires(marks, "catchy") and fires(marks, "other"), timeout=30, what="fires")
    ojenv.ok("daemon", "stop")
    down_at = time.time()
    seen = {n: len(fires(marks, n)) for n in ("catchy", "other")}
    # a few seconds of wall time with the daemon down: three or more 1 s fires are missed
    wait_for(lambda: time.time() >= down_at + 3.5, timeout=10, what="time to pass")
    ojenv.ok("daemon", "start")
    wait_for(lambda: len(fires(marks, "other")) > seen["other"], timeout=30, what="other again")
    wait_for(lambda: len(fires(marks, "catchy")) > seen["catchy"] + 1, timeout=30, what="catchy")
    after = {n: fires(marks, n)[seen[n] :] for n in ("catchy", "other")}
    # catchy: exactly one catch-up run, the first fire after the restart (the WAL's order: two
    # runs created milliseconds apart may write their marks in either order), for a past time
    assert [row[2] for row in after["catchy"]].count("true") == 1, after
    fired = [e for e in wal_events(ojenv, "cron:fired") if e["cron_name"] == "catchy"]
    assert fired[0].get("catch_up") is True, fired
    assert [e for e in fired if e.get("catch_up")] == fired[:1], fired
    scheduled, at = (int(str(fired[0][k])) for k in ("scheduled_at_ms", "at_ms"))
    assert down_at * 1000 < scheduled <= at
    # other (no catch_up): none; the daemon log says how many were missed
    assert all(row[2] == "false" for row in after["other"]), after
    log = (ojenv.state / "daemon.log").read_text()
    missed = re.search(r"cron p/other: (\d+) scheduled fire\(s\) missed .*\(no catch_up\)", log)
    assert missed and int(missed.group(1)) >= 3, log[-2000:]


# --- bad input ---------------------------------------------------------------------------------

PIPE = 'pipeline "tick" {\n  step "mark" { run = "true" }\n}\n'


BAD_CRONS = [
    ('run = { pipeline = "tick" }', "a cron needs exactly one of `schedule` and `interval`"),
    (
        'schedule = "* * * * *"\n  interval = "1s"\n  run = { pipeline = "tick" }',
        "(got both)",
    ),
    (
        'schedule = "61 * * * *"\n  run = { pipeline = "tick" }',
        "cron.bad.schedule: invalid schedule '61 * * * *': bad minute field '61'",
    ),
    (
        'schedule = "0 3 * * *"\n  timezone = "Mars/Olympus"\n  run = { pipeline = "tick" }',
        "cron.bad.timezone: unknown time zone 'Mars/Olympus'",
    ),
    (
        'interval = "5 fortnights"\n  run = { pipeline = "tick" }',
        "cron.bad.interval: unknown duration suffix: fortnights",
    ),
    (
        'interval = "1s"\n  catch_up = "soon"\n  run = { pipeline = "tick" }',
        "cron.bad.catch_up: invalid number in duration: soon",
    ),
    (
        'interval = "1s"\n  run = { pipeline = "nope" }',
        "cron.bad.run.pipeline: references unknown pipeline 'nope'",
    ),
    (
        'interval = "1s"\n  concurrency = 0\n  run = { pipeline = "tick" }',
        "cron.bad.concurrency: concurrency must be an integer of at least 1, got 0",
    ),
    ('interval = "1s"', "cron.bad: missing field `run`"),
]


def test_validation_errors_are_one_located_line(ojenv: OjEnv) -> None:
    """Each mistake, alone in a file: `oj cron start|once` fail with one located line (exit 1),
    and `oj runbook check` reports it too."""
    for body, message in BAD_CRONS:
        ojenv.runbook("bad.hcl", f'{PIPE}cron "bad" {{\n  {body}\n}}\n')
        for args in (("cron", "start", "bad"), ("cron", "once", "bad"), ("runbook", "check")):
            result = ojenv.oj(*args)
            assert result.returncode == 1, (args, body, result.stdout, result.stderr)
            if args[0] == "cron":
                assert result.stderr.count("\n") == 1, result.stderr
                assert result.stderr.startswith("Error: .oj/runbooks/bad.hcl:"), result.stderr
            assert message in result.stderr + result.stdout, (args, result.stderr, result.stdout)


@pytest.mark.parametrize(
    ("file", "text"),
    [
        (
            "bad.toml",
            '[pipeline.tick]\n[[pipeline.tick.step]]\nname = "mark"\nrun = "true"\n'
            '[cron.bad]\nschedule = "0 25 * * *"\nrun = { pipeline = "tick" }\n',
        ),
        (
            "bad.json",
            json.dumps(
                {
                    "pipelines": {"tick": {"steps": [{"name": "mark", "run": "true"}]}},
                    "crons": {"bad": {"schedule": "0 25 * * *", "run": {"pipeline": "tick"}}},
                }
            ),
        ),
    ],
)
def test_toml_and_json_crons_are_validated_too(ojenv: OjEnv, file: str, text: str) -> None:
    ojenv.runbook(file, text)
    result = ojenv.oj("cron", "start", "bad")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert "cron.bad.schedule: invalid schedule '0 25 * * *': bad hour field '25'" in (
        result.stderr
    )


def test_unknown_crons_and_bad_arguments(ojenv: OjEnv) -> None:
    setup(ojenv)
    for args, code, message in (
        (("cron", "start", "nope"), 1, "Error: no runbook found containing cron 'nope'\n"),
        (("cron", "once", "nope"), 1, "Error: no runbook found containing cron 'nope'\n"),
        (("cron", "stop", "nope"), 1, "Error: unknown cron: nope\n"),
        (("cron", "stop"), 2, "Error: specify either a cron name or --all\n"),
        (("cron", "start", "every", "--all"), 2, "Error: specify either a cron name or --all\n"),
    ):
        result = ojenv.oj(*args)
        assert (result.returncode, result.stderr) == (code, message), args
    # start --all starts every cron of the project's runbooks
    out = ojenv.ok("cron", "start", "--all")
    assert [line.split()[1] for line in out.splitlines()] == ["'every'", "'other'", "'catchy'"]
    assert ojenv.ok("cron", "list", "--project", "elsewhere") == "No crons found\n"


def test_the_example_runbook_runs_with_bash_only(ojenv: OjEnv) -> None:
    example = Path(__file__).resolve().parent.parent / "runbooks" / "cron.hcl"
    ojenv.runbook("cron.hcl", example.read_text())
    tmp = ojenv.root / "tmp"
    tmp.mkdir()
    ojenv.env["TMPDIR"] = str(tmp)
    ojenv.ok("cron", "once", "patrol")
    ojenv.ok("cron", "once", "tidy")
    wait_for(lambda: all_ended(ojenv), timeout=30, what="the example's pipelines to end")
    assert {p["step_status"] for p in ojenv.json("pipeline", "list")} == {"Completed"}
    assert (tmp / "oj-cron" / "patrol.log").read_text().startswith("== patrol for ")
    assert "tidy for " in (tmp / "oj-cron" / "tidy.log").read_text()
    out = ojenv.ok("cron", "start", "--all")
    # 30m, or 29m when the reply took over a second on a loaded machine
    assert re.search(r"Cron 'patrol' started; next fire in (?:30|29)m\n", out), out
    assert "Cron 'tidy' started; next fire in" in out


def wal_events(ojenv: OjEnv, kind: str) -> list[dict[str, object]]:
    """The WAL's events of type ``kind`` (one `{"seq", "event": {...}}` object a line)."""
    wal = ojenv.state / "wal" / "events.wal"
    events = [json.loads(line)["event"] for line in wal.read_text().splitlines() if line.strip()]
    return [e for e in events if e["type"] == kind]


def test_fires_are_durable_and_a_crash_keeps_the_cron_running(ojenv: OjEnv) -> None:
    marks = setup(ojenv)
    ojenv.ok("cron", "start", "every")
    wait_for(lambda: len(fires(marks, "every")) >= 2, timeout=30, what="two fires")
    fired = wal_events(ojenv, "cron:fired")
    assert len(fired) >= 2
    pipelines = {p["id"] for p in ojenv.json("pipeline", "list")}
    for event in fired:
        assert event["cron_name"] == "every" and event["namespace"] == "p"
        assert isinstance(event["scheduled_at_ms"], int)
        assert event["pipeline_id"] in pipelines
        assert not event.get("catch_up")  # omitted when false
    first, second = (int(str(e["scheduled_at_ms"])) for e in fired[:2])
    assert second > first and (second - first) % 1000 == 0  # in phase (a skip keeps it too)
    ojenv.kill_daemon()
    seen = len(fires(marks, "every"))
    ojenv.ok("daemon", "start")
    wait_for(lambda: len(fires(marks, "every")) >= seen + 2, timeout=30, what="fires again")
    assert cron(ojenv, "every")["status"] == "running"


def test_a_start_reply_that_comes_after_the_first_fire_says_now() -> None:
    from oj_trio.commands.cron import _next

    now = int(time.time() * 1000)
    assert _next(now + 90_000) == "; next fire in 1m"
    assert _next(now - 5) == "; next fire now"  # not "in now"
    assert _next(None) == ""


SLOW = """
pipeline "slow" {
  locals { when = "$(touch MARKS/preparing-$$; sleep 4; echo ${cron.scheduled_at})" }
  step "mark" { run = "echo ${local.when} >> MARKS/slow" }
}
cron "slowfire" {
  interval = "3s"
  run      = { pipeline = "slow" }
}
"""


def test_a_daemon_killed_inside_a_fire_loses_nothing(ojenv: OjEnv) -> None:
    """SIGKILL while a fire is being prepared (its timer consumed by `timer:start`, its `$(…)`
    local still running, nothing recorded yet): the restarted daemon handles that fire, on time,
    and records it once."""
    marks = ojenv.root / "m"
    marks.mkdir()
    ojenv.runbook("slow.hcl", SLOW.replace("MARKS", str(marks)))
    ojenv.ok("cron", "start", "slowfire")
    due = cron(ojenv, "slowfire")["next_fire_at_ms"]
    wait_for(lambda: list(marks.glob("preparing-*")), timeout=30, what="the fire's preparation")
    ojenv.kill_daemon()
    assert wal_events(ojenv, "cron:fired") == []
    assert any(e["id"] == "cron:p/slowfire" for e in wal_events(ojenv, "timer:start"))
    ojenv.ok("daemon", "start")
    wait_for(lambda: wal_events(ojenv, "cron:fired"), timeout=60, what="the fire recorded")
    first = wal_events(ojenv, "cron:fired")[0]
    assert first["scheduled_at_ms"] == due and not first.get("catch_up")
    wait_for(lambda: (marks / "slow").exists(), timeout=60, what="its step")
    ojenv.ok("cron", "stop", "slowfire")
    scheduled = [int(str(e["scheduled_at_ms"])) for e in wal_events(ojenv, "cron:fired")]
    assert scheduled.count(int(str(due))) == 1 and scheduled == sorted(set(scheduled))
    log = (ojenv.state / "daemon.log").read_text()
    assert "cron p/slowfire: the daemon stopped while firing it" in log
