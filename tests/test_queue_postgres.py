"""Black-box: persisted queues in PostgreSQL shared by several real `ojd`s (issue 12, SPEC §9).

Every daemon has its own state dir and its own copy of the project (as on separate machines)
and points at one database of a throwaway cluster (:mod:`pg_cluster`, one per session, a fresh
database per test). Each handler step appends `start <n> <daemon>` / `end <n> <daemon>` to one
shared marks file, so the tests read which daemon ran which item, and how often.

Without PostgreSQL on the machine these tests skip (the reason says how to enable them).
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from blackbox import OJ, OjEnv, oj_env, wait_for
from pg_cluster import PgCluster

pytest.importorskip("psycopg", reason="psycopg is not installed: pip install -e '.[test]'")

RUNBOOK = """
queue "q" {
  type  = "persisted"
  vars  = ["n"]
  retry = { attempts = 1, cooldown = "1s" }
}
worker "w" {
  source      = { queue = "q" }
  handler     = { pipeline = "job" }
  concurrency = 4
}
pipeline "job" {
  vars = ["item"]
  step "work" {
    run = <<-SHELL
      echo "start ${item.n} $OJ_DAEMON_TAG" >> MARKS/log
      if test -f MARKS/once.${item.n}; then rm MARKS/once.${item.n}; exit 1; fi
      while test -f MARKS/hold.${item.n} || test -f MARKS/hold.all; do sleep 0.02; done
      if test -f MARKS/fail.${item.n}; then exit 1; fi
      sleep 0.01
    SHELL
    on_done = "finish"
  }
  step "finish" {
    run = "echo \\"end ${item.n} $OJ_DAEMON_TAG\\" >> MARKS/log"
  }
}
"""


class Machine:
    """One daemon with its own state dir and project checkout, sharing the database."""

    def __init__(self, env: OjEnv, tag: str, url: str, marks: Path, **extra: str) -> None:
        self.env = env
        self.tag = tag
        env.env.update({"OJ_QUEUE_URL": url, "OJ_DAEMON_TAG": tag, **extra})
        env.runbook("q.hcl", RUNBOOK.replace("MARKS", str(marks)))

    def ok(self, *args: str, **kw: Any) -> str:
        return self.env.ok(*args, **kw)

    def json(self, *args: str, **kw: Any) -> Any:
        return self.env.json(*args, **kw)

    def items(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.json("queue", "items", "q")
        return result


@pytest.fixture
def marks() -> Iterator[Path]:
    with oj_env() as holder:
        path = holder.root / "marks"
        path.mkdir()
        (path / "log").touch()
        yield path


@pytest.fixture
def two(db: str, marks: Path) -> Iterator[tuple[Machine, Machine]]:
    """Two daemons with the default lease (30 s): on a loaded machine a short lease could lapse
    under a live daemon, and the item would rightly run again elsewhere."""
    with oj_env() as a, oj_env() as b:
        yield Machine(a, "A", db, marks), Machine(b, "B", db, marks)


def runs(marks: Path) -> dict[str, list[tuple[str, str]]]:
    """Item number → the (start|end, daemon) lines in order."""
    out: dict[str, list[tuple[str, str]]] = collections.defaultdict(list)
    for line in (marks / "log").read_text().splitlines():
        what, n, tag = line.split()
        out[n].append((what, tag))
    return out


def batch(numbers: range) -> str:
    return "".join(json.dumps({"n": str(n)}) + "\n" for n in numbers)


def status_counts(m: Machine) -> dict[str, int]:
    (queue,) = [q for q in m.json("queue", "list") if q["name"] == "q"]
    return {k: queue[k] for k in ("pending", "active", "failed", "dead", "completed")}


def test_two_daemons_share_200_items_each_completed_exactly_once(
    two: tuple[Machine, Machine], marks: Path
) -> None:
    a, b = two
    a.ok("worker", "start", "w")
    b.ok("worker", "start", "w")
    out = a.ok("queue", "push", "q", "--file", "-", input=batch(range(200)))
    assert "200" in out
    wait_for(lambda: status_counts(b)["completed"] == 200, timeout=120, what="200 items completed")
    seen = runs(marks)
    assert sorted(seen, key=int) == [str(n) for n in range(200)]
    for n, lines in seen.items():
        # One run per item, on one daemon: never active on both.
        assert len(lines) == 2 and lines[0][0] == "start" and lines[1][0] == "end", (n, lines)
        assert lines[0][1] == lines[1][1], (n, lines)
    by_daemon = collections.Counter(lines[0][1] for lines in seen.values())
    assert by_daemon["A"] > 0 and by_daemon["B"] > 0, by_daemon
    items = a.items()
    assert len(items) == 200 and {i["status"] for i in items} == {"completed"}
    assert all(i["history"][0].startswith("claimed by ") for i in items)
    # Both daemons see the same items; another namespace of the same database sees none.
    assert {i["id"] for i in b.items()} == {i["id"] for i in items}
    assert "No items" in a.ok("queue", "items", "q", "--project", "elsewhere")
    # Pruning on one daemon removes them for the other; a dry run and a young item stay.
    b.ok("queue", "prune", "q")  # ended just now: kept
    a.ok("queue", "prune", "q", "--all", "--dry-run")
    assert len(b.items()) == 200
    a.ok("queue", "prune", "q", "--all")
    assert "No items" in b.ok("queue", "items", "q")


def _lines_of(marks: Path, what: str, tag: str) -> set[str]:
    return {n for n, lines in runs(marks).items() if (what, tag) in lines}


def test_sigkilled_daemon_items_rerun_elsewhere_after_the_lease(db: str, marks: Path) -> None:
    with oj_env() as env_a, oj_env() as env_b:
        lease = {"OJ_QUEUE_LEASE_MS": "1500"}
        _rerun_after_sigkill(
            Machine(env_a, "A", db, marks, **lease), Machine(env_b, "B", db, marks, **lease), marks
        )


def _rerun_after_sigkill(a: Machine, b: Machine, marks: Path) -> None:
    (marks / "hold.all").touch()
    a.ok("queue", "push", "q", "--file", "-", input=batch(range(4)))  # auto-starts A's worker
    wait_for(lambda: len(_lines_of(marks, "start", "A")) == 4, timeout=30, what="A runs 4")
    b.ok("worker", "start", "w")
    a.env.kill_daemon()
    # The machine died: its steps die with it.
    wait_for(lambda: not _kill_all(_step_pids(a.env)), what="A's steps killed")
    wait_for(
        lambda: len(_lines_of(marks, "start", "B")) == 4, timeout=60, what="B reruns A's items"
    )
    (marks / "hold.all").unlink()
    wait_for(lambda: status_counts(b)["completed"] == 4, timeout=60, what="all 4 completed")
    seen = runs(marks)
    for n in map(str, range(4)):
        assert seen[n] == [("start", "A"), ("start", "B"), ("end", "B")], seen[n]
    history = {i["data"]["n"]: i["history"] for i in b.items()}
    for n in map(str, range(4)):
        assert [h.split(" ")[0] for h in history[n]] == [
            "claimed",
            "interrupted",
            "claimed",
            "completed",
        ], history[n]
        assert "lease expired" in history[n][1]


def _kill_all(pids: list[int]) -> list[int]:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return pids


def _step_pids(env: OjEnv) -> list[int]:
    needle = f"OJ_STATE_DIR={env.state}\0".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as fh:
                if needle in fh.read():
                    found.append(int(entry))
        except OSError:
            continue
    return found


def test_database_restart_loses_no_acknowledged_push_and_workers_recover(
    cluster: PgCluster, db: str, marks: Path
) -> None:
    with oj_env() as env:
        a = Machine(env, "A", db, marks)
        (marks / "hold.0").touch()
        a.ok("queue", "push", "q", '{"n": "0"}')
        a.ok("queue", "push", "q", "--file", "-", input=batch(range(1, 6)))
        wait_for(lambda: "0" in _lines_of(marks, "start", "A"), what="item 0 running")
        cluster.stop()
        try:
            # Down: a push fails with one line and a non-zero exit, nothing half-pushed.
            failed = a.env.oj("queue", "push", "q", "--file", "-", input=batch(range(6, 9)))
            assert failed.returncode != 0
            assert failed.stdout == ""
            assert len(failed.stderr.strip().splitlines()) == 1, failed.stderr
            assert "unreachable" in failed.stderr
            # The fault is reported, the running pipeline goes on.
            assert "unreachable" in a.ok("status")
            listed = a.ok("queue", "list")
            assert "unreachable" in listed, listed
            assert "pending=? active=? dead=?" in listed, listed  # unknown, not zero
            (marks / "hold.0").unlink()
            wait_for(lambda: "0" in _lines_of(marks, "end", "A"), what="item 0 ends while down")
        finally:
            cluster.start()
        a.ok("queue", "push", "q", '{"n": "9"}')
        wait_for(
            lambda: status_counts(a)["completed"] == 7,
            timeout=60,
            what="the acknowledged pushes completed after the restart",
        )
        numbers = sorted(i["data"]["n"] for i in a.items())
        assert numbers == ["0", "1", "2", "3", "4", "5", "9"]
        assert status_counts(a) == {
            "pending": 0,
            "active": 0,
            "failed": 0,
            "dead": 0,
            "completed": 7,
        }
        assert "unreachable" not in a.ok("status")


def test_retry_cooldown_dead_and_manual_retry_across_two_daemons(
    two: tuple[Machine, Machine], marks: Path
) -> None:
    a, b = two
    a.ok("worker", "start", "w")
    b.ok("worker", "start", "w")
    (marks / "fail.x").touch()
    out = a.ok("queue", "push", "q", '{"n": "x"}')
    item_id = out.split("'")[1]

    def dead() -> dict[str, Any] | None:
        items = [i for i in b.items() if i["id"] == item_id]
        return items[0] if items and items[0]["status"] == "dead" else None

    item = wait_for(dead, timeout=60, what="the item dead after one retry")
    assert item["failure_count"] == 2
    events = [h.split(" ")[0] for h in item["history"]]
    assert events == ["claimed", "failed", "claimed", "dead"], item["history"]
    assert len([line for line in runs(marks)["x"] if line[0] == "start"]) == 2
    # `oj status` on either daemon counts the shared queue: its dead item needs attention.
    status = a.ok("status")
    assert "1 dead item" in status and "oj queue retry q --all-dead" in status, status
    # A manual retry on the other daemon resets the count and wakes the workers everywhere.
    (marks / "fail.x").unlink()
    retried = b.env.oj("queue", "retry", "q", item_id[:8])
    assert retried.returncode == 0, retried.stderr
    wait_for(lambda: status_counts(a)["completed"] == 1, timeout=60, what="completed on retry")
    (done,) = a.items()
    assert done["failure_count"] == 0
    assert [h.split(" ")[0] for h in done["history"]][-3:] == ["retried", "claimed", "completed"]
    # Retrying an item that is not failed or dead is an error, as for local queues.
    again = a.env.oj("queue", "retry", "q", item_id)
    assert again.returncode != 0 and "only dead or failed" in again.stderr
    assert b.ok("queue", "drop", "q", item_id[:8])
    assert "No items" in a.ok("queue", "items", "q")


def test_queue_list_shows_a_shared_queue_with_items_no_runbook_defines_any_more(
    two: tuple[Machine, Machine],
) -> None:
    a, b = two
    a.ok("queue", "push", "q", "--file", "-", input=batch(range(2)))  # A's worker runs them
    b.ok("daemon", "start")
    b.env.runbook("q.hcl", 'queue "r" {\n  type = "persisted"\n  vars = ["n"]\n}\n')
    listed = {q["name"]: q for q in b.json("queue", "list")}
    assert set(listed) == {"q", "r"}, listed
    assert sum(listed["q"][k] for k in ("pending", "active", "completed")) == 2, listed["q"]
    assert listed["q"]["workers"] == [] and listed["r"]["pending"] == 0
    # Another project (namespace) of the same database lists none of them.
    assert "q" not in b.ok("queue", "list", "--project", "elsewhere")


def test_queue_wait_on_one_daemon_wakes_when_another_daemon_finishes_the_items(
    two: tuple[Machine, Machine], marks: Path
) -> None:
    """B runs nothing and commits nothing: its `oj queue wait` long poll ends on the
    notification of A's settlements, not at its poll interval (set to ten minutes here)."""
    a, b = two
    a.ok("worker", "start", "w")
    b.ok("daemon", "start")
    (marks / "hold.all").touch()
    a.ok("queue", "push", "q", "--file", "-", input=batch(range(2)))
    wait_for(lambda: len(_lines_of(marks, "start", "A")) == 2, what="A runs both")
    slow = {"OJ_WAIT_POLL_MS": "600000", "OJ_TIMEOUT_IPC_MS": "1200000"}
    with subprocess.Popen(
        [OJ, "queue", "wait", "q", "-o", "json"],
        cwd=b.env.project,
        env={**b.env.env, **slow},
        stdout=subprocess.PIPE,
        text=True,
    ) as waiting:
        try:
            wait_for(lambda: b.json("queue", "items", "q")[0]["status"] == "active", what="seen")
            (marks / "hold.all").unlink()
            out, _ = waiting.communicate(timeout=60)
        finally:
            waiting.kill()
    assert waiting.returncode == 0, out
    assert json.loads(out)["done"] == 2


