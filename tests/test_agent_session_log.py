"""Where the Claude watcher reads its session log from (reference §4.2): the agent's own file;
else the newest `.jsonl` in its folder written since the watch began; nothing within 30 s →
the process only (no idle or error from the log, one notice for the pipeline log)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from oj_trio.runtime.agents_adapters import (
    FAILED,
    LOG_SEARCH_MS,
    PROCESS_ONLY_NOTICE,
    WAITING,
    WORKING,
    SessionLogObserver,
)

ANSWER = {"type": "assistant", "message": {"content": [{"type": "text", "text": "done"}]}}
TOOL = {
    "type": "assistant",
    "message": {"content": [{"type": "tool_use", "name": "Read", "input": {"file_path": "a"}}]},
}
ERROR = {"type": "assistant", "error": "rate limit exceeded"}


def write(path: Path, *records: dict[str, object], mtime: float | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fh.write("".join(json.dumps(r) + "\n" for r in records))
    if mtime is not None:
        os.utime(path, (mtime, mtime))


def observer(tmp_path: Path) -> SessionLogObserver:
    obs = SessionLogObserver(
        tmp_path / "projects" / "-w" / "new.jsonl", tmp_path / "agent.log", 1000
    )
    obs.reset(0)
    return obs


def test_the_agents_own_log_sets_the_state(tmp_path: Path) -> None:
    obs = observer(tmp_path)
    write(obs.path, TOOL)
    assert obs.poll(10) is None and obs.state == WORKING
    write(obs.path, ANSWER)
    assert obs.poll(20) is None and obs.state == WAITING
    assert obs.poll(1020) is not None  # idle after the timeout
    assert "read: a" in (tmp_path / "agent.log").read_text()


def test_an_older_agents_log_in_the_same_folder_is_not_read(tmp_path: Path) -> None:
    # A `recover` spawns a new agent in the same cwd: the replaced agent's log (idle, or failed)
    # must not become the new agent's state or fill its agent log.
    obs = observer(tmp_path)
    write(obs.path.parent / "old.jsonl", ERROR, mtime=time.time() - 60)
    assert obs.poll(10) is None
    assert obs.state == WORKING
    assert not (tmp_path / "agent.log").exists()


def test_a_fallback_log_is_read_until_the_agents_own_file_appears(tmp_path: Path) -> None:
    obs = observer(tmp_path)
    other = obs.path.parent / "renamed.jsonl"
    write(other, TOOL, ANSWER, TOOL)
    assert obs.poll(10) is None and obs.state == WORKING
    # Its own file appears (shorter than what was read so far): read from its start.
    write(obs.path, ERROR)
    trigger = obs.poll(20)
    assert obs.state == FAILED
    assert trigger is not None and trigger.kind == "error"


def test_no_log_within_the_search_window_means_process_only(tmp_path: Path) -> None:
    obs = observer(tmp_path)
    assert obs.poll(0) is None
    assert obs.take_notice() is None
    assert obs.poll(LOG_SEARCH_MS - 1) is None
    assert obs.take_notice() is None
    assert obs.poll(LOG_SEARCH_MS) is None
    assert obs.take_notice() == PROCESS_ONLY_NOTICE
    assert obs.take_notice() is None  # said once
    # A log appearing later is not read (reference: liveness only from then on).
    write(obs.path, ANSWER)
    for now in (LOG_SEARCH_MS + 10, LOG_SEARCH_MS + 10_000):
        assert obs.poll(now) is None
    assert obs.state == WORKING and obs.idle_due_ms() is None
    assert obs.final(0).kind == "dead"


def test_a_reattached_watch_reads_a_log_written_before_it_began(tmp_path: Path) -> None:
    path = tmp_path / "projects" / "-w" / "renamed.jsonl"
    write(path, ANSWER, mtime=time.time() - 600)
    obs = observer(tmp_path)
    obs.catch_up(0)
    assert obs.state == WAITING


def test_a_reattached_watch_counts_idle_from_the_last_record(tmp_path: Path) -> None:
    # An agent idle for ten minutes while the daemon was down fires at the first poll after
    # the re-attach, not a whole idle timeout (here 3 minutes) later.
    now_ms = int(time.time() * 1000)
    obs = SessionLogObserver(
        tmp_path / "projects" / "-w" / "new.jsonl", tmp_path / "agent.log", 180_000
    )
    write(obs.path, ANSWER, mtime=time.time() - 600)
    obs.reset(now_ms)
    obs.catch_up(now_ms, wall_clock=True)
    trigger = obs.poll(now_ms + 10)
    assert trigger is not None and trigger.kind == "idle"


def test_a_reattached_watch_of_a_recently_idle_agent_waits_the_rest(tmp_path: Path) -> None:
    now_ms = int(time.time() * 1000)
    obs = SessionLogObserver(
        tmp_path / "projects" / "-w" / "new.jsonl", tmp_path / "agent.log", 180_000
    )
    write(obs.path, ANSWER, mtime=time.time() - 60)
    obs.reset(now_ms)
    obs.catch_up(now_ms, wall_clock=True)
    assert obs.poll(now_ms + 10) is None
    due = obs.idle_due_ms()
    assert due is not None and due < now_ms + 180_000  # the minute already idle counts
    trigger = obs.poll(due)
    assert trigger is not None and trigger.kind == "idle"
