"""The checked-in man pages follow the CLI, and an install puts them where `man` looks."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

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


def test_pip_install_puts_pages_where_man_looks(tmp_path: Path) -> None:
    """`man oj` works after `pip install`: the wheel carries the pages as data files, which
    pip installs to <prefix>/share/man (man(1) derives that from <prefix>/bin on PATH)."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            str(ROOT),
            "-w",
            str(tmp_path),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("oj_trio-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        data = [n for n in names if "/data/share/man/" in n]
        assert sorted(n.split("/data/", 1)[1] for n in data) == [
            "share/man/man1/oj.1",
            "share/man/man8/ojd.8",
        ]
        prefix = tmp_path / "prefix"
        for name in data:
            target = prefix / name.split("/data/", 1)[1]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(zf.read(name))
    if shutil.which("man") is None:
        pytest.skip("man(1) is not installed here")
    for page, section in (("oj", "1"), ("ojd", "8")):
        found = subprocess.run(
            ["man", "-M", str(prefix / "share" / "man"), "-w", section, page],
            capture_output=True,
            text=True,
            check=False,
        )
        assert found.returncode == 0, found.stderr
        assert found.stdout.strip().endswith(f"{page}.{section}")
