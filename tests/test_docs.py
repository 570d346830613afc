"""The documentation describes what exists: commands, modules, files and knobs that are real.

* ``docs/cli.md`` is generated from the parsers (``scripts/gen_cli_doc.py``) and must match them,
  so a command added, renamed or removed fails here until the page is regenerated;
* every ``oj <noun> <verb>`` written in a code span or block of the README or ``docs/`` parses
  with the real ``oj`` parser: no page shows a command that does not exist;
* every repository path a page names (``oj_trio/…``, ``tests/…``, ``scripts/…``…) exists, and so
  does every ``OJ_*`` environment variable it mentions (somewhere in the package's source).
"""

from __future__ import annotations

import argparse
import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

from oj_trio import cli

ROOT = Path(__file__).resolve().parent.parent
PAGES = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]
REQUIRED = ("runbook-language.md", "cli.md", "architecture.md", "durability.md", "operations.md")


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "gen_cli_doc", ROOT / "scripts" / "gen_cli_doc.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_promised_page_exists() -> None:
    for name in REQUIRED:
        assert (ROOT / "docs" / name).is_file(), f"docs/{name} is missing"


def test_cli_page_matches_the_parsers() -> None:
    checked_in = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert checked_in == _generator().render(), (
        "docs/cli.md is stale (a command or option changed): "
        "run .venv/bin/python scripts/gen_cli_doc.py"
    )


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def test_cli_page_names_every_subcommand() -> None:
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    for noun, parser in _subcommands(cli.get_parser()).items():
        assert f"`oj {noun}`" in text
        for verb in _subcommands(parser):
            assert f"`oj {noun} {verb}`" in text, f"docs/cli.md does not mention oj {noun} {verb}"


def _code(text: str) -> list[str]:
    """Code block lines and inline code spans."""
    blocks = re.findall(r"^```[a-z]*\n(.*?)^```$", text, flags=re.DOTALL | re.MULTILINE)
    lines = [line for block in blocks for line in block.splitlines()]
    prose = re.sub(r"^```[a-z]*\n.*?^```$", "", text, flags=re.DOTALL | re.MULTILINE)
    return lines + re.findall(r"`([^`\n]+)`", prose)


#: `oj` in command position: at the start, or after a shell separator or keyword.
_INVOCATION = re.compile(
    r"(?:^\s*|[;&|(]\s*|\b(?:do|then|while|until|if)\s+)(?:[\w./~-]*/)?oj"
    r"\s+([a-z][a-z-]*)(?:\s+([a-z][a-z-]*(?::[a-z_]+)?))?"
)


def _invocations() -> list[tuple[str, str, str | None]]:
    found = []
    for page in PAGES:
        for code in _code(page.read_text(encoding="utf-8")):
            for match in _INVOCATION.finditer(code):
                found.append((page.name, match.group(1), match.group(2)))
    return found


def test_documented_commands_exist() -> None:
    nouns = _subcommands(cli.get_parser())
    invocations = _invocations()
    assert len(invocations) > 50  # the extraction works
    for page, noun, verb in invocations:
        assert noun in nouns, f"{page}: `oj {noun}` is not an oj command"
        verbs = _subcommands(nouns[noun])
        if verbs and verb is not None:
            assert verb in verbs, f"{page}: `oj {noun} {verb}` is not an oj command"


_PATH = re.compile(
    r"(?<![\w./~-])((?:oj_trio|tests|scripts|bench|systemd|runbooks|examples|man)/[\w./-]*\w)"
)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_named_paths_exist(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    for path in set(_PATH.findall(text)):
        if "<" in path or "*" in path:
            continue
        assert (ROOT / path).exists(), f"{page.name} names {path}, which does not exist"


def test_named_environment_variables_exist() -> None:
    source = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "oj_trio").rglob("*.py"))
    for page in PAGES:
        for name in set(re.findall(r"\bOJ_[A-Z_]*[A-Z]\b", page.read_text(encoding="utf-8"))):
            assert name in source, f"{page.name} mentions {name}, which oj does not read"


def test_operations_lists_every_environment_variable_with_its_default() -> None:
    """Every ``OJ_*`` variable the package reads or sets is in the operations page, and the
    defaults of the millisecond knobs there are the ones the code uses."""
    page = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    source = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "oj_trio").rglob("*.py"))
    for name in sorted(set(re.findall(r'"(OJ_[A-Z_]+)"', source))):
        assert f"`{name}`" in page, (
            f"{name} is read or set by oj but missing from docs/operations.md "
            "(add it to the Environment variables tables)"
        )
    defaults = dict(re.findall(r'env_seconds\(\s*"(OJ_[A-Z_]+)",\s*([0-9_]+)', source))
    rows = dict(re.findall(r"^\| `(OJ_[A-Z_]+)` \| ([0-9]+) \|", page, flags=re.MULTILINE))
    for name, default in defaults.items():
        if name in rows:
            assert int(rows[name]) == int(default.replace("_", "")), (
                f"{name}: the code says {default}"
            )


def test_operations_quotes_the_systemd_unit_as_shipped() -> None:
    unit = (ROOT / "systemd" / "ojd.service").read_text(encoding="utf-8").splitlines()
    keys = {line.split("=", 1)[0] for line in unit if "=" in line}
    page = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    quoted = [q for q in re.findall(r"`([A-Za-z]+=[^`]*)`", page) if q.split("=", 1)[0] in keys]
    assert len(quoted) >= 4
    for directive in quoted:
        assert directive in unit or any(line.startswith(directive) for line in unit), (
            f"docs/operations.md quotes {directive!r}, which systemd/ojd.service does not say"
        )
