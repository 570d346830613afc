"""The spawner helper (oj_trio.adapters.spawner / spawner_process): a real helper process starting
real programs, as the daemon uses it — and what happens when it is stuck or gone."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio

from oj_trio.adapters import process, spawner
from oj_trio.adapters.process import ProcessSpawnError, run_shell, use_spawner
from oj_trio.adapters.spawn_policy import SpawnPolicy
from oj_trio.adapters.spawner import RemoteChild, Spawner, SpawnerGone, open_spawner

ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "FOO": "bar baz"}


def via_helper(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make run_shell hand its spawns to the helper: as if eight steps ran, one spawning."""
    monkeypatch.setattr(process, "SPAWNER_FROM", 0)
    monkeypatch.setattr(process, "_starting", 1)  # never idle: idle spawns stay inline


@pytest.fixture
async def helper() -> AsyncIterator[Spawner]:
    async with open_spawner() as opened:
        assert opened is not None
        with trio.fail_after(20):
            assert await opened.wait_ready()
        yield opened


async def run(
    sp: Spawner, argv: list[str], cwd: Path, env: dict[str, str] | None = None
) -> tuple[RemoteChild, str]:
    """Spawn ``argv`` with its output in a pipe; wait for its end; return it and the output."""
    r, w = os.pipe()
    null = os.open(os.devnull, os.O_RDONLY)
    try:
        child = await sp.spawn(argv, executable=None, fds=(null, w, w), cwd=cwd, env=env or ENV)
    finally:
        os.close(w)
        os.close(null)
    with trio.fail_after(20):
        await child.ended()
    with os.fdopen(r, "rb") as out:
        return child, out.read().decode()


async def shell_output(
    command: str, cwd: Path, env: dict[str, str]
) -> tuple[int, list[tuple[str, str]]]:
    """run_shell ``command``; its exit code and its output lines as (stream, line)."""
    lines: list[tuple[str, str]] = []
    code = await run_shell(
        command, cwd=cwd, env=env, on_output=lambda stream, line: lines.append((stream, line))
    )
    return code, lines


async def test_a_spawned_program_gets_its_cwd_env_output_and_own_session(
    helper: Spawner, tmp_path: Path
) -> None:
    script = 'pwd; echo "$FOO"; exec cat /proc/self/stat'
    child, out = await run(helper, ["sh", "-c", script], tmp_path)
    assert child.returncode == 0
    cwd, foo, stat = out.splitlines()
    assert cwd == str(tmp_path)
    assert foo == "bar baz"
    fields = stat.rsplit(")", 1)[1].split()
    pid = int(stat.split()[0])
    assert pid == child.pid
    assert int(fields[2]) == pid and int(fields[3]) == pid  # pgrp and session: its own
    assert isinstance(child.start_ticks, int) and child.start_ticks == int(fields[19])


async def test_exit_codes_and_signal_deaths_as_subprocess_has_them(
    helper: Spawner, tmp_path: Path
) -> None:
    child, _ = await run(helper, ["sh", "-c", "exit 7"], tmp_path)
    assert child.returncode == 7
    child, _ = await run(helper, ["sh", "-c", "kill -TERM $$"], tmp_path)
    assert child.returncode == -signal.SIGTERM


async def test_signals_python_ignores_are_at_their_defaults_in_the_child(
    helper: Spawner, tmp_path: Path
) -> None:
    _, out = await run(helper, ["grep", "SigIgn", "/proc/self/status"], tmp_path)
    ignored = int(out.split()[1], 16)
    for sig in (signal.SIGPIPE, signal.SIGINT, signal.SIGXFSZ, signal.SIGTERM, signal.SIGHUP):
        assert not ignored & (1 << (sig - 1)), sig


async def test_a_bare_name_is_looked_up_on_the_steps_own_path(
    helper: Spawner, tmp_path: Path
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "hello-oj").write_text("#!/bin/sh\necho hi from $0\n")
    (bin_dir / "hello-oj").chmod(0o755)
    child, out = await run(helper, ["hello-oj"], tmp_path, {"PATH": f"/nowhere:{bin_dir}"})
    assert (child.returncode, out) == (0, f"hi from {bin_dir}/hello-oj\n")
    with pytest.raises(FileNotFoundError) as missing:
        await run(helper, ["hello-oj"], tmp_path)
    assert missing.value.filename == "hello-oj"


