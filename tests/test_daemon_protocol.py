"""Black-box socket protocol of a real `ojd` (issue 4, SPEC §5, reference §6.2).

Pins down:
- a well-formed `Ping`/`Status`/`Hello` gets its tagged answer, one request per connection;
- every kind of malformed input (garbage bytes, a huge length prefix, invalid UTF-8/JSON, a JSON
  value that is not a tagged object, an unknown request or query type, a missing field) gets an
  `Error {message, kind: "protocol", exit_code: 1}` or a closed connection, and **while that
  connection is open** a normal client (`oj daemon status`) keeps getting answers;
- an `OjError` raised by a handler is answered with its class's wire kind and exit code;
- slow-loris clients (half a header, or a header and half a body, then silence) cost nothing
  to others and are eventually disconnected by the daemon's read timeout;
- 50 concurrent clients all get their round trips answered.

One daemon serves the whole module; each test checks it is still alive and answering afterwards.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from blackbox import OjEnv, _alive, oj_env

from oj_trio._version import __version__

MAX_FRAME = 16 * 1024 * 1024


@pytest.fixture(scope="module")
def daemon() -> Iterator[OjEnv]:
    with oj_env() as env:
        assert env.ok("daemon", "start") == "Daemon started\n"
        yield env


@pytest.fixture(autouse=True)
def _daemon_survives(daemon: OjEnv) -> Iterator[None]:
    pid = daemon.daemon_pid()
    yield
    assert pid is not None and _alive(pid), "the daemon died"
    assert daemon.daemon_pid() == pid
    assert roundtrip(daemon, frame({"type": "Ping"})) == {"type": "Pong"}


def frame(message: Any) -> bytes:
    body = json.dumps(message).encode()
    return struct.pack(">I", len(body)) + body


def connect(env: OjEnv, timeout: float = 30.0) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.connect(str(env.state / "daemon.sock"))
    return sock


def read_all(sock: socket.socket) -> bytes:
    """Everything the daemon sends until it closes (a reset counts as a close)."""
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk


def parse_frames(data: bytes) -> list[dict[str, Any]]:
    frames = []
    while data:
        assert len(data) >= 4, f"truncated header: {data!r}"
        (length,) = struct.unpack(">I", data[:4])
        body, data = data[4 : 4 + length], data[4 + length :]
        assert len(body) == length, "truncated body"
        frames.append(json.loads(body))
    return frames


def roundtrip(env: OjEnv, raw: bytes) -> dict[str, Any]:
    with connect(env) as sock:
        sock.sendall(raw)
        frames = parse_frames(read_all(sock))
    assert len(frames) == 1, frames
    return frames[0]


def status_ok(env: OjEnv) -> None:
    """A normal client gets a normal answer."""
    out = env.ok("daemon", "status")
    assert out.startswith("Status: running\n"), out


# -- well-formed requests -----------------------------------------------------------------------


def test_ping_status_hello(daemon: OjEnv) -> None:
    assert roundtrip(daemon, frame({"type": "Ping"})) == {"type": "Pong"}
    status = roundtrip(daemon, frame({"type": "Status"}))
    assert status["type"] == "Status"
    assert {"uptime_secs", "pipelines_active", "sessions_active"} <= set(status)
    hello = roundtrip(daemon, frame({"type": "Hello", "version": "0.0.0"}))
    assert hello == {"type": "Hello", "version": __version__}


def test_one_request_per_connection(daemon: OjEnv) -> None:
    """A second request on the same connection is not answered: the daemon closes after one."""
    with connect(daemon) as sock:
        sock.sendall(frame({"type": "Ping"}) + frame({"type": "Ping"}))
        frames = parse_frames(read_all(sock))
    assert frames == [{"type": "Pong"}]


def test_connect_and_leave_is_harmless(daemon: OjEnv) -> None:
    for _ in range(5):
        connect(daemon).close()
    status_ok(daemon)


# -- malformed input ----------------------------------------------------------------------------

#: (id, bytes sent, fragment of the expected Error message). Every case sends a complete frame
#: except "garbage", whose tail the daemon never reads: closing a Unix socket with unread input
#: resets it, so for that one a bare close is accepted too.
BAD_INPUTS: list[tuple[str, bytes, str]] = [
    ("garbage", b"garbage garbage garbage\n", "Message too large"),
    ("huge-length", struct.pack(">I", 0xFFFFFFFF), f"max {MAX_FRAME}"),
    ("just-over-limit", struct.pack(">I", MAX_FRAME + 1), "Message too large"),
    ("invalid-json", struct.pack(">I", 9) + b"{not json", "not valid JSON"),
    ("invalid-utf8", struct.pack(">I", 4) + b"\xff\xfe\xfd\xfc", "not valid UTF-8"),
    ("json-array", frame([1, 2, 3]), "JSON object"),
    ("json-string", frame("Ping"), "JSON object"),
    ("no-type", frame({"kind": "Ping"}), "'type'"),
    ("type-not-string", frame({"type": 7}), "'type'"),
    ("unknown-type", frame({"type": "Bogus"}), "unknown request type: Bogus"),
    ("unknown-query", frame({"type": "Query", "query": {"type": "Nope"}}), "unknown query type"),
    ("missing-field", frame({"type": "Hello"}), "missing field 'version'"),
    ("wrong-field-type", frame({"type": "Shutdown", "kill": "yes"}), "must be bool"),
    ("unknown-field", frame({"type": "Ping", "extra": 1}), "unknown field"),
    ("empty-body", struct.pack(">I", 0), "not valid JSON"),
]


@pytest.mark.parametrize(
    ("case", "raw", "expected"), BAD_INPUTS, ids=[case for case, _, _ in BAD_INPUTS]
)
def test_malformed_input_gets_error_while_others_are_served(
    daemon: OjEnv, case: str, raw: bytes, expected: str
) -> None:
    with connect(daemon) as sock:
        sock.sendall(raw)
        # the bad connection is still open (or being closed) while a normal client asks
        status_ok(daemon)
        data = read_all(sock)
    if case == "garbage" and not data:
        return
    frames = parse_frames(data)
    assert len(frames) == 1, frames
    assert frames[0]["type"] == "Error"
    assert expected in frames[0]["message"], frames[0]
    assert (frames[0]["kind"], frames[0]["exit_code"]) == ("protocol", 1), frames[0]
    # the daemon is not confused afterwards
    status_ok(daemon)


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        ({"type": "PipelineResume", "id": "nope"}, "pipeline not found: nope"),
        ({"type": "WorkspaceDrop", "id": "nope"}, "workspace not found: nope"),
        (
            {
                "type": "RunCommand",
                "project_root": "/nonexistent-oj-project",
                "invoke_dir": "/",
                "namespace": "n",
                "command": "nope",
            },
            "unknown command: nope",
        ),
    ],
    ids=["resume", "workspace-drop", "run-command"],
)
def test_handler_errors_carry_their_kind(
    daemon: OjEnv, request_: dict[str, Any], message: str
) -> None:
    assert roundtrip(daemon, frame(request_)) == {
        "type": "Error",
        "message": message,
        "kind": "not_found",
        "exit_code": 1,
    }


def test_truncated_body_then_close_gets_no_answer(daemon: OjEnv) -> None:
    with connect(daemon) as sock:
        sock.sendall(struct.pack(">I", 100) + b'{"type":')
        sock.shutdown(socket.SHUT_WR)
        status_ok(daemon)
        assert read_all(sock) == b""


def test_slow_loris_clients_do_not_block_others(daemon: OjEnv) -> None:
    """Half a header, or a header and half a body, then silence: others are served meanwhile,
    and the daemon hangs up on the stalled clients by itself (its read timeout)."""
    stalled = []
    try:
        for i in range(20):
            sock = connect(daemon, timeout=60)
            if i % 2:
                sock.sendall(b"\x00\x00")
            else:
                sock.sendall(struct.pack(">I", 50) + b'{"type":"Pi')
            stalled.append(sock)
        for _ in range(3):
            status_ok(daemon)
        assert roundtrip(daemon, frame({"type": "Ping"})) == {"type": "Pong"}
        # the daemon closes them without an answer; recv returns b"" (or a reset) on its own
        for sock in stalled:
            assert read_all(sock) == b""
    finally:
        for sock in stalled:
            sock.close()


# -- concurrency ---------------------------------------------------------------------------------


def test_fifty_concurrent_clients(daemon: OjEnv) -> None:
    clients = 50
    rounds = 5
    barrier = threading.Barrier(clients)
    errors: list[BaseException] = []
    answers: list[str] = []
    lock = threading.Lock()

    def client() -> None:
        try:
            barrier.wait(timeout=60)
            for _ in range(rounds):
                for request, reply in (("Ping", "Pong"), ("Status", "Status")):
                    got = roundtrip(daemon, frame({"type": request}))
                    assert got["type"] == reply, got
                    with lock:
                        answers.append(got["type"])
        except BaseException as exc:
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    assert not errors, errors[:3]
    assert len(answers) == clients * rounds * 2


def test_concurrent_oj_processes(daemon: OjEnv) -> None:
    results: list[str] = []
    lock = threading.Lock()

    def run() -> None:
        out = daemon.oj("daemon", "status", "-o", "json")
        with lock:
            results.append(json.loads(out.stdout)["status"] if out.returncode == 0 else out.stderr)

    threads = [threading.Thread(target=run) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert results == ["running"] * 10
