"""Process groups after the fact: find, test and kill what a shell step left running.

Split from :mod:`oj_trio.adapters.process` (which starts steps and waits for them): this half
reads ``/proc`` to decide whether a recorded group is still ours — ``start_ticks`` (field 22 of
``/proc/<pid>/stat``) tells a live leader from a recycled pid, and the environment marker every
step carries (``OJ_PIPELINE_ID``, ``OJ_STEP``) finds a group whose leader is gone — and signals
it. Processes in state ``Z`` count as gone: where PID 1 does not reap re-parented orphans, their
zombies keep a group id alive forever but can neither run nor hold file descriptors.

Linux only. Blocking ``/proc`` reads are small (one ``stat`` file) except the full scans, which
only the rare paths (leftover group members, orphan reconciliation after a crash) do.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from collections.abc import Mapping

import attrs
import trio

log = logging.getLogger("oj.process")

#: Environment keys the runtime puts into every shell step; orphan discovery matches on them.
PIPELINE_ID_ENV = "OJ_PIPELINE_ID"
STEP_ENV = "OJ_STEP"

#: After SIGKILL, how long to wait for the kernel to finish the group before giving up (a process
#: stuck in uninterruptible sleep cannot die sooner; the step is reported finished anyway).
_KILL_WAIT = 5.0


@attrs.frozen
class ProcessInfo:
    """What the runtime records durably about a running shell step, to find it again after a crash.

    ``pgid`` equals ``pid`` for steps started here (session leader); it is kept separately so a
    recorded group can be signalled even when its leader is gone. ``start_ticks`` is ``None`` only
    if ``/proc`` could not be read, in which case PID-reuse protection falls back to the
    environment marker.
    """

    pid: int
    pgid: int
    start_ticks: int | None


# --------------------------------------------------------------------------------------------------
# /proc helpers


def _read_stat(pid: int) -> tuple[str, int, int] | None:
    """``(state, pgrp, starttime)`` of ``pid`` from ``/proc/<pid>/stat``, or ``None`` if it is gone.

    The command name (field 2) may contain spaces and parentheses, so parsing starts after the last
    ``)``. Uses raw ``os`` calls: this runs once per spawned step and must stay cheap.
    """
    try:
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY)
    except OSError:
        return None
    try:
        data = os.read(fd, 4096)
    except OSError:
        return None
    finally:
        os.close(fd)
    try:
        rest = data[data.rindex(b")") + 2 :].split()
        return rest[0].decode("ascii"), int(rest[2]), int(rest[19])
    except (ValueError, IndexError):
        return None


def process_start_ticks(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot (``/proc/<pid>/stat`` field 22), or ``None``.

    Two processes that ever had the same pid have different start ticks, which is what makes a
    recorded ``(pid, start_ticks)`` pair safe to signal after a daemon restart. Zombies still have
    their start time; a reaped pid has none.
    """
    stat = _read_stat(pid)
    return None if stat is None else stat[2]


def _is_live(pid: int, start_ticks: int | None = None) -> bool:
    """``pid`` exists, is not a zombie, and (if given) still has ``start_ticks``."""
    stat = _read_stat(pid)
    if stat is None or stat[0] == "Z":
        return False
    return start_ticks is None or stat[2] == start_ticks


def _proc_pids() -> list[int]:
    """All pids currently listed in ``/proc``."""
    pids = []
    with os.scandir("/proc") as it:
        for entry in it:
            if entry.name.isdigit():
                pids.append(int(entry.name))
    return pids


def _live_group_members(pgid: int) -> list[int]:
    """Non-zombie processes whose process group is ``pgid`` (a full ``/proc`` scan)."""
    members = []
    for pid in _proc_pids():
        stat = _read_stat(pid)
        if stat is not None and stat[1] == pgid and stat[0] != "Z":
            members.append(pid)
    return members


