"""Errors reach the user as one `Error:` line and the right exit status, never a traceback.

Pins down:
- a bad environment (state dir under a file, a malformed knob) is reported locally, exit 1;
- an error raised inside the daemon crosses the socket with its kind (``protocol.error_from`` /
  ``exception_from``), so `oj` exits with the status of the daemon-side class: shown against a
  stand-in daemon for a usage error (exit 2; no real daemon path raises one today), for an older
  daemon's reply without a kind (exit 1) and for a kind this client does not know (its exit code);
- against a real `ojd`: not-found, runbook and argument errors print the daemon's text unchanged
  on one line and exit 1, as reference §7.5 wants for everything but usage errors, wait results
  and an interrupted wait.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from blackbox import OjEnv

from oj_trio import protocol


def _one_line_error(result: subprocess.CompletedProcess[str], exit_code: int = 1) -> str:
    stderr = result.stderr
    assert result.returncode == exit_code, (result.returncode, stderr)
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


# -- daemon-side errors keep their kind ------------------------------------------------------------


@contextlib.contextmanager
def stand_in_daemon(state: Path, reply: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
    """A socket at ``state/daemon.sock`` that answers one request with ``reply``: any daemon
    version's answer, including error kinds the real daemon has no path to today. Yields the
    requests it received."""
    state.mkdir(parents=True, exist_ok=True)
    path = state / "daemon.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen()
    server.settimeout(60)
    received: list[dict[str, Any]] = []

    def answer_one() -> None:
        conn, _ = server.accept()
        with conn, conn.makefile("rb") as stream:
            length = protocol.decode_length(stream.read(protocol.HEADER_SIZE))
            received.append(json.loads(stream.read(length)))
            conn.sendall(protocol.encode_frame(reply))

    thread = threading.Thread(target=answer_one, daemon=True)
    thread.start()
    try:
        yield received
    finally:
        thread.join(timeout=60)
        server.close()
        path.unlink(missing_ok=True)


@pytest.mark.parametrize(
    ("reply", "exit_code"),
    [
        ({"type": "Error", "message": "bad id: x", "kind": "usage", "exit_code": 2}, 2),
        # an older daemon: no kind, no exit code -> the generic exit 1
        ({"type": "Error", "message": "bad id: x"}, 1),
        # a newer daemon's kind unknown to this client: the exit code it names still counts
        ({"type": "Error", "message": "bad id: x", "kind": "quota", "exit_code": 5}, 5),
    ],
    ids=["usage", "no-kind", "unknown-kind"],
)
def test_daemon_side_error_sets_the_exit_status(
    ojenv: OjEnv, reply: dict[str, Any], exit_code: int
) -> None:
    with stand_in_daemon(ojenv.state, reply) as received:
        result = ojenv.oj("pipeline", "show", "x")
    assert received == [{"type": "Query", "query": {"type": "GetPipeline", "id": "x"}}]
    assert _one_line_error(result, exit_code) == "Error: bad id: x"


RUNBOOK = """
command "build" {
  args = "<name> <prompt>"
  run = { pipeline = "build" }
}

pipeline "build" {
  step "execute" { run = "echo 'Building ${var.name}'" }
}
"""


def test_real_daemon_errors_print_their_text_once_and_exit_1(ojenv: OjEnv) -> None:
    ojenv.runbook("build.hcl", RUNBOOK)
    ojenv.ok("daemon", "start")

    # NotFoundError (kind not_found): exit 1, one line
    missing = ojenv.oj("pipeline", "resume", "nope-nope")
    assert _one_line_error(missing) == "Error: pipeline not found: nope-nope"
    unknown = ojenv.oj("workspace", "drop", "nope-nope")
    assert _one_line_error(unknown) == "Error: workspace not found: nope-nope"

    # runbook.argspec.ArgumentError is a plain OjError (kind "error"), not a UsageError: a
    # runbook command's arguments are checked by the daemon, not by oj's own parser, and
    # reference §7.5 gives exit 2 only to the CLI's own usage errors.
    short = ojenv.oj("run", "build", "x")
    assert _one_line_error(short) == "Error: missing required argument: prompt"

    # RunbookError (kind runbook) keeps its text unchanged
    ojenv.runbook("again.hcl", 'command "build" {\n  run = "true"\n}\n')
    twice = ojenv.oj("run", "build", "x", "y")
    assert _one_line_error(twice) == (
        "Error: 'build' defined in multiple runbooks; use --runbook <file>"
    )