def test_config_toml_url_selects_the_database_and_env_wins(
    db: str, cluster: PgCluster, marks: Path
) -> None:
    with oj_env() as env_a, oj_env() as env_b:
        a = Machine(env_a, "A", db, marks)
        del a.env.env["OJ_QUEUE_URL"]
        (a.env.project / ".oj" / "config.toml").write_text(f'[queues]\nurl = "{db}"\n')
        b = Machine(env_b, "B", db, marks)
        b.ok("daemon", "start")
        out = a.ok("queue", "push", "q", '{"n": "1"}')
        item_id = out.split("'")[1]
        wait_for(lambda: status_counts(b)["completed"] == 1, what="A ran it from the database")
        assert [i["id"] for i in b.items()] == [item_id]
        assert "queue:pushed" not in _wal_text(a.env)  # not in A's own WAL
        # The daemon's environment wins over the project's file.
        other = cluster.createdb()
        a.env.stop()
        a.env.env["OJ_QUEUE_URL"] = other
        a.ok("queue", "push", "q", '{"n": "2"}')
        assert [i["id"] for i in b.items()] == [item_id]


def _wal_text(env: OjEnv) -> str:
    return "".join(p.read_text(errors="replace") for p in env.state.rglob("*") if p.is_file())


def test_a_queue_url_that_is_not_postgresql_is_a_one_line_error(ojenv: OjEnv) -> None:
    ojenv.env["OJ_QUEUE_URL"] = "mysql://db.example/oj"
    ojenv.runbook("q.hcl", RUNBOOK.replace("MARKS", str(ojenv.root)))
    result = ojenv.oj("queue", "push", "q", '{"n": "1"}')
    assert result.returncode != 0
    assert "queue url must start with postgresql://" in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    listed = ojenv.oj("queue", "items", "q")
    assert listed.returncode != 0 and "postgresql://" in listed.stderr


