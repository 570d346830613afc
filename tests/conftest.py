"""Shared fixtures. The black-box harness (a real `ojd` in a short isolated state dir) lives in
`tests/blackbox.py`; the `ojenv` fixture hands out one per test and stops its daemon after."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from blackbox import OjEnv, oj_env


@pytest.fixture
def ojenv() -> Iterator[OjEnv]:
    with oj_env() as env:
        yield env
