"""The README's five-minute tour runs as written, so it cannot rot.

Every ``sh`` block of the "A five-minute tour" section is run, in order, by bash (``-euo
pipefail``: every command must succeed) in a fresh directory, with a throwaway ``HOME`` and no
``OJ_STATE_DIR``/``XDG_STATE_HOME``, so the daemon's state lands in ``~/.local/state/oj`` exactly
as the tour says. Between blocks the test checks what the prose around them claims (the worker
auto-started, a stopped worker leaves pending items alone, nothing is lost after ``kill -9``, the
agent step runs in tmux and ends when its agent exits), waiting with a deadline for the conditions
a reader would wait for by looking. ``<id>`` in a block is the placeholder the prose explains (the
pipeline id `oj run` printed); the test puts the real id in its place, as a reader would.

The README's first two commands are CI's contract; the last test keeps the second one identical
to what `.ci/run` executes.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from blackbox import BIN, wait_for

HAS_TMUX = shutil.which("tmux") is not None

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
TOUR_HEADING = "## A five-minute tour"


def section(text: str, heading: str) -> str:
    start = text.index(heading + "\n")
    end = text.find("\n## ", start + len(heading))
    return text[start : end if end >= 0 else len(text)]


def sh_blocks(text: str) -> list[str]:
    return re.findall(r"^```sh\n(.*?)^```$", text, flags=re.DOTALL | re.MULTILINE)


class Tour:
    """A fresh directory, a throwaway HOME, and `oj` from this venv first on PATH."""

    def __init__(self, root: Path) -> None:
        self.home = root / "h"
        self.work = root / "w"
        self.home.mkdir()
        self.work.mkdir()
        self.state = self.home / ".local" / "state" / "oj"
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("OJ_", "NOTIFY_SOCKET", "WATCHDOG_", "XDG_STATE_HOME"))
        }
        env["HOME"] = str(self.home)
        env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
        # Generous client deadlines for a loaded machine; they change no behaviour of the tour.
        env["OJ_TIMEOUT_CONNECT_MS"] = "30000"
        env["OJ_TIMEOUT_IPC_MS"] = "30000"
        self.env = env

    def bash(self, script: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=self.work,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def json(self, *args: str) -> Any:
        result = subprocess.run(
            [str(BIN / "oj"), *args, "-o", "json"],
            cwd=self.work,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return json.loads(result.stdout)

    def items(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.json("queue", "items", "jobs")
        return items

    def count(self, status: str) -> int:
        return sum(1 for item in self.items() if item["status"] == status)

    def ask_id(self) -> str:
        (ask,) = [p for p in self.json("pipeline", "list") if p["kind"] == "ask"]
        return str(ask["id"])

    def daemon_pid(self) -> int | None:
        try:
            return int((self.state / "daemon.pid").read_text().strip())
        except (OSError, ValueError):
            return None


@pytest.fixture
def tour() -> Iterator[Tour]:
    root = Path(tempfile.mkdtemp(prefix="ojt", dir="/tmp"))
    t = Tour(root)
    try:
        yield t
    finally:
        with contextlib.suppress(Exception):
            t.bash("oj daemon stop", timeout=60)
        pid = t.daemon_pid()
        if pid is not None:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(root, ignore_errors=True)


def _is_agent_block(block: str) -> bool:
    return 'agent "' in block or "<id>" in block


def _before(t: Tour, block: str) -> None:
    if "oj agent send" in block:
        # The reader answers once the agent's session is up (`oj agent list` showed it).
        wait_for(lambda: t.json("session", "list"), timeout=60, what="the agent's session")
    if "kill -9" in block:
        # The reader kills the daemon while items run: wait until some do.
        wait_for(lambda: t.count("active") > 0, timeout=60, what="an active item before kill -9")


def _after(t: Tour, block: str) -> None:
    if "oj run greet" in block:
        pipelines = t.json("pipeline", "list")
        assert [(p["kind"], p["step"]) for p in pipelines] == [("greet", "done")]
    elif "oj queue push jobs" in block:
        (worker,) = t.json("worker", "list")
        assert (worker["name"], worker["status"]) == ("crunch", "running")  # auto-started
        assert len(t.items()) == 6
    elif "oj worker stop crunch" in block:
        # Running items finish; a stopped worker takes nothing new even as its slots free up.
        wait_for(lambda: t.count("active") == 0, timeout=60, what="the active items to finish")
        assert t.count("pending") > 0
        assert t.json("worker", "list")[0]["status"] == "stopped"
    elif "oj queue wait jobs" in block:
        items = t.items()
        assert [i["status"] for i in items] == ["completed"] * 6
        crunch = [p for p in t.json("pipeline", "list") if p["kind"] == "crunch"]
        assert sum(p["step"] == "done" for p in crunch) == 6
        failed = [p for p in crunch if p["step"] == "failed"]
        assert failed, "the kill -9 interrupted no pipeline"
        for p in failed:
            detail = t.json("pipeline", "show", p["id"])
            assert detail["error"] == "interrupted: daemon stopped while step was running"
    elif "oj run ask" in block:
        (agent,) = t.json("agent", "list")
        assert agent["agent_name"] == "oracle"
    elif "oj agent send" in block:
        detail = t.json("pipeline", "show", t.ask_id())
        assert [(s["name"], s["outcome"]) for s in detail["steps"]] == [
            ("think", "completed"),
            ("answer", "completed"),
        ]
        logs = subprocess.run(
            [str(BIN / "oj"), "pipeline", "logs", t.ask_id()],
            cwd=t.work,
            env=t.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
        assert "[answer] | Nothing: it is just short." in logs
        assert t.json("session", "list") == []  # the session ends with the step
    elif "oj daemon stop" in block:
        assert t.daemon_pid() is None


def test_the_tour_runs_as_written(tour: Tour) -> None:
    blocks = sh_blocks(section(README.read_text(encoding="utf-8"), TOUR_HEADING))
    assert len(blocks) >= 6, "the tour lost its command blocks"
    skipped = []
    for block in blocks:
        if _is_agent_block(block) and not HAS_TMUX:
            skipped.append(block)
            continue
        _before(tour, block)
        if "<id>" in block:
            block = block.replace("<id>", tour.ask_id())
        result = tour.bash(block)
        assert result.returncode == 0, (
            f"tour block failed (exit {result.returncode}):\n{block}\n"
            f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
        )
        _after(tour, block)
    joined = "\n".join(blocks)
    for claim in ("oj worker stop crunch", "kill -9", "adapter", "oj agent send", "oj daemon stop"):
        assert claim in joined, f"the tour no longer shows {claim!r}"
    if skipped:
        pytest.skip(f"tmux is not installed: {len(skipped)} agent block(s) of the tour not run")


def test_the_second_readme_command_is_what_ci_runs() -> None:
    """CI (`.ci/run`) executes the README's test command verbatim; keep the two identical."""
    blocks = sh_blocks(README.read_text(encoding="utf-8"))
    install, test = blocks[0].strip(), blocks[1].strip()
    assert install.startswith("python3 -m venv .venv && .venv/bin/pip install -q . &&")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert test in ci.splitlines()