@pytest.mark.parametrize(
    "url",
    ["postgresql:///oj?nosuchoption=1", "postgresql://oj:secret@[::1/oj", "postgres://%zz/oj"],
)
def test_a_malformed_queue_url_is_a_one_line_error_and_the_daemon_lives_on(
    ojenv: OjEnv, url: str
) -> None:
    """A URL libpq cannot parse, in the daemon's environment (listened to from the start) or in
    a project's config.toml: each queue command fails with one line, the daemon keeps running."""
    ojenv.env["OJ_QUEUE_URL"] = url
    ojenv.runbook("q.hcl", RUNBOOK.replace("MARKS", str(ojenv.root)))
    ojenv.ok("daemon", "start")
    pid = ojenv.daemon_pid()
    for args in (("queue", "push", "q", '{"n": "1"}'), ("queue", "items", "q")):
        result = ojenv.oj(*args)
        assert result.returncode != 0, result.stdout
        assert "is malformed" in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "secret" not in result.stderr
    del ojenv.env["OJ_QUEUE_URL"]
    (ojenv.project / ".oj" / "config.toml").write_text(f'[queues]\nurl = "{url}"\n')
    result = ojenv.oj("queue", "push", "q", '{"n": "2"}')
    assert result.returncode != 0 and "is malformed" in result.stderr, result.stderr
    assert ojenv.ok("status").startswith("oj daemon: up")
    assert ojenv.daemon_pid() == pid