async def test_a_missing_working_directory_names_it(helper: Spawner, tmp_path: Path) -> None:
    gone = tmp_path / "gone"
    with pytest.raises(FileNotFoundError) as missing:
        await run(helper, ["true"], gone)
    assert missing.value.filename == str(gone)


async def test_run_shell_through_the_spawner_is_run_shell(
    helper: Spawner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    via_helper(monkeypatch)
    sent: list[list[str]] = []
    spawn = helper.spawn

    async def counting(argv: list[str], **kw: Any) -> RemoteChild:
        sent.append(argv)
        return await spawn(argv, **kw)

    monkeypatch.setattr(helper, "spawn", counting)
    with use_spawner(helper):
        code, lines = await shell_output("echo out; echo err >&2; exit 3", tmp_path, ENV)
        assert code == 3
        assert sorted(lines) == [("stderr", "err"), ("stdout", "out")]
        # One simple command: exec'd directly (direct_exec), through the helper too.
        assert await run_shell("true", cwd=tmp_path, env=ENV, on_output=None) == 0
        with pytest.raises(ProcessSpawnError, match=r"working directory .* does not exist"):
            await run_shell("true", cwd=tmp_path / "gone", env=ENV, on_output=None)
    assert len(sent) == 4, sent  # all through the helper (the missing cwd: direct, then bash)


async def test_cancelling_a_step_kills_its_group(
    helper: Spawner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    via_helper(monkeypatch)
    marker = tmp_path / "child.pid"
    with use_spawner(helper), trio.move_on_after(1.0):
        await run_shell(
            f"sleep 60 & echo $! > {marker}; wait", cwd=tmp_path, env=ENV, on_output=None
        )
    grandchild = int(marker.read_text())
    deadline = time.monotonic() + 10
    while _alive(grandchild):
        assert time.monotonic() < deadline, "the step's background sleep survived the cancel"
        await trio.sleep(0.02)


async def test_a_dead_helper_ends_its_steps_and_the_daemon_spawns_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    via_helper(monkeypatch)
    async with open_spawner() as sp:
        assert sp is not None
        with trio.fail_after(20):
            assert await sp.wait_ready()
        null = os.open(os.devnull, os.O_RDWR)
        child = await sp.spawn(
            ["sleep", "60"], executable=None, fds=(null, null, null), cwd=tmp_path, env=ENV
        )
        os.close(null)
        os.kill(sp._helper.pid, signal.SIGKILL)
        with trio.fail_after(10):
            code = await child.ended()
        assert code == -signal.SIGKILL  # killed: its exit could no longer be reported
        deadline = time.monotonic() + 10
        while _alive(child.pid):
            assert time.monotonic() < deadline, "the helper's orphan is still running"
            await trio.sleep(0.02)
        assert sp.gone is not None
        with pytest.raises(SpawnerGone) as gone:
            await sp.spawn(["true"], executable=None, fds=(0, 1, 2), cwd=tmp_path, env=ENV)
        assert not gone.value.sent
        with use_spawner(sp):  # later steps run all the same, spawned in-process
            assert await run_shell("exit 4", cwd=tmp_path, env=ENV, on_output=None) == 4


async def test_a_stuck_helper_fails_the_spawn_it_holds_and_is_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    via_helper(monkeypatch)
    monkeypatch.setattr(spawner, "ANSWER_TIMEOUT", 0.5)
    async with open_spawner() as sp:
        assert sp is not None
        with trio.fail_after(20):
            assert await sp.wait_ready()
        os.kill(sp._helper.pid, signal.SIGSTOP)
        with use_spawner(sp), pytest.raises(ProcessSpawnError, match="cannot tell whether"):
            await run_shell("true", cwd=tmp_path, env=ENV, on_output=None)
        assert sp.gone is not None and "did not answer" in sp.gone
        with trio.fail_after(10):
            while sp._helper.poll() is None:  # noqa: ASYNC110 - poll (fail_after is the deadline)
                await trio.sleep(0.02)
        with use_spawner(sp):
            assert await run_shell("exit 5", cwd=tmp_path, env=ENV, on_output=None) == 5


def _alive(pid: int) -> bool:
    """Running (a zombie or a reaped pid is not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


async def test_a_step_too_big_for_the_helper_is_spawned_here_and_the_helper_stays(
    helper: Spawner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    via_helper(monkeypatch)
    # More than a socket buffer holds in one message (each variable under exec's 128 KiB).
    big = {**ENV, **{f"BIG{i}": "x" * 100_000 for i in range(6)}}
    with use_spawner(helper):
        assert await shell_output('echo "${#BIG5}"', tmp_path, big) == (0, [("stdout", "100000")])
        assert helper.gone is None
        child, _ = await run(helper, ["true"], tmp_path)  # and it still takes the next one
        assert child.returncode == 0


async def test_nothing_is_sent_before_the_helper_has_started(tmp_path: Path) -> None:
    async with open_spawner() as sp:
        assert sp is not None
        if not sp.ready:  # normally so: it takes the helper ~20 ms to start
            with pytest.raises(SpawnerGone) as early:
                await sp.spawn(["true"], executable=None, fds=(0, 1, 2), cwd=tmp_path, env=ENV)
            assert not early.value.sent
        with trio.fail_after(20):
            assert await sp.wait_ready()
        assert sp.gone is None  # an early spawn does not give the helper up


@pytest.mark.parametrize("through_helper", [True, False])
async def test_what_exec_refuses_fails_that_step_alone_as_a_spawn_error(
    helper: Spawner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, through_helper: bool
) -> None:
    """A NUL byte (in a command, a variable or the directory), a "=" in a variable's name or a
    lone surrogate is refused before any exec (``ValueError``): the step fails to start with a one-line reason,
    in-process as through the helper, and the helper stays for the other steps."""
    if through_helper:
        via_helper(monkeypatch)
    with use_spawner(helper):
        for command, env, cwd in [
            ("echo a\0b", ENV, tmp_path),
            ("true", {**ENV, "BAD": "a\0b"}, tmp_path),
            ("true", {**ENV, "A=B": "c"}, tmp_path),
            ("true", ENV, tmp_path / "a\0b"),
            ("echo \ud800", ENV, tmp_path),  # a lone surrogate: not encodable (UnicodeEncodeError)
        ]:
            with pytest.raises(ProcessSpawnError, match=r"^cannot start shell step: "):
                await run_shell(command, cwd=cwd, env=env, on_output=None)
        assert await run_shell("exit 4", cwd=tmp_path, env=ENV, on_output=None) == 4
    assert helper.gone is None


async def test_a_spawned_program_holds_only_its_three_descriptors(
    helper: Spawner, tmp_path: Path
) -> None:
    """The descriptors the helper receives for a child are dup2'd onto 0-2 and nothing else:
    a copy left open in the child (the pipes' write ends) would keep a step's output open
    after it handed fds 1 and 2 to a detached process."""
    _, out = await run(helper, ["sh", "-c", "exec ls /proc/self/fd"], tmp_path)
    assert set(out.split()) <= {"0", "1", "2", "3"}, out  # 3: ls's own listing of the dir


async def test_a_spawn_lost_with_its_helper_leaves_no_descriptor_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A step whose spawn the helper took with it fails ("cannot tell whether"), and the pipes
    made for its output are closed like those of any step that could not start."""
    via_helper(monkeypatch)
    monkeypatch.setattr(spawner, "ANSWER_TIMEOUT", 0.5)
    async with open_spawner() as sp:
        assert sp is not None
        with trio.fail_after(20):
            assert await sp.wait_ready()
        os.kill(sp._helper.pid, signal.SIGSTOP)
        before = _pipes()
        with use_spawner(sp), pytest.raises(ProcessSpawnError, match="cannot tell whether"):
            await run_shell("echo hi", cwd=tmp_path, env=ENV, on_output=lambda _s, _l: None)
        assert _pipes() == before


def _pipes() -> set[str]:
    """This process's open pipe descriptors (as fd → pipe inode)."""
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the listing's own descriptor, closed by now
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target.startswith("pipe:"):
                found.add(f"{fd} {target}")
    return found


async def test_a_step_cancelled_before_its_worker_thread_spawns_leaves_no_descriptor_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A busy machine sends spawns to a worker thread; a step cancelled before the thread took
    its spawn has no process, and the pipes made for its output are closed."""
    monkeypatch.setattr(process, "_starting", 1)  # never idle
    monkeypatch.setattr(process, "SPAWNS", SpawnPolicy(average=1.0, next_probe=float("inf")))
    before = _pipes()
    with trio.CancelScope() as scope:
        scope.cancel()
        await run_shell("echo hi", cwd=tmp_path, env=ENV, on_output=lambda _s, _l: None)
    assert scope.cancelled_caught
    assert _pipes() == before
