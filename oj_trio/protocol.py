"""The wire protocol between `oj` and `ojd`, shared by both sides, with no I/O.

A frame is a 4-byte big-endian length followed by that many bytes of UTF-8 JSON. Every message
is a JSON object tagged by ``"type"`` (PascalCase names from reference §6.2). One request and one
response per connection.

This module is stdlib-only on purpose: the CLI imports it on every invocation, and attrs alone
would cost more than the whole client budget. Requests are therefore plain dicts, checked against
the small schema table :data:`REQUESTS` by :func:`parse_request` on the daemon side.
"""

from __future__ import annotations

import json
import struct
from typing import Any

from .errors import ProtocolError

#: Largest frame either side accepts. A request is a command line and a little JSON; a response
#: is at most a log tail or a list of pipelines, so 16 MiB is generous without letting a stray
#: length prefix make the daemon allocate gigabytes.
MAX_FRAME = 16 * 1024 * 1024

HEADER = struct.Struct(">I")
HEADER_SIZE = HEADER.size

Message = dict[str, Any]

# Field kinds used by the schema table below.
_STR = str
_BOOL = bool
_INT = int
_LIST = list
_DICT = dict
_ANY = object

#: request type -> {field: (python type, required)}. Unknown fields are rejected so that a typo
#: in a client fails loudly rather than being silently ignored.
REQUESTS: dict[str, dict[str, tuple[type, bool]]] = {
    "Ping": {},
    "Hello": {"version": (_STR, True)},
    "Status": {},
    "Shutdown": {"kill": (_BOOL, False)},
    "Query": {"query": (_DICT, True)},
    "RunCommand": {
        "project_root": (_STR, True),
        "invoke_dir": (_STR, True),
        "namespace": (_STR, True),
        "command": (_STR, True),
        "args": (_LIST, False),
        "named_args": (_DICT, False),
        "help": (_BOOL, False),
        "runbook": (_STR, False),
    },
    "ListCommands": {"project_root": (_STR, True)},
    "PipelineCancel": {"ids": (_LIST, True)},
    "PipelineResume": {
        "id": (_STR, True),
        "message": (_STR, False),
        "vars": (_DICT, False),
    },
    "PipelinePrune": {
        "all": (_BOOL, False),
        "failed": (_BOOL, False),
        "dry_run": (_BOOL, False),
    },
    "WorkspaceDrop": {"id": (_STR, True)},
    "WorkspaceDropFailed": {},
    "WorkspaceDropAll": {},
    "WorkspacePrune": {"all": (_BOOL, False), "dry_run": (_BOOL, False)},
}

QUERIES: dict[str, dict[str, tuple[type, bool]]] = {
    "ListPipelines": {},
    "GetPipeline": {"id": (_STR, True)},
    "GetPipelineLogs": {"id": (_STR, True), "lines": (_INT, False), "offset": (_INT, False)},
    "WaitPipelines": {
        "ids": (_LIST, True),
        "all": (_BOOL, False),
        "after_seq": (_INT, False),
        "timeout_ms": (_INT, False),
    },
    "ListWorkspaces": {},
    "GetWorkspace": {"id": (_STR, True)},
    "StatusOverview": {},
}


def encode_frame(message: Message) -> bytes:
    """Serialize one message to a length-prefixed frame.

    Raises:
        ProtocolError: if the encoded message is larger than :data:`MAX_FRAME`.
    """
    body = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    if len(body) > MAX_FRAME:
        raise ProtocolError(f"Message too large: {len(body)} bytes (max {MAX_FRAME})")
    return HEADER.pack(len(body)) + body


def decode_length(header: bytes) -> int:
    """Read the length prefix; refuse anything over the limit before a byte of body is read."""
    if len(header) != HEADER_SIZE:
        raise ProtocolError(f"truncated frame header ({len(header)} of {HEADER_SIZE} bytes)")
    (length,) = HEADER.unpack(header)
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


def _check_fields(
    kind: str, tag: str, message: Message, schema: dict[str, tuple[type, bool]]
) -> None:
    for field, (ftype, required) in schema.items():
        if field not in message or message[field] is None:
            if required:
                raise ProtocolError(f"{kind} {tag} is missing field '{field}'")
            continue
        value = message[field]
        # bool is an int subclass; keep the two apart so `true` is never a line count.
        if (ftype is int and isinstance(value, bool)) or not isinstance(value, ftype):
            raise ProtocolError(f"{kind} {tag} field '{field}' must be {ftype.__name__}")
    extra = set(message) - set(schema) - {"type"}
    if extra:
        raise ProtocolError(f"{kind} {tag} has unknown field(s): {', '.join(sorted(extra))}")


def parse_request(message: Message) -> Message:
    """Validate a decoded request against :data:`REQUESTS` (and :data:`QUERIES` for ``Query``)."""
    tag = message["type"]
    schema = REQUESTS.get(tag)
    if schema is None:
        raise ProtocolError(f"unknown request type: {tag}")
    _check_fields("request", tag, message, schema)
    if tag == "Query":
        query = message["query"]
        qtag = query.get("type")
        if not isinstance(qtag, str) or qtag not in QUERIES:
            raise ProtocolError(f"unknown query type: {qtag}")
        _check_fields("query", qtag, query, QUERIES[qtag])
    return message


def request(tag: str, **fields: Any) -> Message:
    """Build a request, dropping fields left as None so optional ones stay optional."""
    return {"type": tag, **{k: v for k, v in fields.items() if v is not None}}


def query(tag: str, **fields: Any) -> Message:
    return request("Query", query=request(tag, **fields))


def error(message: str) -> Message:
    return {"type": "Error", "message": message}


def ok() -> Message:
    return {"type": "Ok"}