def test_a_daemon_restarted_within_its_lease_settles_its_own_items(db: str, marks: Path) -> None:
    """SIGKILL and restart before the lease expires: the restarted daemon still holds its claims
    (its WAL links pipeline and item), so the other daemon never takes them over; the runs the
    crash interrupted fail and are retried under the queue's retry policy, as locally."""
    with oj_env() as env_a, oj_env() as env_b:
        lease = {"OJ_QUEUE_LEASE_MS": "60000"}
        a, b = Machine(env_a, "A", db, marks, **lease), Machine(env_b, "B", db, marks, **lease)
        (marks / "hold.all").touch()
        a.ok("queue", "push", "q", "--file", "-", input=batch(range(2)))
        wait_for(lambda: len(_lines_of(marks, "start", "A")) == 2, what="A runs both")
        b.ok("worker", "start", "w")
        a.env.kill_daemon()
        wait_for(lambda: not _kill_all(_step_pids(a.env)), what="A's steps killed")
        a.ok("daemon", "start")
        (marks / "hold.all").unlink()
        wait_for(lambda: status_counts(b)["completed"] == 2, timeout=60, what="both completed")
        assert (a.env.state / "daemon.log").read_text().count(" runs on in pipeline ") == 2
        for item in b.items():
            events = [h.split(" ")[0] for h in item["history"]]
            # No lease expired: the first claim was settled by the restarted daemon.
            assert events == ["claimed", "failed", "claimed", "completed"], item["history"]
            assert item["history"][1].startswith(f"failed by {item['history'][0][11:]}")


