"""`oj daemon stop --kill` ends the tmux sessions the state knows (in-process, fake tmux)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import trio

from oj_trio import events as ev
from oj_trio.nursery_runtime import Runtime
from oj_trio.store import Store


def _fake_tmux(bin_dir: Path, record: Path) -> None:
    script = bin_dir / "tmux"
    script.write_text(f'#!/bin/sh\necho "$@" >> {record}\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)


async def test_drain_with_kill_ends_every_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "tmux.log"
    _fake_tmux(bin_dir, record)
    # trio.run_process resolves tmux on the daemon's own PATH
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    store, _ = Store.open(tmp_path / "state")
    async with trio.open_nursery() as nursery:
        await nursery.start(store.run)
        await store.commit(
            ev.SessionCreated(id="oj-a-1", pipeline_id="p1"),
            ev.SessionCreated(id="oj-b-2", pipeline_id="p2"),
        )
        runtime = Runtime(store, tmp_path / "state")
        await runtime.drain(0.1, kill_sessions=True)
        assert store.state.sessions == {}
        await store.aclose()
        nursery.cancel_scope.cancel()
    sock = tmp_path / "state" / "tmux.sock"
    conf = tmp_path / "state" / "tmux.conf"
    # The daemon's private server, never the user's default one.
    assert sorted(record.read_text().splitlines()) == [
        f"-S {sock} -f {conf} kill-session -t =oj-a-1",
        f"-S {sock} -f {conf} kill-session -t =oj-b-2",
    ]
