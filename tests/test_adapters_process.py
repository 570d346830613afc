"""Shell steps in their own process group: real processes, real clock, no fixed sleeps.

Liveness checks treat zombies as dead: in some containers PID 1 never reaps re-parented orphans, so
a killed grandchild can linger as ``Z`` forever without running or holding anything.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trio

from oj_trio.adapters import process as process_module
from oj_trio.adapters.process import (
    ProcessInfo,
    ProcessSpawnError,
    find_step_processes,
    kill_process_group,
    process_start_ticks,
    reference_exit_code,
    run_shell,
    terminate_orphans,
)
from oj_trio.errors import OjError

DEADLINE = 10.0


def alive(pid: int) -> bool:
    """Running (not gone, not a zombie)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return False
    return data[data.rindex(b")") + 2 :].split()[0] != b"Z"


async def wait_until(pred: Callable[[], bool], within: float = DEADLINE) -> None:
    """Poll ``pred`` until true; fail the test if ``within`` seconds pass first. (Polling, because
    the conditions are other processes' states, which nothing in trio can wait on.)"""
    with trio.move_on_after(within):
        while not pred():  # noqa: ASYNC110
            await trio.sleep(0.01)
        return
    pytest.fail(f"condition not met within {within}s")


def env(**extra: str) -> dict[str, str]:
    return {**os.environ, **extra}


class Collector:
    """An ``on_output`` that keeps lines per stream."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def __call__(self, stream: str, line: str) -> None:
        self.lines.append((stream, line))

    def of(self, stream: str) -> list[str]:
        return [line for s, line in self.lines if s == stream]


def detach(
    argv: list[str], environ: dict[str, str], *, stdout: int | None = None
) -> subprocess.Popen[bytes]:
    """A process in its own session, like a step left behind by a crashed daemon. Blocking spawn
    on purpose: it stands for something outside the daemon."""
    return subprocess.Popen(argv, start_new_session=True, env=environ, stdout=stdout)


@pytest.fixture
def popens() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Detached helper processes, killed and reaped whatever the test outcome."""
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for p in procs:
        with contextlib.suppress(OSError):
            os.killpg(p.pid, signal.SIGKILL)
        p.wait()


async def run_until_output(command: str, n_lines: int, **kwargs: object) -> tuple[Collector, bool]:
    """Start ``command``, cancel it once it printed ``n_lines`` stdout lines; report whether
    ``run_shell`` raised a bare ``trio.Cancelled``."""
    out = Collector()
    bare_cancelled = False

    async with trio.open_nursery() as nursery:
        scope = trio.CancelScope()

        async def runner() -> None:
            nonlocal bare_cancelled
            with scope:
                try:
                    await run_shell(command, cwd=Path("/"), env=env(), on_output=out, **kwargs)  # type: ignore[arg-type]
                except trio.Cancelled:
                    bare_cancelled = True
                    raise

        nursery.start_soon(runner)
        await wait_until(lambda: len(out.of("stdout")) >= n_lines)
        scope.cancel()
    return out, bare_cancelled


# ----------------------------------------------------------------------------------- exit codes


@pytest.mark.parametrize("code", [0, 1, 7])
async def test_exit_codes(code: int) -> None:
    assert await run_shell(f"exit {code}", cwd=Path("/"), env=env(), on_output=None) == code


async def test_killed_by_signal_is_negative_signal_number() -> None:
    code = await run_shell("kill -KILL $$", cwd=Path("/"), env=env(), on_output=None)
    assert code == -signal.SIGKILL
    assert reference_exit_code(code) == -1
    assert reference_exit_code(3) == 3


async def test_pipefail_prefix_applies() -> None:
    assert await run_shell("false | true", cwd=Path("/"), env=env(), on_output=None) == 1
    no_prefix = await run_shell(
        "false | true", cwd=Path("/"), env=env(), on_output=None, shell_prefix=""
    )
    assert no_prefix == 0


# --------------------------------------------------------------------------------------- output


