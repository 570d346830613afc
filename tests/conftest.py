"""Shared fixtures. The black-box harness (a real `ojd` in a short isolated state dir) lives in
`tests/blackbox.py`; the `ojenv` fixture hands out one per test and stops its daemon after."""

from __future__ import annotations

import compileall
from collections.abc import Iterator
from pathlib import Path

import pytest
from blackbox import OjEnv, oj_env


def pytest_sessionstart(session: pytest.Session) -> None:
    """Compile the package once, as `pip install` would for a user.

    Black-box tests start `oj`/`ojd` hundreds of times; with PYTHONDONTWRITEBYTECODE set (as in
    this project's CI) and an editable install, each start would otherwise compile the CLI from
    source. compileall writes the caches regardless of that variable; they are gitignored.
    """
    compileall.compile_dir(Path(__file__).resolve().parent.parent / "oj_trio", quiet=1)


@pytest.fixture
def ojenv() -> Iterator[OjEnv]:
    with oj_env() as env:
        yield env
