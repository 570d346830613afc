"""The shell runner's durable record of a spawn (``shell:spawned``), through the real store,
supervisor, driver and ``run_shell`` on the real clock.

A step still running after ``SPAWN_RECORD_DELAY`` has its record committed on its own (it is in
the state while the step runs, which is what a restart after a crash needs); a step that ends or is
cancelled sooner gets none (nothing would ever read it: the record is cleared by the exit, and
leftovers are found by their environment marker).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

from oj_trio import events as ev
from oj_trio import wal
from oj_trio.adapters.process import PIPELINE_ID_ENV, find_step_processes
from oj_trio.clock import Clock
from oj_trio.nursery_runtime import Supervisor
from oj_trio.pipeline_setup import prepare_pipeline
from oj_trio.runbook import load_runbook_text
from oj_trio.runtime import step_runners
from oj_trio.runtime.pipeline_start import start_pipelines
from oj_trio.state import Pipeline
from oj_trio.store import Store

RUNBOOK = """
pipeline "chain" {
  step "quick" {
    run     = "true"
    on_done = { step = "slow" }
  }
  step "slow" {
    run     = "sleep 0.3"
    on_done = { step = "failing" }
  }
  step "failing" { run = "exit 3" }
}
pipeline "nap" {
  step "nap" { run = "sleep 300" }
}
"""


@asynccontextmanager
async def runtime(tmp_path: Path) -> AsyncIterator[tuple[Store, Supervisor]]:
    state = tmp_path / "state"
    store, _ = Store.open(state)
    async with trio.open_nursery() as nursery:
        await nursery.start(store.run)
        supervisor = Supervisor(store, state, env=dict(os.environ), clock=Clock.system())
        await nursery.start(supervisor.run)
        try:
            yield store, supervisor
        finally:
            await supervisor.drain(1)
            await store.aclose()
            nursery.cancel_scope.cancel()


async def start(supervisor: Supervisor, project: Path, kind: str) -> str:
    ctx = supervisor.ctx
    loaded = load_runbook_text(RUNBOOK, str(project / "test.hcl"), check_shell=False)
    assert loaded.runbook is not None, loaded.errors
    runbook = loaded.runbook
    events = ctx.runbooks.load_events(runbook)
    events += await prepare_pipeline(
        runbook,
        kind,
        pipeline_id=f"{kind}-0001",
        namespace="test",
        vars={"invoke.dir": str(project)},
        fallback_name=kind,
        invoke_dir=str(project),
        workspaces_dir=ctx.workspaces_dir,
        env=ctx.env,
        runbook_hash=ctx.runbooks.digest(runbook),
        at_ms=ctx.clock.now_ms(),
    )
    await start_pipelines(ctx, supervisor, events)
    return f"{kind}-0001"


async def wait_until_ended(store: Store, pipeline_id: str) -> Pipeline:
    with trio.fail_after(20):
        while not store.state.pipelines[pipeline_id].terminal:
            await store.wait_for_change(store.last_seq)
    return store.state.pipelines[pipeline_id]


def step_events(tmp_path: Path, pipeline_id: str) -> list[ev.EventBase]:
    """The WAL's shell and step events of one pipeline, in seq order."""
    kinds = (ev.ShellSpawned, ev.ShellExited, ev.StepStarted, ev.StepFailed)
    return [
        e
        for _, e in wal.read_wal(wal.wal_path(tmp_path / "state"))
        if isinstance(e, kinds) and e.pipeline_id == pipeline_id
    ]


async def test_a_running_step_is_recorded_and_a_short_one_is_not(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    async with runtime(tmp_path) as (store, supervisor):
        pipeline_id = await start(supervisor, project, "chain")
        # The slow step outlives the delay: its record is durable (in the state) while it runs.
        with trio.fail_after(20):
            while (p := store.state.pipelines[pipeline_id]).shell is None or p.step != "slow":
                await store.wait_for_change(store.last_seq)
        assert p.shell is not None and p.shell.step == "slow"
        p = await wait_until_ended(store, pipeline_id)
        assert (p.step, p.error) == ("failed", "shell exited with code 3")
        assert p.shell is None
        events = step_events(tmp_path, pipeline_id)  # before the final snapshot compacts the WAL
    for step in ("quick", "slow", "failing"):
        mine = [type(e).__name__ for e in events if e.step == step]
        spawned = ["ShellSpawned"] if step == "slow" else []
        assert mine == ["StepStarted", *spawned, "ShellExited"] + (
            ["StepFailed"] if step == "failing" else []
        ), (step, mine)


async def test_a_step_cancelled_before_its_record_is_killed_all_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(step_runners, "SPAWN_RECORD_DELAY", 600.0)
    project = tmp_path / "project"
    project.mkdir()
    async with runtime(tmp_path) as (store, supervisor):
        pipeline_id = await start(supervisor, project, "nap")
        with trio.fail_after(20):
            while not find_step_processes({PIPELINE_ID_ENV: pipeline_id}):  # noqa: ASYNC110
                await trio.sleep(0.01)
        assert store.state.pipelines[pipeline_id].shell is None  # not recorded yet
        await supervisor.cancel(pipeline_id)
        p = await wait_until_ended(store, pipeline_id)
        assert p.step == "cancelled"
        events = [type(e).__name__ for e in step_events(tmp_path, pipeline_id)]
    assert events == ["StepStarted", "StepFailed"]
    assert not find_step_processes({PIPELINE_ID_ENV: pipeline_id})
