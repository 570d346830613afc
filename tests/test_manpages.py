"""The checked-in man pages follow the CLI, and an install puts them where `man` looks."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _gen_module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("gen_man", ROOT / "scripts" / "gen_man.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_man_pages_are_fresh(tmp_path: Path) -> None:
    for page in _gen_module().generate(tmp_path):
        checked_in = ROOT / "man" / page.name
        assert checked_in.read_text() == page.read_text(), (
            f"man/{page.name} is stale: run .venv/bin/python scripts/gen_man.py"
        )


def test_pages_document_the_command_tree() -> None:
    oj = (ROOT / "man" / "oj.1").read_text()
    for command in ("pipeline", "workspace", "daemon", "runbook", "install\\-unit"):
        assert command in oj
    assert '.TH OJD "8"' in (ROOT / "man" / "ojd.8").read_text()


# `man oj`/`man ojd` after a real `pip install` of the built wheel and sdist: tests/test_packaging.py.
