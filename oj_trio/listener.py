"""The daemon's Unix-socket server: frames in, handler, frames out.

One request and one response per connection. Every connection runs in its own task with read
and write deadlines, so a slow or malicious client costs one task and nothing else; malformed
input of any kind earns an ``Error`` response (when the frame header could be read) or a closed
connection, and the daemon carries on serving everyone else.

This is the daemon's one mapping point from exceptions to ``Error`` replies: an ``OjError`` from a
handler keeps its wire kind and exit code (``protocol.error_from``), so ``oj`` exits as the class
says; malformed input is a ``protocol`` error; the refused peer a ``daemon`` one; anything else is
a bug, answered as ``internal error: …`` of the base kind and logged with its traceback.

anyio provides the Unix listener (trio has none) and the buffered exact reads. Note that
``anyio.create_unix_listener`` unlinks an existing socket file first: the daemon calls this only
while holding the ``daemon.pid`` lock, so it can never unlink a live daemon's socket.
"""

from __future__ import annotations

import logging
import os
import socket
import struct
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import orjson
import trio
from anyio.streams.buffered import BufferedByteReceiveStream

from . import messages, protocol
from .errors import DaemonError, OjError, ProtocolError

log = logging.getLogger("oj.listener")

#: A request in, a reply out: a typed ``messages.Response`` or a loose ``protocol.Message``.
Handler = Callable[[protocol.Message], Awaitable[messages.Response | protocol.Message]]

#: How long a client may take to send its request, and to accept our answer.
READ_TIMEOUT = 5.0
WRITE_TIMEOUT = 5.0

_UCRED = struct.Struct("3i")


def peer_uid(sock: socket.socket) -> int | None:
    """The connecting process's uid via SO_PEERCRED (Linux); None where unsupported."""
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
    except (OSError, AttributeError):
        return None
    _pid, uid, _gid = _UCRED.unpack(raw)
    return int(uid)


async def open_listener(path: Path) -> anyio.abc.SocketListener:
    """Bind the socket with owner-only permissions (the umask closes the race before chmod)."""
    old = os.umask(0o177)
    try:
        listener = await anyio.create_unix_listener(path, mode=0o600)
    finally:
        os.umask(old)
    return listener


async def serve(
    listener: anyio.abc.SocketListener,
    handler: Handler,
    *,
    read_timeout: float = READ_TIMEOUT,
    write_timeout: float = WRITE_TIMEOUT,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Accept connections until cancelled; each one is served in its own task."""
    my_uid = os.getuid()

    async def on_connection(stream: anyio.abc.SocketStream) -> None:
        # One connection's failure must never reach the listener's task group: that would stop
        # the daemon serving everyone else.
        try:
            await serve_connection(stream)
        except Exception:
            log.exception("connection failed")

    async def serve_connection(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            raw = stream.extra(anyio.abc.SocketAttribute.raw_socket)
            uid = peer_uid(raw)
            if uid is not None and uid != my_uid:
                log.warning("refused connection from uid %s", uid)
                # Take (and drop) what the client sent first: closing with its request unread
                # would make its send fail with EPIPE instead of it reading our answer.
                with trio.move_on_after(min(read_timeout, 1.0)):
                    try:
                        await stream.receive(64 * 1024)
                    except (anyio.EndOfStream, anyio.BrokenResourceError):
                        return
                await _try_send(
                    stream,
                    protocol.error_from(
                        DaemonError("permission denied: connection from another user")
                    ),
                    write_timeout,
                )
                return
            await _serve_one(stream, handler, read_timeout, write_timeout)

    async with listener:
        task_status.started()
        await listener.serve(on_connection)


async def _serve_one(
    stream: anyio.abc.SocketStream, handler: Handler, read_timeout: float, write_timeout: float
) -> None:
    buffered = BufferedByteReceiveStream(stream)
    with trio.move_on_after(read_timeout) as scope:
        try:
            header = await buffered.receive_exactly(protocol.HEADER_SIZE)
        except (anyio.IncompleteRead, anyio.EndOfStream, anyio.BrokenResourceError):
            return  # connected and left: a liveness probe, nothing to answer
        try:
            length = protocol.decode_length(header)
        except ProtocolError as exc:
            await _try_send(stream, protocol.error_from(exc), write_timeout)
            return
        try:
            body = await buffered.receive_exactly(length)
        except (anyio.IncompleteRead, anyio.EndOfStream, anyio.BrokenResourceError):
            log.debug("client went away mid-frame")
            return
    if scope.cancelled_caught:
        log.debug("client too slow to send its request; closing")
        return
    try:
        request = protocol.parse_request(protocol.decode_body(body))
    except ProtocolError as exc:
        await _try_send(stream, protocol.error_from(exc), write_timeout)
        return
    response: Mapping[str, Any]
    try:
        response = await handler(request)
    except OjError as exc:
        response = protocol.error_from(exc)
    except Exception as exc:  # a bug must cost one request, never the daemon
        log.exception("request %s failed", request.get("type"))
        response = protocol.error(f"internal error: {type(exc).__name__}: {exc}")
    await _try_send(stream, response, write_timeout)


def _dumps(message: Mapping[str, Any]) -> bytes:
    """The same JSON as the stdlib's compact form, several times faster on big answers (a list
    of 1,000 pipelines: ≈ 3 ms with ``json``); int keys become strings as with ``json``."""
    return orjson.dumps(message, option=orjson.OPT_NON_STR_KEYS)


async def _try_send(
    stream: anyio.abc.SocketStream, message: Mapping[str, Any], timeout: float
) -> None:
    try:
        frame = protocol.encode_frame(message, dumps=_dumps)
    except (ProtocolError, TypeError) as exc:  # TypeError: not JSON (a bug); say so, once
        if isinstance(exc, TypeError):
            log.error("answer is not JSON: %s", exc)
            exc = ProtocolError(f"internal error: the answer is not JSON: {exc}")
        frame = protocol.encode_frame(protocol.error_from(exc))
    with trio.move_on_after(timeout):
        try:
            await stream.send(frame)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            log.debug("client went away before the answer")
