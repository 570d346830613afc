"""Shared fixtures. The black-box harness (a real `ojd` in a short isolated state dir) lives in
`tests/blackbox.py`; the `ojenv` fixture hands out one per test and stops its daemon after."""

from __future__ import annotations

import compileall
from collections.abc import Iterator
from pathlib import Path

import pytest
from blackbox import OjEnv, oj_env
from pg_cluster import MISSING, PgCluster, find_bin_dir


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


@pytest.fixture(scope="session")
def cluster() -> Iterator[PgCluster]:
    """A throwaway PostgreSQL cluster for the session (skips without PostgreSQL)."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        pytest.skip(MISSING)
    pg = PgCluster(bin_dir)
    try:
        pg.init()
        pg.start()
        yield pg
    finally:
        pg.destroy()


@pytest.fixture
def db(cluster: PgCluster) -> str:
    """The URL of a fresh, empty database in the session's cluster."""
    return cluster.createdb()
