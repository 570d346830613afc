"""The checked-in man pages follow the CLI: every command, every `OJ_*` variable the code uses,
and the sections a reader looks for. (`man oj`/`man ojd` after a real `pip install` of the built
wheel and sdist: tests/test_packaging.py.)"""

from __future__ import annotations

import argparse
import importlib.util
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from oj_trio import cli

ROOT = Path(__file__).resolve().parent.parent
REGENERATE = "run .venv/bin/python scripts/gen_man.py"
SECTIONS = ("NAME", "SYNOPSIS", "DESCRIPTION", "ENVIRONMENT", "FILES", "EXIT STATUS", "EXAMPLES")


def _gen_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_man", ROOT / "scripts" / "gen_man.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _page(name: str) -> str:
    return (ROOT / "man" / name).read_text()


def test_man_pages_are_fresh(tmp_path: Path) -> None:
    for page in _gen_module().generate(tmp_path):
        checked_in = ROOT / "man" / page.name
        assert checked_in.read_text() == page.read_text(), f"man/{page.name} is stale: {REGENERATE}"


def _commands(parser: argparse.ArgumentParser, path: str) -> Iterator[str]:
    yield path
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _commands(child, f"{path} {name}")


def test_every_command_has_its_section() -> None:
    page = _page("oj.1")
    commands = list(_commands(cli.get_parser(), "oj"))[1:]
    assert len(commands) > 30
    for command in commands:
        heading = f".SH COMMAND \\fI\\,'{command}'\\/\\fR".replace("-", "\\-")
        assert heading in page, f"{command!r} is not in man/oj.1: {REGENERATE}"


@pytest.mark.parametrize("name", ["oj.1", "ojd.8"])
def test_pages_have_the_sections_a_reader_looks_for(name: str) -> None:
    headings = re.findall(r"^\.SH (.+)$", _page(name), re.MULTILINE)
    for section in (*SECTIONS, "SEE ALSO"):
        assert section in headings, (name, section)
    assert headings.index("DESCRIPTION") < headings.index("ENVIRONMENT")


def _variables_in_code() -> set[str]:
    found: set[str] = set()
    for path in (ROOT / "oj_trio").rglob("*.py"):
        found |= set(re.findall(r"\bOJ_[A-Z][A-Z0-9_]*\b", path.read_text()))
    return found


def test_every_oj_variable_the_code_uses_is_documented() -> None:
    documented = _gen_module().ENVIRONMENT
    missing = _variables_in_code() - set(documented)
    assert not missing, (
        f"{sorted(missing)} used in oj_trio/ but not explained: add them to ENVIRONMENT in "
        f"scripts/gen_man.py, then {REGENERATE}"
    )
    pages = {"oj": _page("oj.1"), "ojd": _page("ojd.8")}
    for variable, (where, _text) in documented.items():
        for page in ("oj", "ojd") if "step" in where.split() else where.split():
            assert f".B {variable}\n" in pages[page], (variable, page)


def test_pages_render_without_groff_warnings() -> None:
    if shutil.which("groff") is None:
        pytest.skip("groff is not installed here")
    for name in ("oj.1", "ojd.8"):
        result = subprocess.run(
            ["groff", "-man", "-ww", "-z", str(ROOT / "man" / name)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert (result.returncode, result.stderr) == (0, ""), name