async def test_output_lines_in_order_per_stream() -> None:
    out = Collector()
    code = await run_shell(
        "for i in $(seq 1 300); do echo out$i; echo err$i >&2; done; printf 'no newline'",
        cwd=Path("/"),
        env=env(),
        on_output=out,
    )
    assert code == 0
    assert out.of("stdout") == [f"out{i}" for i in range(1, 301)] + ["no newline"]
    assert out.of("stderr") == [f"err{i}" for i in range(1, 301)]


async def test_long_line_is_split_not_buffered_forever() -> None:
    out = Collector()
    await run_shell(
        "head -c 200000 /dev/zero | tr '\\0' x", cwd=Path("/"), env=env(), on_output=out
    )
    assert "".join(out.of("stdout")) == "x" * 200000
    assert all(len(line) <= 64 * 1024 for line in out.of("stdout"))


async def test_output_fd_receives_raw_output(tmp_path: Path) -> None:
    log = tmp_path / "step.log"
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        code = await run_shell(
            "echo hello; echo oops >&2", cwd=Path("/"), env=env(), on_output=None, output_fd=fd
        )
    finally:
        os.close(fd)
    assert code == 0
    assert sorted(log.read_text().splitlines()) == ["hello", "oops"]


async def test_output_fd_and_callback_are_exclusive() -> None:
    with pytest.raises(ValueError):
        await run_shell("true", cwd=Path("/"), env=env(), on_output=Collector(), output_fd=1)


async def test_env_cwd_and_stdin(tmp_path: Path) -> None:
    out = Collector()
    code = await run_shell(
        'echo "$OJ_TEST_VALUE"; pwd; cat; echo "stdin done"',
        cwd=tmp_path,
        env={"PATH": os.environ["PATH"], "OJ_TEST_VALUE": "a b $c"},
        on_output=out,
    )
    assert code == 0
    assert out.of("stdout") == ["a b $c", str(tmp_path.resolve()), "stdin done"]


# -------------------------------------------------------------------------------- spawn failures


async def test_missing_cwd_is_a_readable_spawn_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(ProcessSpawnError) as info:
        await run_shell("true", cwd=missing, env=env(), on_output=None)
    assert isinstance(info.value, OjError)
    assert str(info.value) == f"cannot start shell step: working directory {missing} does not exist"


