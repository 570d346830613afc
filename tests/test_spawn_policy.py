"""Where a step is spawned (oj_trio.adapters.spawn_policy): pure decisions from measured spawn
durations, plus the adapter feeding it from real spawns."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from oj_trio.adapters import process
from oj_trio.adapters.spawn_policy import SpawnPolicy

QUICK = 0.0002
SLOW = 0.003


def test_quick_spawns_stay_inline() -> None:
    policy = SpawnPolicy()
    for i in range(100):
        assert policy.inline(float(i), idle=False)
        policy.record(QUICK)


def test_slow_spawns_move_to_threads_with_a_probe_now_and_then() -> None:
    policy = SpawnPolicy(probe_every=0.1)
    now = 0.0
    while policy.average <= policy.limit:
        assert policy.inline(now, idle=False)
        policy.record(SLOW)
    # Over the limit: threads, except one inline probe per probe_every.
    decisions = []
    for _ in range(100):
        now += 0.01  # a spawn every 10 ms for one second
        decisions.append(policy.inline(now, idle=False))
    assert 8 <= sum(decisions) <= 11


def test_probes_bring_inline_back_once_spawns_are_quick_again() -> None:
    policy = SpawnPolicy(probe_every=0.1)
    for _ in range(20):
        policy.record(SLOW)
    now, inline_streak = 0.0, 0
    for _ in range(1000):
        now += 0.01
        if policy.inline(now, idle=False):
            policy.record(QUICK)  # the machine has calmed down
            inline_streak += 1
        else:
            inline_streak = 0
    assert inline_streak > 100  # back to inline for good


def test_an_idle_daemon_spawns_inline_whatever_the_average() -> None:
    policy = SpawnPolicy()
    for _ in range(20):
        policy.record(SLOW)
    assert policy.inline(0.0, idle=True)
    assert policy.inline(0.0, idle=True)


@given(st.lists(st.floats(min_value=0, max_value=1), min_size=1, max_size=50))
def test_the_average_stays_within_what_was_measured(durations: list[float]) -> None:
    policy = SpawnPolicy()
    for d in durations:
        policy.record(d)
    assert 0 <= policy.average <= max(durations) + 1e-12


async def test_inline_spawns_of_the_adapter_feed_the_policy(tmp_path: Path) -> None:
    before = process.SPAWNS.average
    process.SPAWNS.average = 1.0  # as if the machine were swamped ...
    process.SPAWNS.next_probe = 0.0  # ... and a probe were due
    try:
        code = await process.run_shell(
            "exit 3", cwd=tmp_path, env={"PATH": "/usr/bin:/bin"}, on_output=None
        )
        assert code == 3
        # The probe ran inline and its (sub-second) duration pulled the average down.
        assert process.SPAWNS.average < 1.0
    finally:
        process.SPAWNS.average = before
