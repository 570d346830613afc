"""The wire protocol between `oj` and `ojd`, shared by both sides, with no I/O.

A frame is a 4-byte big-endian length followed by that many bytes of UTF-8 JSON. Every message
is a JSON object tagged by ``"type"`` (PascalCase names from reference §6.2). One request and one
response per connection.

**The shapes are in** :mod:`oj_trio.messages`: every request, query and response is a
``TypedDict`` in ``messages/<noun>.py`` (daemon, commands, pipelines, workspaces, status), with
the tables ``REQUESTS``/``QUERIES`` and the ``Request``/``Query``/``Response`` unions in
``messages/__init__.py``. This module holds what both sides do with them: frames, the daemon's
run-time validation (:func:`parse_request`), the builders and the ``Error`` replies.
:func:`parse_request` checks a request against the ``{field: (type, required)}`` table that
:mod:`oj_trio.messages.schema` derives from the same class bodies, so a field is declared exactly
once. The check is as strict as the old hand-written table and no stricter: unknown fields are
rejected (a typo in a client fails loudly), required fields are required, a field holding
``null`` counts as absent, ``bool`` is never accepted as ``int``, and containers are checked as
``list``/``dict`` without looking inside (handlers convert elements with ``str()`` where it
matters). Responses are not checked at run time.

**Cheap to import, on purpose.** The CLI imports this module on every invocation and must stay
stdlib-only (attrs alone would cost more than the whole client budget). It does not import
:mod:`oj_trio.messages` at all at run time: the shapes are named here only under
``TYPE_CHECKING``, and :func:`parse_request`, which only the daemon calls, imports the schema
when first called. (Why the shapes are plain ``dict`` subclasses at run time, and what that
saved, is in :mod:`oj_trio.messages`.) ``tests/test_daemon_cli.py`` checks that the CLI's
import set holds no ``oj_trio.messages``.

**Errors keep their kind.** An ``Error`` reply is ``{"type": "Error", "message": …, "kind": …,
"exit_code": …}``: ``kind`` is the :class:`~oj_trio.errors.OjError` subclass's wire name and
``exit_code`` the exit status ``oj`` should end with. :func:`error_from` builds one from an
exception, :func:`exception_from` turns one back into the matching exception with the same text.
A reply without ``kind``/``exit_code`` (an older daemon) becomes a plain ``OjError``, exit 1;
an older client ignores the two extra fields.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, cast

from .errors import OjError, ProtocolError, error_class

if TYPE_CHECKING:
    # names only: at run time the CLI must not import oj_trio.messages (see the docstring)
    from .messages import ErrorResponse
    from .messages.schema import Schema

#: Largest frame either side accepts. A request is a command line and a little JSON; a response
#: is at most a log tail or a list of pipelines, so 16 MiB is generous without letting a stray
#: length prefix make the daemon allocate gigabytes.
MAX_FRAME = 16 * 1024 * 1024

HEADER = struct.Struct(">I")
HEADER_SIZE = HEADER.size

#: Loose alias for a decoded message, for code that has not moved to the shapes in
#: :mod:`oj_trio.messages` yet.
Message = dict[str, Any]


# == frames ==========================================================================================


def _json_bytes(message: Mapping[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def encode_frame(
    message: Mapping[str, Any], *, dumps: Callable[[Mapping[str, Any]], bytes] = _json_bytes
) -> bytes:
    """Serialize one message to a length-prefixed frame.

    ``dumps`` makes the compact UTF-8 JSON body: the stdlib's by default (the CLI imports
    nothing more), a faster equivalent in the daemon (:mod:`oj_trio.listener`).

    Raises:
        ProtocolError: if the encoded message is larger than :data:`MAX_FRAME`.
    """
    body = dumps(message)
    if len(body) > MAX_FRAME:
        raise ProtocolError(f"Message too large: {len(body)} bytes (max {MAX_FRAME})")
    return HEADER.pack(len(body)) + body


def decode_length(header: bytes) -> int:
    """Read the length prefix; refuse anything over the limit before a byte of body is read."""
    if len(header) != HEADER_SIZE:
        raise ProtocolError(f"truncated frame header ({len(header)} of {HEADER_SIZE} bytes)")
    length: int = HEADER.unpack(header)[0]
    if length > MAX_FRAME:
        raise ProtocolError(f"Message too large: {length} bytes (max {MAX_FRAME})")
    return length


def decode_body(body: bytes) -> Message:
    """Parse a frame body into a tagged JSON object."""
    try:
        message = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"frame is not valid UTF-8: {exc.reason}") from None
    except json.JSONDecodeError as exc:
        raise ProtocolError(f"frame is not valid JSON: {exc.msg} at char {exc.pos}") from None
    if not isinstance(message, dict):
        raise ProtocolError("frame must hold a JSON object")
    tag = message.get("type")
    if not isinstance(tag, str):
        raise ProtocolError("message has no string 'type' field")
    return message


# == request validation (daemon side) ================================================================


def _check_fields(what: str, tag: str, message: Mapping[str, Any], schema: Schema) -> None:
    for field, (ftype, required) in schema.items():
        if field not in message or message[field] is None:
            if required:
                raise ProtocolError(f"{what} {tag} is missing field '{field}'")
            continue
        value = message[field]
        # bool is an int subclass; keep the two apart so `true` is never a line count.
        if (ftype is int and isinstance(value, bool)) or not isinstance(value, ftype):
            raise ProtocolError(f"{what} {tag} field '{field}' must be {ftype.__name__}")
    extra = set(message) - set(schema) - {"type"}
    if extra:
        raise ProtocolError(f"{what} {tag} has unknown field(s): {', '.join(sorted(extra))}")


def parse_request(message: Message) -> Message:
    """Validate a decoded request against ``messages.REQUESTS`` (and ``messages.QUERIES`` for a
    ``Query``). Daemon side only: the schema is imported here, not at module level."""
    from .messages.schema import query_schemas, request_schemas

    tag = message["type"]
    schema = request_schemas().get(tag)
    if schema is None:
        raise ProtocolError(f"unknown request type: {tag}")
    _check_fields("request", tag, message, schema)
    if tag == "Query":
        query = message["query"]
        qtag = query.get("type")
        queries = query_schemas()
        if not isinstance(qtag, str) or qtag not in queries:
            raise ProtocolError(f"unknown query type: {qtag}")
        _check_fields("query", qtag, query, queries[qtag])
    return message


# == builders ========================================================================================


def request(tag: str, **fields: Any) -> Message:
    """Build a request, dropping fields left as None so optional ones stay optional."""
    return {"type": tag, **{k: v for k, v in fields.items() if v is not None}}


def query(tag: str, **fields: Any) -> Message:
    return request("Query", query=request(tag, **fields))


def _error_reply(message: str, kind: str, exit_code: int) -> ErrorResponse:
    return {"type": "Error", "message": message, "kind": kind, "exit_code": exit_code}


def error(message: str, *, kind: str = OjError.kind, exit_code: int = OjError.exit_code) -> Message:
    """An ``Error`` reply; with only a message it is the base kind, exit 1.

    Returns the loose :data:`Message` so that handlers still typed ``-> Message`` can return it;
    :func:`error_from` is the typed way (and the one that keeps an exception's kind).
    """
    return cast(Message, _error_reply(message, kind, exit_code))


def error_from(exc: OjError) -> ErrorResponse:
    """The ``Error`` reply for an exception: its text, its class's wire kind, its exit code."""
    return _error_reply(str(exc), exc.kind, exc.exit_code)


def exception_from(response: Mapping[str, Any]) -> OjError:
    """The exception an ``Error`` reply stands for, with the daemon-side text unchanged.

    The class comes from ``kind`` (unknown or missing: :class:`OjError`); ``exit_code``, when it
    is a plausible exit status (1-255), wins over the class default, so a newer daemon's kinds
    still end `oj` with the status the daemon meant.
    """
    exc = error_class(response.get("kind"))(str(response.get("message", "unknown daemon error")))
    code = response.get("exit_code")
    if isinstance(code, int) and not isinstance(code, bool) and 0 < code < 256:
        exc.exit_code = code
    return exc


def ok() -> Message:
    """An ``Ok`` reply (loose :data:`Message`, like :func:`error`; the typed shape is ``OkResponse``)."""
    return {"type": "Ok"}
