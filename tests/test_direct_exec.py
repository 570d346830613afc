"""A simple command runs without bash, exactly as bash would have exec'd it; anything else
still goes through bash (adapters/direct_exec.py)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from oj_trio.adapters.direct_exec import direct_command, simple_words
from oj_trio.adapters.process import DEFAULT_SHELL_PREFIX, run_shell

ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/root", "FOO": "bar"}


@pytest.mark.parametrize(
    ("command", "words"),
    [
        ("true", ["true"]),
        ("  false\t", ["false"]),
        ("make -j4 test", ["make", "-j4", "test"]),
        (
            "./scripts/build.sh --out=dist a,b x@y 50% +1",
            ["./scripts/build.sh", "--out=dist", "a,b", "x@y", "50%", "+1"],
        ),
        ("git fetch origin main:main", ["git", "fetch", "origin", "main:main"]),
        ("env", ["env"]),
        # builtins and keywords stay with bash (true/false only without operands)
        ("true --help", None),
        ("echo hi", None),
        ("cd /tmp", None),
        ("exit 3", None),
        ("test -f x", None),
        ("if", None),
        # shell syntax of any kind stays with bash
        ("echo $HOME", None),
        ("ls *.py", None),
        ("ls ~", None),
        ("a && b", None),
        ("a; b", None),
        ("a | b", None),
        ("a > f", None),
        ("a 'q'", None),
        ('a "q"', None),
        ("a `b`", None),
        ("a # c", None),
        ("a\nb", None),
        ("X=1 make", None),
        ("{a,b}", None),
        ("a\\ b", None),
        ("", None),
        ("   ", None),
    ],
)
def test_simple_words(command: str, words: list[str] | None) -> None:
    assert simple_words(command) == words


@given(st.text(alphabet="ab ;|&$'\"`<>()*?[]{}~#!\\\n=/.-", max_size=12))
def test_simple_words_only_accepts_plain_words(command: str) -> None:
    words = simple_words(command)
    if words is not None:
        assert words == command.split()
        assert not any(ch in command for ch in ";|&$'\"`<>()*?[]{}~#!\\\n")
        assert "=" not in words[0]


def test_direct_command_resolves_like_bash(tmp_path: Path) -> None:
    plan = direct_command("env -0", ENV, tmp_path)
    assert plan is not None
    assert plan.argv == ["env", "-0"]
    assert plan.executable == plan.env["_"] and os.path.basename(plan.executable) == "env"
    assert plan.env["PWD"] == str(tmp_path) and plan.env["SHLVL"] == "0"
    assert plan.env["FOO"] == "bar"
    script = tmp_path / "run.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o755)
    rel = direct_command("./run.sh x", ENV, tmp_path)
    assert (
        rel is not None
        and os.path.samefile(rel.executable, script)
        and rel.argv == ["./run.sh", "x"]
    )
    assert rel.env["_"] == "./run.sh"


@pytest.mark.parametrize(
    "env",
    [
        {**ENV, "BASH_ENV": "/etc/profile"},
        {**ENV, "SHELLOPTS": "xtrace"},
        {**ENV, "BASH_FUNC_env%%": "() { :; }"},
        {**ENV, "PATH": "bin:/usr/bin:/bin"},
        {**ENV, "PATH": "/nonexistent"},
    ],
)
def test_bash_keeps_what_it_could_treat_differently(env: dict[str, str], tmp_path: Path) -> None:
    assert direct_command("env", env, tmp_path) is None


def test_missing_or_unexecutable_programs_stay_with_bash(tmp_path: Path) -> None:
    assert direct_command("no-such-program-here", ENV, tmp_path) is None
    plain = tmp_path / "plain.sh"
    plain.write_text("exit 0\n")
    assert direct_command("./plain.sh", ENV, tmp_path) is None


async def _run(command: str, cwd: Path, env: dict[str, str]) -> tuple[int, list[str]]:
    lines: list[str] = []
    code = await run_shell(command, cwd=cwd, env=env, on_output=lambda _s, line: lines.append(line))
    return code, lines


async def test_a_direct_step_sees_what_it_would_have_seen_under_bash(tmp_path: Path) -> None:
    env = {**ENV, "SHLVL": "2"}
    code, lines = await _run("env", tmp_path, env)
    assert code == 0
    via_bash = subprocess.run(  # noqa: ASYNC221 (a one-off reference run)
        ["bash", "-c", DEFAULT_SHELL_PREFIX + "env"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert sorted(lines) == sorted(via_bash)


async def test_exit_codes_and_bash_messages_are_unchanged(tmp_path: Path) -> None:
    assert (await _run("false", tmp_path, ENV))[0] == 1
    assert (await _run("true", tmp_path, ENV))[0] == 0
    code, lines = await _run("no-such-program-here", tmp_path, ENV)
    assert code == 127 and any("command not found" in line for line in lines)
    plain = tmp_path / "plain.sh"
    plain.write_text("echo ran by bash\n")
    plain.chmod(0o755)  # no "#!": exec fails with ENOEXEC, bash runs it as a script
    assert await _run("./plain.sh", tmp_path, ENV) == (0, ["ran by bash"])


async def test_a_direct_step_is_killed_on_cancel(tmp_path: Path) -> None:
    with trio.move_on_after(0.3) as scope:
        await run_shell("sleep 30", cwd=tmp_path, env=ENV, on_output=None, grace=1.0)
    assert scope.cancelled_caught
