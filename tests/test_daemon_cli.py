"""The `ojd` and `oj` command lines themselves, and the CLI's import budget (issue 4, SPEC §1).

Pins down:
- `ojd --help|-h|help` print usage and exit 0; `ojd --version|-V|-v` print `ojd <version>`;
  an unknown argument is a usage error (`unexpected argument`), and none of these starts a daemon;
- `oj --help` lists the command tree, `oj --version` prints `oj <version>`, usage errors exit 2
  without a traceback;
- the `oj` client path imports none of trio, anyio, hcl2, lark, attrs, cattrs — neither when its
  modules (`oj_trio.cli`, every `oj_trio.commands.*`, the client) are imported and the parser
  is built, nor in a real `oj daemon status` run against a live daemon (checked with
  `PYTHONPROFILEIMPORTTIME`); nor does it import the wire shapes (`oj_trio.messages`), which
  only the daemon needs at run time.
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import pytest
from blackbox import OJ, OJD, OjEnv

from oj_trio._version import __version__

HEAVY = {"trio", "anyio", "hcl2", "lark", "attr", "attrs", "cattrs", "cattr"}


def _run(argv: list[str], env: OjEnv) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, env=env.env, capture_output=True, text=True, timeout=60, check=False
    )


# -- ojd -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("flag", ["--help", "-h", "help"])
def test_ojd_help(ojenv: OjEnv, flag: str) -> None:
    result = _run([OJD, flag], ojenv)
    assert result.returncode == 0, result.stderr
    assert result.stdout.lower().startswith("usage: ojd")
    assert "--version" in result.stdout and "--help" in result.stdout
    assert not ojenv.state.exists(), "ojd --help must not start a daemon"


@pytest.mark.parametrize("flag", ["--version", "-V", "-v"])
def test_ojd_version(ojenv: OjEnv, flag: str) -> None:
    result = _run([OJD, flag], ojenv)
    assert (result.returncode, result.stdout) == (0, f"ojd {__version__}\n")
    assert __version__ == "0.1.0"
    assert not ojenv.state.exists()


@pytest.mark.parametrize("arg", ["--bogus", "start", "-x"])
def test_ojd_unknown_argument(ojenv: OjEnv, arg: str) -> None:
    result = _run([OJD, arg], ojenv)
    assert result.returncode != 0
    assert f"unexpected argument '{arg}'" in result.stderr
    assert "Usage: ojd" in result.stderr
    assert "Traceback" not in result.stderr
    assert not ojenv.state.exists()


# -- oj ------------------------------------------------------------------------------------------


def test_oj_help_and_version(ojenv: OjEnv) -> None:
    help_ = ojenv.oj("--help")
    assert help_.returncode == 0
    assert help_.stdout.lower().startswith("usage: oj")
    for command in ("run", "pipeline", "status", "daemon"):
        assert command in help_.stdout
    daemon_help = ojenv.oj("daemon", "--help")
    assert daemon_help.returncode == 0
    for sub in ("start", "stop", "restart", "status", "logs", "install-unit"):
        assert sub in daemon_help.stdout
    version = ojenv.oj("--version")
    assert (version.returncode, version.stdout) == (0, f"oj {__version__}\n")


def test_oj_run_help_is_local(ojenv: OjEnv) -> None:
    """`oj run --help` describes `oj run` itself without a daemon; `oj run CMD --help` is the
    command's generated help (tests/test_pipeline_run.py)."""
    result = ojenv.oj("run", "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Usage: oj run")
    assert "-a/--arg KEY=VALUE" in result.stdout
    assert not ojenv.state.exists()


@pytest.mark.parametrize(
    "argv",
    [
        ("daemon", "bogus"),
        ("daemon",),
        ("daemon", "logs", "--lines", "x"),
        ("-o", "yaml", "status"),
    ],
)
def test_oj_usage_errors_exit_2(ojenv: OjEnv, argv: tuple[str, ...]) -> None:
    result = ojenv.oj(*argv)
    assert result.returncode == 2, result
    assert "usage:" in result.stderr.lower()
    assert "Traceback" not in result.stderr


