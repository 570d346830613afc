"""Desktop notifications with a fake ``notify-send`` on PATH, a failing one, a hanging one, none."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from oj_trio.adapters.notify import notify


def fake_notify_send(bin_dir: Path, body: str) -> None:
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / "notify-send"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)


async def test_notify_runs_notify_send_with_title_and_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = tmp_path / "argv"
    fake_notify_send(tmp_path / "bin", f'for a in "$@"; do printf "%s\\n" "$a"; done > {record}')
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    assert await notify("-build done", "pipeline auth: 'ok' $HOME")
    assert record.read_text().splitlines() == [
        "--app-name=oj",
        "--",
        "-build done",
        "pipeline auth: 'ok' $HOME",
    ]


async def test_notify_failure_is_logged_not_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    fake_notify_send(tmp_path / "bin", "echo 'no session bus' >&2; exit 1")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    with caplog.at_level(logging.DEBUG, logger="oj.notify"):
        assert not await notify("t", "m")
    assert "notify-send exited with 1: no session bus" in caplog.text


async def test_hanging_notify_send_is_killed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    fake_notify_send(tmp_path / "bin", "exec sleep 300")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    with caplog.at_level(logging.DEBUG, logger="oj.notify"):
        assert not await notify("t", "m", kill_after=0.2)
    assert "did not finish" in caplog.text


async def test_without_notify_send_only_logs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no notify-send
    with caplog.at_level(logging.DEBUG, logger="oj.notify"):
        assert not await notify("Pipeline needs attention: build", "idle")
    assert "Pipeline needs attention: build: idle" in caplog.text
