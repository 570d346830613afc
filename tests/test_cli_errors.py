"""Bad environment and bad values get a one-line `Error:` and a non-zero exit, never a traceback."""

from __future__ import annotations

import pytest
from blackbox import OjEnv


def _one_line_error(result: object) -> str:
    stderr = result.stderr  # type: ignore[attr-defined]
    assert result.returncode == 1, stderr  # type: ignore[attr-defined]
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), stderr
    return lines[0]


@pytest.mark.parametrize("args", [("daemon", "start"), ("pipeline", "prune"), ("daemon", "status")])
def test_state_dir_under_a_file(ojenv: OjEnv, args: tuple[str, ...]) -> None:
    blocker = ojenv.root / "blocker"
    blocker.write_text("not a directory")
    result = ojenv.oj(*args, env={"OJ_STATE_DIR": str(blocker / "state")})
    assert "Not a directory" in _one_line_error(result)


def test_bad_timeout_variable(ojenv: OjEnv) -> None:
    result = ojenv.oj("daemon", "status", env={"OJ_TIMEOUT_IPC_MS": "soon"})
    line = _one_line_error(result)
    assert "OJ_TIMEOUT_IPC_MS must be a whole number of milliseconds" in line
