"""Black-box tests of ``oj runbook check``: the function and the real ``oj`` binary."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from oj_trio.runbook.check import check_command

REPO = Path(__file__).resolve().parent.parent

VALID = {
    "ok.hcl": 'command "hi" {\n  args = "<name>"\n  run = "echo \\"${args.name}\\""\n}\n',
    "ok.toml": '[pipeline.p]\n[[pipeline.p.step]]\nname = "a"\nrun = "true"\n',
    "ok.json": '{"queue": {"q": {"type": "persisted", "vars": ["x"]}}}',
}

BROKEN = {
    "bad.hcl": 'command "c" {\n  run = "echo \'oops"\n}\n',
    "bad.toml": '[worker.w]\nsource = { queue = "nope" }\nhandler = { pipeline = "p" }\n[pipeline.p]\n',
    "bad.json": '{"agent": {"a": {"run": "claude", "on_idle": "recover"}}}',
}

WARNS = {
    "warn.hcl": 'pipeline "p" {\n  step "a" { run = "true" }\n  step "b" { run = "true" }\n}\n',
}


def write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory


def run_check(root: Path, path: str | None, output: str = "text") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = check_command(root, path, output, out, err)
    return code, out.getvalue(), err.getvalue()


def test_valid_runbooks_in_all_formats(tmp_path: Path) -> None:
    write(tmp_path / ".oj" / "runbooks", VALID)
    code, out, err = run_check(tmp_path, None)
    assert (code, out, err) == (0, "3 runbook(s) checked, 0 error(s), 0 warning(s)\n", "")


def test_broken_runbooks_in_all_formats(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "rbs", {**BROKEN, **VALID, **WARNS})
    monkeypatch.chdir(tmp_path)
    code, out, _ = run_check(tmp_path, "rbs")
    assert code == 1
    lines = out.splitlines()
    assert lines[:3] == [
        "rbs/bad.hcl:2:3: command.c.run: invalid shell command: line 1: unexpected EOF while "
        "looking for matching `''",
        "rbs/bad.json:1:36: agent.a.on_idle: action 'recover' is not valid for on_idle: "
        "recover is for re-spawning after exit; agent is still running",
        "rbs/bad.toml:2:12: worker.w.source.queue: references unknown queue 'nope'; "
        "available queues: (none)",
    ]
    assert lines[3:] == [
        "warning: rbs/warn.hcl:2:3: pipeline.p.step[0](a): step 'a' has no on_done; it will "
        "complete the pipeline instead of advancing",
        "warning: rbs/warn.hcl:3:3: pipeline.p.step[1](b): step 'b' is unreachable (no "
        "transition leads to it)",
        "7 runbook(s) checked, 3 error(s), 2 warning(s)",
    ]


def test_json_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "rbs", {"bad.toml": BROKEN["bad.toml"], **WARNS})
    monkeypatch.chdir(tmp_path)
    code, out, _ = run_check(tmp_path, "rbs/", "json")
    assert code == 1
    report = json.loads(out)
    assert report["files"] == ["rbs/bad.toml", "rbs/warn.hcl"]
    assert report["errors"] == [
        {
            "file": "rbs/bad.toml",
            "entity": "worker.w.source.queue",
            "line": 2,
            "column": 12,
            "message": "references unknown queue 'nope'; available queues: (none)",
        }
    ]
    assert [w["entity"] for w in report["warnings"]] == [
        "pipeline.p.step[0](a)",
        "pipeline.p.step[1](b)",
    ]


def test_single_file_and_syntax_error(tmp_path: Path) -> None:
    file = write(tmp_path, {"x.toml": "[command.c\nrun = 1\n"}) / "x.toml"
    code, out, _ = run_check(tmp_path, str(file))
    assert code == 1
    assert out.splitlines() == [
        f"{file}:1:11: TOML parse error: Expected ']' at the end of a table declaration",
        "1 runbook(s) checked, 1 error(s), 0 warning(s)",
    ]


def test_missing_path(tmp_path: Path) -> None:
    code, out, err = run_check(tmp_path, str(tmp_path / "nope"))
    assert (code, out) == (1, "")
    assert err == f"Error: no such file or directory: {tmp_path / 'nope'}\n"


def test_no_runbook_dir(tmp_path: Path) -> None:
    assert run_check(tmp_path, None) == (0, "0 runbook(s) checked, 0 error(s), 0 warning(s)\n", "")


def test_repository_examples_pass() -> None:
    code, out, _ = run_check(REPO, str(REPO / "runbooks"))
    assert code == 0, out
    assert out.endswith(", 0 error(s), 0 warning(s)\n")
    assert int(out.split()[0]) >= 3


def test_future_examples_validate() -> None:
    """examples/ holds runbooks for features the daemon does not run yet (agents, queues,
    workers); they are kept valid so they are ready when it does."""
    code, out, _ = run_check(REPO, str(REPO / "examples"))
    assert code == 0, out
    assert out.endswith(", 0 error(s), 0 warning(s)\n")


# --- the real binary ----------------------------------------------------------------------


def _oj() -> str:
    sibling = Path(sys.executable).with_name("oj")
    found = str(sibling) if sibling.exists() else shutil.which("oj")
    if found is None:
        pytest.skip("no oj executable installed")
    help_text = subprocess.run([found, "--help"], capture_output=True, text=True).stdout
    if "runbook" not in help_text:
        pytest.skip("oj has no 'runbook' command yet")
    return found


def test_binary_valid_and_broken(tmp_path: Path) -> None:
    oj = _oj()
    project = tmp_path / "proj"
    write(project / ".oj" / "runbooks", VALID)
    done = subprocess.run(
        [oj, "runbook", "check"], cwd=project, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    assert "3 runbook(s) checked, 0 error(s)" in done.stdout
    write(project / ".oj" / "runbooks", BROKEN)
    done = subprocess.run(
        [oj, "-o", "json", "runbook", "check"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert sorted(e["file"] for e in report["errors"]) == [
        ".oj/runbooks/bad.hcl",
        ".oj/runbooks/bad.json",
        ".oj/runbooks/bad.toml",
    ]
    assert "Traceback" not in done.stderr


def test_binary_checks_repository_examples() -> None:
    oj = _oj()
    done = subprocess.run(
        [oj, "runbook", "check", "runbooks"], cwd=REPO, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert ", 0 error(s)" in done.stdout