async def test_cwd_that_is_a_file(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("")
    with pytest.raises(ProcessSpawnError, match="is not a directory"):
        await run_shell("true", cwd=f, env=env(), on_output=None)


async def test_missing_bash_is_a_readable_spawn_error(tmp_path: Path) -> None:
    with pytest.raises(ProcessSpawnError, match="bash not found on PATH"):
        await run_shell("true", cwd=tmp_path, env={"PATH": str(tmp_path)}, on_output=None)


# ------------------------------------------------------------------------------------- on_spawn


async def test_on_spawn_gets_pid_pgid_and_start_ticks() -> None:
    infos: list[ProcessInfo] = []
    seen: dict[str, object] = {}

    async def on_spawn(info: ProcessInfo) -> None:
        infos.append(info)
        seen["pgid"] = os.getpgid(info.pid)
        seen["sid"] = os.getsid(info.pid)
        seen["ticks"] = process_start_ticks(info.pid)

    out = Collector()
    code = await run_shell("echo $$", cwd=Path("/"), env=env(), on_output=out, on_spawn=on_spawn)
    assert code == 0
    (info,) = infos
    assert out.of("stdout") == [str(info.pid)]
    assert info.pgid == info.pid == seen["pgid"] == seen["sid"]
    assert info.start_ticks is not None and info.start_ticks == seen["ticks"]
    assert info.pgid != os.getpgrp()


async def test_on_spawn_failure_kills_the_step_and_propagates() -> None:
    infos: list[ProcessInfo] = []

    async def on_spawn(info: ProcessInfo) -> None:
        infos.append(info)
        raise RuntimeError("WAL unavailable")

    with pytest.raises(RuntimeError, match="WAL unavailable"):
        await run_shell("sleep 300", cwd=Path("/"), env=env(), on_output=None, on_spawn=on_spawn)
    assert not alive(infos[0].pid)


async def test_on_running_is_awaited_only_for_a_shell_still_running() -> None:
    calls: list[tuple[str, ProcessInfo]] = []

    async def on_spawn(info: ProcessInfo) -> None:
        calls.append(("spawn", info))

    async def on_running(info: ProcessInfo) -> None:
        assert alive(info.pid)
        calls.append(("running", info))

    def on_ended(info: ProcessInfo) -> None:
        assert not alive(info.pid)
        calls.append(("ended", info))

    async def run(command: str) -> int:
        return await run_shell(
            command,
            cwd=Path("/"),
            env=env(),
            on_output=None,
            on_spawn=on_spawn,
            on_running=on_running,
            running_after=0.05,
            on_ended=on_ended,
        )

    assert await run("exit 3") == 3
    assert [kind for kind, _ in calls] == ["spawn", "ended"]
    assert calls[0][1] == calls[1][1]
    calls.clear()
    assert await run("sleep 0.3") == 0
    assert [kind for kind, _ in calls] == ["spawn", "running", "ended"]
    assert calls[0][1] == calls[1][1] == calls[2][1]


async def test_on_ended_has_the_start_ticks_of_a_short_step_and_of_a_killed_one() -> None:
    """The start time is read before the reap, also when nothing asked for it earlier."""
    ended: list[ProcessInfo] = []
    code = await run_shell("true", cwd=Path("/"), env=env(), on_output=None, on_ended=ended.append)
    assert code == 0
    with trio.move_on_after(0.2):
        await run_shell(
            "sleep 300", cwd=Path("/"), env=env(), on_output=None, on_ended=ended.append
        )
    assert len(ended) == 2
    for info in ended:
        assert info.pgid == info.pid and isinstance(info.start_ticks, int)
        assert not alive(info.pid)


async def test_on_running_failure_kills_the_step_and_propagates() -> None:
    infos: list[ProcessInfo] = []

    async def on_running(info: ProcessInfo) -> None:
        infos.append(info)
        raise RuntimeError("WAL unavailable")

    with pytest.raises(RuntimeError, match="WAL unavailable"):
        await run_shell(
            "sleep 300",
            cwd=Path("/"),
            env=env(),
            on_output=None,
            on_running=on_running,
            running_after=0.01,
        )
    assert not alive(infos[0].pid)


async def test_concurrent_steps_each_get_their_own_exit_and_group() -> None:
    """A lone step is spawned on the trio thread, concurrent ones from worker threads: both ways
    give each step its own session, its exit code and its output, and release its pidfd."""
    fds_before = len(os.listdir("/proc/self/fd"))
    results: dict[int, tuple[int, list[str], ProcessInfo]] = {}

    async def one(i: int) -> None:
        infos: list[ProcessInfo] = []

        async def on_spawn(info: ProcessInfo) -> None:
            infos.append(info)

        out = Collector()
        code = await run_shell(
            f"echo {i}; sleep 0.0{i % 5}; exit {i}",
            cwd=Path("/"),
            env=env(),
            on_output=out,
            on_spawn=on_spawn,
        )
        results[i] = (code, out.of("stdout"), infos[0])

    async with trio.open_nursery() as nursery:
        for i in range(12):
            nursery.start_soon(one, i)
    await one(12)  # alone again
    for i, (code, lines, info) in results.items():
        assert (code, lines) == (i, [str(i)])
        assert info.pgid == info.pid
    assert len({info.pid for _, _, info in results.values()}) == 13
    assert len(os.listdir("/proc/self/fd")) == fds_before
    # Nothing counts as still running (a leaked count would send every later spawn to a thread).
    assert process_module._Child.live == 0


def test_process_start_ticks() -> None:
    assert isinstance(process_start_ticks(os.getpid()), int)
    assert process_start_ticks(2**22 + 1) is None  # above Linux's maximum pid_max


# --------------------------------------------------------------------------------- cancellation


async def test_cancel_kills_grandchildren_and_raises_bare_cancelled() -> None:
    command = (
        "sleep 300 & echo $!\n"
        "sleep 300 & echo $!\n"
        "( sleep 300 & echo $!; wait ) &\n"  # a nested subshell, no setsid: same group
        "bash -c 'sleep 300 & echo $!; wait' &\n"
        "wait"
    )
    out, bare = await run_until_output(command, 4)
    assert bare
    pids = [int(p) for p in out.of("stdout")]
    await wait_until(lambda: not any(alive(p) for p in pids))


async def test_cancel_delivers_output_written_while_dying() -> None:
    out, _ = await run_until_output(
        "trap 'echo bye; exit 3' TERM\necho ready\nsleep 300 & wait", 1, grace=5.0
    )
    assert out.of("stdout") == ["ready", "bye"]


async def test_sigterm_ignoring_step_is_killed_after_grace() -> None:
    out, bare = await run_until_output(
        "trap '' TERM\necho $$\nsleep 300 & echo $!\nwait", 2, grace=0.3
    )
    assert bare
    pids = [int(p) for p in out.of("stdout")]
    await wait_until(lambda: not any(alive(p) for p in pids))


async def test_background_leftovers_are_terminated_when_the_shell_exits() -> None:
    out = Collector()
    code = await run_shell("sleep 300 & echo $!", cwd=Path("/"), env=env(), on_output=out)
    assert code == 0
    (pid,) = (int(p) for p in out.of("stdout"))
    await wait_until(lambda: not alive(pid))


# ------------------------------------------------------------------------------ recorded groups


def test_kill_process_group_refuses_recycled_pid(popens: list[subprocess.Popen[bytes]]) -> None:
    p = detach(["sleep", "300"], env())
    popens.append(p)
    ticks = process_start_ticks(p.pid)
    assert ticks is not None
    assert not kill_process_group(ProcessInfo(p.pid, p.pid, ticks + 1))
    assert not kill_process_group(ProcessInfo(p.pid, p.pid, None))
    assert alive(p.pid)
    assert kill_process_group(ProcessInfo(p.pid, p.pid, ticks), sig=signal.SIGKILL)
    assert p.wait() == -signal.SIGKILL


async def test_kill_process_group_with_dead_leader_needs_marker(
    popens: list[subprocess.Popen[bytes]],
) -> None:
    marker = {"OJ_PIPELINE_ID": f"test-{uuid.uuid4().hex}", "OJ_STEP": "build"}
    leader = detach(["bash", "-c", "sleep 300 & echo $!"], env(**marker), stdout=subprocess.PIPE)
    popens.append(leader)
    assert leader.stdout is not None
    child = int(leader.stdout.readline())
    leader.stdout.close()
    ticks = process_start_ticks(leader.pid)
    assert leader.wait() == 0  # leader reaped: its pid is gone, the group lives on in `child`
    info = ProcessInfo(leader.pid, leader.pid, ticks)
    assert alive(child)
    assert not kill_process_group(info)
    assert not kill_process_group(info, marker_env={**marker, "OJ_STEP": "other"})
    assert alive(child)
    assert kill_process_group(info, marker_env=marker)
    await wait_until(lambda: not alive(child))


# -------------------------------------------------------------------------------------- orphans


async def test_find_and_terminate_orphans(popens: list[subprocess.Popen[bytes]]) -> None:
    pipeline = f"test-{uuid.uuid4().hex}"
    mine = env(OJ_PIPELINE_ID=pipeline, OJ_STEP="build")
    other = env(OJ_PIPELINE_ID=pipeline, OJ_STEP="deploy")
    orphan = detach(["bash", "-c", "sleep 300 & wait"], mine)
    stubborn = detach(["bash", "-c", "trap '' TERM; sleep 300 & wait"], mine)
    bystander = detach(["sleep", "300"], other)
    popens.extend([orphan, stubborn, bystander])
    marker = {"OJ_PIPELINE_ID": pipeline, "OJ_STEP": "build"}
    # Two shells and their two sleeps (the env marker is inherited).
    await wait_until(lambda: len(find_step_processes(marker)) == 4)
    found = find_step_processes(marker)
    assert orphan.pid in found and stubborn.pid in found and bystander.pid not in found
    assert find_step_processes({"OJ_PIPELINE_ID": pipeline[:-1]}) == []
    assert find_step_processes({}) == []

    assert await terminate_orphans(pipeline, "build", grace=0.3) == 4
    assert not alive(orphan.pid) and not alive(stubborn.pid)
    assert find_step_processes(marker) == []
    assert alive(bystander.pid)
    assert await terminate_orphans(pipeline, "build", grace=0.3) == 0


# ---------------------------------------------------------------------------------- descriptors


async def test_no_descriptor_leak(tmp_path: Path) -> None:
    """Pipes are the adapter's own; every path (exit, cancel, spawn failure, callback error) must
    close them, or a long-running daemon runs out of descriptors."""

    def count() -> int:
        return len(os.listdir("/proc/self/fd"))

    await run_shell("echo warm", cwd=Path("/"), env=env(), on_output=Collector())
    before = count()
    for _ in range(5):
        await run_shell("echo x; echo y >&2", cwd=Path("/"), env=env(), on_output=Collector())
        with pytest.raises(ProcessSpawnError):
            await run_shell("true", cwd=tmp_path / "missing", env=env(), on_output=Collector())
        await run_until_output("echo go; sleep 300", 1, grace=1.0)

        def boom(stream: str, line: str) -> None:
            raise ValueError("bad consumer")

        with pytest.raises(ValueError, match="bad consumer"):
            await run_shell("echo x; sleep 300", cwd=Path("/"), env=env(), on_output=boom)
    assert count() == before


# ------------------------------------------------------------ output read after the exit (lazy)


@pytest.fixture(params=[0.0, 5.0], ids=["readers-at-once", "readers-late"])
def pump_delay(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> float:
    """Run a test with reader tasks started at once, and with a delay longer than the step
    (its output is then read from the pipes after the exit, or once the delay is over)."""
    delay = float(request.param)
    monkeypatch.setattr(process_module, "PUMP_DELAY", delay)
    return delay


async def test_output_is_complete_whenever_the_readers_start(pump_delay: float) -> None:
    out = Collector()
    code = await run_shell(
        "for i in $(seq 1 50); do echo out$i; echo err$i >&2; done; printf 'tail'",
        cwd=Path("/"),
        env=env(),
        on_output=out,
    )
    assert code == 0
    assert out.of("stdout") == [f"out{i}" for i in range(1, 51)] + ["tail"]
    assert out.of("stderr") == [f"err{i}" for i in range(1, 51)]


async def test_output_beyond_a_pipe_buffer_never_deadlocks(
    pump_delay: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A child filling its pipe blocks until a reader comes: after PUMP_DELAY at the latest.
    monkeypatch.setattr(process_module, "PUMP_DELAY", min(pump_delay, 0.3))
    out = Collector()
    await run_shell(
        "head -c 300000 /dev/zero | tr '\\0' y", cwd=Path("/"), env=env(), on_output=out
    )
    assert "".join(out.of("stdout")) == "y" * 300000


async def test_output_of_an_escaped_process_is_drained_after_a_short_step(
    pump_delay: float,
) -> None:
    """A process that left the group (setsid) keeps the pipe open after the shell is gone:
    what the pipe already holds is read at once, the rest by a reader bounded by the drain."""
    out = Collector()
    code = await run_shell(
        # The shell waits until the child has left its session: a group kill before that would
        # take the child with it.
        "echo first; setsid sh -c 'sleep 0.2; echo late' & "
        "while [ \"$(cut -d' ' -f6 /proc/$!/stat)\" = \"$(cut -d' ' -f6 /proc/$$/stat)\" ]; "
        "do sleep 0.01; done; echo second",
        cwd=Path("/"),
        env=env(),
        on_output=out,
        drain_timeout=5.0,
    )
    assert code == 0
    assert out.of("stdout") == ["first", "second", "late"]


async def test_a_failing_consumer_of_a_short_step_raises_and_leaks_nothing(
    pump_delay: float,
) -> None:
    def boom(stream: str, line: str) -> None:
        raise ValueError("bad consumer")

    before = len(os.listdir("/proc/self/fd"))
    with pytest.raises(ValueError, match="bad consumer"):
        await run_shell("echo x", cwd=Path("/"), env=env(), on_output=boom)
    assert len(os.listdir("/proc/self/fd")) == before