def test_a_reattached_claim_keeps_counting_the_items_failures(db: str, marks: Path) -> None:
    """The item failed once (attempts = 1), its retry runs when the daemon is SIGKILLed and
    restarted within the lease: the re-attached claim's failure is its second, so it is dead,
    exactly as if the daemon had not restarted (the count comes from the database)."""
    with oj_env() as env:
        a = Machine(env, "A", db, marks, OJ_QUEUE_LEASE_MS="60000")
        (marks / "once.1").touch()
        (marks / "hold.1").touch()
        a.ok("queue", "push", "q", '{"n": "1"}')
        wait_for(lambda: runs(marks)["1"].count(("start", "A")) == 2, what="the retry runs")
        a.env.kill_daemon()
        wait_for(lambda: not _kill_all(_step_pids(a.env)), what="A's steps killed")
        a.ok("daemon", "start")
        (item,) = wait_for(
            lambda: (items := a.items())[0]["status"] in ("dead", "completed") and items,
            timeout=60,
            what="the interrupted retry settled",
        )
        assert [h.split(" ")[0] for h in item["history"]] == [
            "claimed",
            "failed",
            "claimed",
            "dead",
        ], item["history"]
        assert item["failure_count"] == 2


def test_a_claim_taken_over_elsewhere_stops_the_local_pipeline(db: str, marks: Path) -> None:
    """As if this daemon's lease had lapsed (a partition) and another daemon claimed the item:
    the next renewal finds the claim gone, the local pipeline is cancelled, and its outcome
    leaves the other daemon's claim alone (the pipeline id fences it)."""
    import psycopg

    with oj_env() as env:
        a = Machine(env, "A", db, marks, OJ_QUEUE_LEASE_MS="1500")
        (marks / "hold.all").touch()
        item_id = a.ok("queue", "push", "q", '{"n": "1"}').split("'")[1]
        wait_for(lambda: _lines_of(marks, "start", "A") == {"1"}, what="A runs it")
        with psycopg.connect(db, autocommit=True) as conn:
            conn.execute(
                "UPDATE oj_queue_items SET pipeline_id = 'elsewhere', owner = 'other:1' "
                "WHERE id = %s",
                (item_id,),
            )
        (pipeline,) = a.json("pipeline", "list")
        ended = wait_for(
            lambda: (p := a.env.pipeline(pipeline["id"]))["terminal"] and p,
            what="the local pipeline stopped",
        )
        assert ended["step"] == "cancelled", ended
        wait_for(lambda: a.json("worker", "list")[0]["active"] == 0, what="A's slot free again")
        (item,) = a.items()
        assert item["status"] == "active" and item["worker_name"] == "w@other:1", item
        assert [h.split(" ")[0] for h in item["history"]] == ["claimed"], item["history"]
        assert "1" not in _lines_of(marks, "end", "A")