def _has_env(pid: int, needles: frozenset[bytes]) -> bool:
    """Whether ``/proc/<pid>/environ`` contains every ``KEY=value`` entry in ``needles`` exactly."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            entries = f.read().split(b"\0")
    except OSError:
        return False
    return needles.issubset(entries)


def _env_needles(marker_env: Mapping[str, str]) -> frozenset[bytes]:
    return frozenset(f"{k}={v}".encode() for k, v in marker_env.items())


def _safe_pgid(pgid: int) -> bool:
    """Refuse the groups that would take down init, everything, or the daemon itself."""
    return pgid > 1 and pgid != os.getpgrp()


def _killpg(pgid: int, sig: int) -> bool:
    """Signal a group; ``False`` if it no longer exists or is not ours to signal."""
    if not _safe_pgid(pgid):
        return False
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _group_alive(pgid: int) -> bool:
    """Whether any non-zombie process is left in ``pgid``.

    ``killpg(pgid, 0)`` answers "nothing at all" in one syscall (the common case); only when
    something is there — possibly just unreaped zombies — does it fall back to scanning ``/proc``.
    """
    if not _safe_pgid(pgid):
        return False
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        # The id now names a group we do not own: ours is gone.
        return False
    return bool(_live_group_members(pgid))


async def _wait_group_gone(pgid: int) -> None:
    """Poll (with backoff) until the group has no live member; bound it with a cancel scope."""
    delay = 0.002
    while _group_alive(pgid):
        await trio.sleep(delay)
        delay = min(delay * 2, 0.1)


# --------------------------------------------------------------------------------------------------
# Running a shell step


# --------------------------------------------------------------------------------------------------
# After a crash: recorded groups and orphans


def kill_process_group(
    info: ProcessInfo,
    *,
    sig: int = signal.SIGTERM,
    marker_env: Mapping[str, str] | None = None,
) -> bool:
    """Signal a recorded step's process group if it is provably still ours; return whether we did.

    * Leader alive with the recorded ``start_ticks`` → signal the group.
    * Leader pid alive with other start ticks → the pid was recycled; the kernel never reuses a pid
      while a group of that id exists, so our group is gone → refuse.
    * Leader gone → the group may live on in re-parented members; signal it only if one of them
      still carries every entry of ``marker_env`` (the step's ``OJ_PIPELINE_ID``/``OJ_STEP``).
    """
    if not _safe_pgid(info.pgid):
        return False
    stat = _read_stat(info.pid)
    if stat is not None:
        if info.start_ticks is None or stat[2] != info.start_ticks:
            log.info("not signalling pid %d: start time differs (pid recycled)", info.pid)
            return False
        return _killpg(info.pgid, sig)
    if not marker_env:
        return False
    needles = _env_needles(marker_env)
    if any(_has_env(pid, needles) for pid in _live_group_members(info.pgid)):
        return _killpg(info.pgid, sig)
    return False


def find_step_processes(marker_env: Mapping[str, str]) -> list[int]:
    """Pids of our own (same uid), non-zombie processes whose environment holds every entry of
    ``marker_env`` exactly (``KEY=value``), excluding this process. Empty marker → empty list.

    Used by reconciliation: a step's shell and everything it started inherit the marker, even
    processes that left the group with ``setsid``.
    """
    if not marker_env:
        return []
    needles = _env_needles(marker_env)
    uid = os.getuid()
    me = os.getpid()
    found = []
    for pid in _proc_pids():
        if pid == me:
            continue
        try:
            if os.stat(f"/proc/{pid}").st_uid != uid:
                continue
        except OSError:
            continue
        if _has_env(pid, needles) and _is_live(pid):
            found.append(pid)
    return found


async def terminate_orphans(pipeline_id: str, step: str, *, grace: float = 10.0) -> int:
    """Kill whatever is left of a step whose exit was never recorded; return how many processes
    carried its marker.

    Each found process's group gets SIGTERM (+SIGCONT) — or the process alone if it shares the
    daemon's own group — then we poll until all of them are gone or ``grace`` passes, and SIGKILL
    the survivors. Every signal re-checks the process's start ticks first, so a pid recycled in the
    meantime is left alone.
    """
    marker = {PIPELINE_ID_ENV: pipeline_id, STEP_ENV: step}
    pids = await trio.to_thread.run_sync(find_step_processes, marker)
    targets: list[tuple[int, int, int]] = []
    for pid in pids:
        stat = _read_stat(pid)
        if stat is not None:
            targets.append((pid, stat[2], stat[1]))
    if not targets:
        return len(pids)

    def signal_all(sig: int) -> None:
        groups_done: set[int] = set()
        for pid, ticks, pgid in targets:
            if not _is_live(pid, ticks):
                continue
            if _safe_pgid(pgid):
                if pgid not in groups_done:
                    groups_done.add(pgid)
                    _killpg(pgid, sig)
            else:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, sig)

    def survivors() -> bool:
        return any(_is_live(pid, ticks) for pid, ticks, _ in targets)

    async def wait_all_gone() -> None:
        delay = 0.002
        while survivors():
            await trio.sleep(delay)
            delay = min(delay * 2, 0.1)

    signal_all(signal.SIGTERM)
    signal_all(signal.SIGCONT)
    with trio.move_on_after(grace):
        await wait_all_gone()
        return len(pids)
    signal_all(signal.SIGKILL)
    with trio.move_on_after(_KILL_WAIT):
        await wait_all_gone()
        return len(pids)
    log.warning(
        "orphans of %s/%s did not die within %.1fs of SIGKILL", pipeline_id, step, _KILL_WAIT
    )
    return len(pids)