def test_output_flag_accepted_after_subcommand(ojenv: OjEnv) -> None:
    assert json.loads(ojenv.ok("daemon", "status", "-o", "json")) == {"status": "not_running"}
    assert json.loads(ojenv.ok("-o", "json", "daemon", "status")) == {"status": "not_running"}


# -- import budget ---------------------------------------------------------------------------------


def _heavy(modules: set[str]) -> set[str]:
    return {name for name in modules if name.split(".")[0] in HEAVY}


def _shapes(modules: set[str]) -> set[str]:
    """The wire-shape modules among ``modules``: daemon side only; the CLI builds requests as
    plain dicts and ``oj_trio.protocol`` names the shapes for mypy only."""
    return {name for name in modules if name.split(".")[:2] == ["oj_trio", "messages"]}


#: The rest of the `oj` command path besides `oj_trio.commands.*` (found by `_cli_modules`).
CLI_CORE = ("oj_trio.cli", "oj_trio.keyvalue", "oj_trio.client", "oj_trio.protocol")
NOUNS = ("run", "pipeline", "workspace", "status", "daemon", "runbook")


def _cli_modules() -> list[str]:
    """The entry point, the client, and every module of `oj_trio.commands`, new nouns included."""
    import oj_trio.commands

    found = [f"oj_trio.commands.{m.name}" for m in pkgutil.iter_modules(oj_trio.commands.__path__)]
    assert {f"oj_trio.commands.{noun}" for noun in NOUNS} <= set(found)
    return [*CLI_CORE, "oj_trio.commands", *found]


def test_cli_modules_do_not_import_heavy_packages() -> None:
    names = _cli_modules()
    code = (
        "import sys, json, importlib\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name)\n"
        "import oj_trio.cli\n"
        "oj_trio.cli.get_parser()\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    modules = set(json.loads(result.stdout))
    assert set(names) <= modules
    assert _heavy(modules) == set()
    assert _shapes(modules) == set()


def _imported(stderr: str) -> set[str]:
    """Module names from `-X importtime` / PYTHONPROFILEIMPORTTIME lines."""
    names = set()
    for line in stderr.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            name = line.rsplit("|", 1)[1].strip()
            if name != "package":  # the header line
                names.add(name)
    return names


def test_oj_daemon_status_run_imports_nothing_heavy(ojenv: OjEnv) -> None:
    assert ojenv.ok("daemon", "start") == "Daemon started\n"
    for argv in (("daemon", "status"), ("status",), ("pipeline", "list")):
        result = ojenv.oj(*argv, env={"PYTHONPROFILEIMPORTTIME": "1"})
        assert result.returncode == 0, result.stderr
        names = _imported(result.stderr)
        assert "oj_trio.cli" in names and "socket" in names, "no import profile?"
        # Only the chosen noun's command module (and the shared helpers) is imported.
        nouns = {n.rsplit(".", 1)[1] for n in names if n.startswith("oj_trio.commands.")}
        # shared helpers are private modules (`_args`, `_output`, `_progress`, …)
        assert {n for n in nouns if not n.startswith("_")} == {argv[0]}, argv
        assert _heavy(names) == set(), argv
        assert _shapes(names) == set(), argv
    # and without a daemon (the DaemonNotRunning path)
    ojenv.ok("daemon", "stop")
    result = ojenv.oj("daemon", "status", env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert result.returncode == 0
    assert _heavy(_imported(result.stderr)) == set()
    assert _shapes(_imported(result.stderr)) == set()


def test_oj_entry_point_is_the_cli_main() -> None:
    """The console script imports oj_trio.cli (and so inherits the budget above)."""
    with open(OJ) as fh:
        text = fh.read()
    assert "from oj_trio.cli import main" in text