def test_worker_stop_and_auto_start_keep_their_meaning_per_daemon(
    two: tuple[Machine, Machine], marks: Path
) -> None:
    a, b = two
    a.ok("worker", "start", "w")
    a.ok("worker", "stop", "w")
    b.ok("daemon", "start")
    # A push on A wakes nobody there (its worker is stopped, sticky) and starts nothing on B.
    a.ok("queue", "push", "q", "--file", "-", input=batch(range(3)))
    assert a.json("worker", "list")[0]["status"] == "stopped"
    assert b.json("worker", "list") == []
    # A push on B auto-starts B's worker, which drains the shared queue.
    b.ok("queue", "push", "q", '{"n": "3"}')
    wait_for(lambda: status_counts(b)["completed"] == 4, what="B ran all four")
    assert {n for n, lines in runs(marks).items() if lines[0] == ("start", "B")} == {
        "0",
        "1",
        "2",
        "3",
    }
    assert _lines_of(marks, "start", "A") == set()


def test_a_stopped_worker_still_settles_its_items_once_the_database_is_back(
    cluster: PgCluster, db: str, marks: Path
) -> None:
    """`oj worker stop` cancels nothing: an item whose pipeline ended while the database was
    away gets its outcome when the database answers again, though the worker stays stopped."""
    with oj_env() as env:
        a = Machine(env, "A", db, marks)
        (marks / "hold.0").touch()
        a.ok("queue", "push", "q", '{"n": "0"}')
        wait_for(lambda: "0" in _lines_of(marks, "start", "A"), what="item 0 running")
        a.ok("worker", "stop", "w")
        cluster.stop()
        try:
            (marks / "hold.0").unlink()
            wait_for(lambda: "0" in _lines_of(marks, "end", "A"), what="item 0 ends while down")
            wait_for(
                lambda: "not settled yet" in (a.env.state / "daemon.log").read_text(),
                what="the outcome waiting for the database",
            )
        finally:
            cluster.start()
        wait_for(lambda: status_counts(a)["completed"] == 1, timeout=60, what="item 0 completed")
        assert a.json("worker", "list")[0]["status"] == "stopped"
        assert a.json("worker", "list")[0]["active"] == 0


def test_a_daemon_restarted_while_the_database_is_down_starts_and_recovers(
    cluster: PgCluster, db: str, marks: Path
) -> None:
    with oj_env() as env:
        a = Machine(env, "A", db, marks, OJ_QUEUE_LEASE_MS="60000")
        (marks / "hold.all").touch()
        a.ok("queue", "push", "q", "--file", "-", input=batch(range(3)))
        wait_for(lambda: len(_lines_of(marks, "start", "A")) == 3, what="A runs all three")
        a.env.kill_daemon()
        wait_for(lambda: not _kill_all(_step_pids(a.env)), what="A's steps killed")
        cluster.stop()
        try:
            a.ok("daemon", "start")
            status = a.ok("status")
            assert "unreachable" in status, status
            assert "unreachable" in a.ok("queue", "list")
        finally:
            cluster.start()
        (marks / "hold.all").unlink()
        wait_for(
            lambda: status_counts(a)["completed"] == 3,
            timeout=90,
            what="the three items completed once the database is back",
        )
        assert "unreachable" not in a.ok("status")
