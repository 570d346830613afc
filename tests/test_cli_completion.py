"""`oj completion bash|zsh` (issue 13): scripts generated from the real parser, sourced by a real
bash that completes nouns, verbs, option values and the names the daemon knows."""

from __future__ import annotations

import shlex
import shutil
import subprocess

import pytest
from blackbox import BIN, OjEnv

from oj_trio import cli
from oj_trio.commands import completion

RUNBOOK = """
queue "nightly" {
  type = "persisted"
  vars = ["tag"]
}
queue "numbers" {
  type = "persisted"
  vars = ["tag"]
}
worker "nightworker" {
  source  = { queue = "nightly" }
  handler = { pipeline = "p" }
}
pipeline "p" {
  vars = ["job"]
  step "s" {
    run = "true"
  }
}
cron "nightly-report" {
  interval = "1h"
  run      = { pipeline = "tick" }
}
pipeline "tick" {
  step "s" {
    run = "true"
  }
}
"""


def complete(ojenv: OjEnv, line: str) -> list[str]:
    """What bash offers for a tab at the end of `line` (`oj ...`), the script from `oj`."""
    words = shlex.split(line) + ([""] if line.endswith(" ") else [])
    words_array = " ".join(shlex.quote(w) for w in words)
    script = (
        "source <(oj completion bash) || exit 9\n"
        f"COMP_WORDS=({words_array}); COMP_CWORD={len(words) - 1}\n"
        f"COMP_LINE={shlex.quote(line)}; COMP_POINT={len(line)}\n"
        "_shtab_oj\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    env = {**ojenv.env, "PATH": f"{BIN}:{ojenv.env.get('PATH', '')}"}
    result = subprocess.run(
        ["bash", "-c", script],
        cwd=ojenv.project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return sorted(w for w in result.stdout.split("\n") if w)


@pytest.mark.parametrize("shell", completion.SHELLS)
def test_script_covers_every_noun_and_runs_no_python(ojenv: OjEnv, shell: str) -> None:
    text = ojenv.ok("completion", shell)
    for noun in cli.NOUNS:
        assert noun in text
    assert "python" not in text.lower()
    for kind in completion.NAME_SOURCES:
        assert f"oj __names {kind}" in text


def test_zsh_script_parses() -> None:
    if shutil.which("zsh") is None:
        pytest.skip("zsh is not installed here")
    text = subprocess.run(
        [str(BIN / "oj"), "completion", "zsh"], capture_output=True, text=True, check=True
    ).stdout
    subprocess.run(["zsh", "-n"], input=text, text=True, check=True)


def test_unknown_shell_is_a_usage_error(ojenv: OjEnv) -> None:
    result = ojenv.oj("completion", "fish")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr


def test_bash_completes_nouns_verbs_and_choices_without_a_daemon(ojenv: OjEnv) -> None:
    assert complete(ojenv, "oj qu") == ["queue"]
    assert complete(ojenv, "oj w") == ["worker", "workspace"]
    assert complete(ojenv, "oj queue ") == [
        "drop",
        "items",
        "list",
        "prune",
        "push",
        "retry",
        "wait",
    ]
    assert complete(ojenv, "oj status -o ") == ["json", "text"]
    # No daemon: a name lookup completes nothing, quietly, and starts no daemon.
    assert complete(ojenv, "oj queue push ") == []
    assert ojenv.daemon_pid() is None


def test_bash_completes_names_the_daemon_knows(ojenv: OjEnv) -> None:
    ojenv.runbook("q.hcl", RUNBOOK)
    ojenv.ok("queue", "push", "nightly", "--var", "tag=a")
    assert complete(ojenv, "oj queue push n") == ["nightly", "numbers"]
    assert complete(ojenv, "oj queue items ni") == ["nightly"]
    assert complete(ojenv, "oj worker stop ") == ["nightworker"]
    ojenv.ok("cron", "start", "nightly-report")
    assert complete(ojenv, "oj cron stop nig") == ["nightly-report"]
    pipelines = ojenv.json("pipeline", "list")
    assert pipelines, "the push started a pipeline"
    offered = complete(ojenv, "oj pipeline show ")
    assert {p["id"][:8] for p in pipelines} <= set(offered)


def test_names_lookup_is_quiet_on_failure(ojenv: OjEnv) -> None:
    result = ojenv.oj("__names", "queue")
    assert (result.returncode, result.stdout, result.stderr) == (1, "", "")
    result = ojenv.oj("__names", "nonsense")
    assert (result.returncode, result.stdout, result.stderr) == (2, "", "")


def test_zsh_name_functions_offer_the_daemons_names(ojenv: OjEnv) -> None:
    """The zsh preamble's lookups (zsh's `compadd` stubbed to print what it is given)."""
    if shutil.which("zsh") is None:
        pytest.skip("zsh is not installed here")
    ojenv.runbook("q.hcl", RUNBOOK)
    ojenv.ok("queue", "push", "nightly", "--var", "tag=a")
    script = (
        'source <(oj completion zsh | grep "^_oj_names_")\n'
        "compadd() { [[ $1 == -a ]] && print -l -- ${(P)2} }\n"
        "_oj_names_queue; _oj_names_worker\n"
    )
    env = {**ojenv.env, "PATH": f"{BIN}:{ojenv.env.get('PATH', '')}"}
    result = subprocess.run(
        ["zsh", "-f", "-c", script],
        cwd=ojenv.project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["nightly", "numbers", "nightworker"]


def test_every_name_source_is_a_query_the_daemon_answers() -> None:
    from oj_trio.handlers import all_routes

    queries = {route.tag for route in all_routes() if route.query}
    for kind, (tag, _scoped, _names) in completion.NAME_SOURCES.items():
        assert tag in queries, kind
    for noun, _dest in completion.COMPLETED_ARGS:
        assert noun in cli.NOUNS
    assert set(completion.COMPLETED_ARGS.values()) <= set(completion.NAME_SOURCES)
