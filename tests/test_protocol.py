"""Frames, request validation and Error replies, without sockets; the message tables."""

from __future__ import annotations

import json
import struct
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oj_trio import errors, messages, protocol
from oj_trio.errors import (
    CorruptStateError,
    DaemonError,
    NotFoundError,
    OjError,
    ProtocolError,
    RunbookError,
    UsageError,
    WalError,
)
from oj_trio.messages import schema

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=20,
)


@given(st.dictionaries(st.text(), json_values, max_size=6), st.text(min_size=1))
def test_frame_round_trip(fields: dict[str, object], tag: str) -> None:
    message = {**fields, "type": tag}
    frame = protocol.encode_frame(message)
    length = protocol.decode_length(frame[:4])
    assert length == len(frame) - 4
    assert protocol.decode_body(frame[4:]) == message


def test_oversized_length_is_refused_before_reading_the_body() -> None:
    header = struct.pack(">I", protocol.MAX_FRAME + 1)
    with pytest.raises(ProtocolError, match=r"^Message too large: \d+ bytes \(max \d+\)$"):
        protocol.decode_length(header)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"\xff\xfe", "not valid UTF-8"),
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "must hold a JSON object"),
        (b'{"kind": "Ping"}', "no string 'type'"),
    ],
)
def test_malformed_bodies(body: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        protocol.decode_body(body)


def test_unknown_request_type() -> None:
    with pytest.raises(ProtocolError, match=r"^unknown request type: Nope$"):
        protocol.parse_request({"type": "Nope"})


def test_unknown_query_type() -> None:
    with pytest.raises(ProtocolError, match=r"^unknown query type: Nope$"):
        protocol.parse_request(protocol.query("Nope"))


def test_missing_and_mistyped_fields() -> None:
    with pytest.raises(ProtocolError, match="missing field 'version'"):
        protocol.parse_request({"type": "Hello"})
    with pytest.raises(ProtocolError, match="field 'kill' must be bool"):
        protocol.parse_request({"type": "Shutdown", "kill": "yes"})
    with pytest.raises(ProtocolError, match="field 'lines' must be int"):
        protocol.parse_request(protocol.query("GetPipelineLogs", id="x", lines=True))
    with pytest.raises(ProtocolError, match="unknown field"):
        protocol.parse_request({"type": "Ping", "extra": 1})


def test_request_drops_none_fields() -> None:
    assert protocol.request("Shutdown", kill=None) == {"type": "Shutdown"}
    assert protocol.parse_request(protocol.request("Shutdown", kill=True))["kill"] is True


def test_encode_is_compact_json() -> None:
    frame = protocol.encode_frame({"type": "Ping"})
    assert json.loads(frame[4:]) == {"type": "Ping"}
    assert b" " not in frame[4:]


# -- the schema is derived from the TypedDict shapes -------------------------------------------------

#: The hand-written table the shapes replaced, kept here verbatim as the regression pin: deriving
#: the schema from the shapes must not loosen or tighten any request.
_S, _B, _I, _L, _D = str, bool, int, list, dict
FORMER_REQUESTS = {
    "Ping": {},
    "Hello": {"version": (_S, True)},
    "Status": {},
    "Shutdown": {"kill": (_B, False)},
    "Query": {"query": (_D, True)},
    "RunCommand": {
        "project_root": (_S, True),
        "invoke_dir": (_S, True),
        "namespace": (_S, True),
        "command": (_S, True),
        "args": (_L, False),
        "named_args": (_D, False),
        "help": (_B, False),
        "runbook": (_S, False),
    },
    "ListCommands": {"project_root": (_S, True)},
    "PipelineCancel": {"ids": (_L, True)},
    "PipelineResume": {"id": (_S, True), "message": (_S, False), "vars": (_D, False)},
    "PipelinePrune": {"all": (_B, False), "failed": (_B, False), "dry_run": (_B, False)},
    "WorkspaceDrop": {"id": (_S, True)},
    "WorkspaceDropFailed": {},
    "WorkspaceDropAll": {},
    "WorkspacePrune": {"all": (_B, False), "dry_run": (_B, False)},
}
FORMER_QUERIES = {
    "ListPipelines": {},
    "GetPipeline": {"id": (_S, True)},
    "GetPipelineLogs": {"id": (_S, True), "lines": (_I, False), "offset": (_I, False)},
    "WaitPipelines": {
        "ids": (_L, True),
        "all": (_B, False),
        "after_seq": (_I, False),
        "timeout_ms": (_I, False),
    },
    "ListWorkspaces": {},
    "GetWorkspace": {"id": (_S, True)},
    "StatusOverview": {},
}


def test_schema_derived_from_shapes_matches_the_former_table() -> None:
    """The requests that existed before the shapes keep exactly their schema (later nouns add
    requests of their own)."""
    requests, queries = schema.request_schemas(), schema.query_schemas()
    assert {tag: requests[tag] for tag in FORMER_REQUESTS} == FORMER_REQUESTS
    assert {tag: queries[tag] for tag in FORMER_QUERIES} == FORMER_QUERIES


def test_every_response_shape_carries_its_tag() -> None:
    """Response shapes are not validated at run time, but each names its wire tag the same way,
    and ``<Tag>Response`` is the naming rule."""
    tags = {
        "Pong", "Hello", "Status", "ShuttingDown", "Error", "Ok", "CommandStarted", "CommandHelp",
        "CommandList", "PipelinesCancelled", "PipelinesPruned", "Pipelines", "Pipeline",
        "PipelineLogs", "PipelineStates", "WorkspacesDropped", "WorkspacesPruned", "Workspaces",
        "Workspace", "StatusOverview", "QueuePushed", "QueueDropped", "QueueRetried",
        "QueuePruned", "Queues", "QueueItems", "WorkerStarted", "WorkersStopped",
        "WorkerResized", "Workers", "CronsStarted", "CronsStopped", "CronFired", "Crons",
        "AgentSignal", "AgentSent", "Agents", "AgentLogs",
        "AgentsPruned", "Sessions", "SessionPeek",
    }  # fmt: skip
    shapes = [
        getattr(messages, name)
        for name in dir(messages)
        if name.endswith("Response") and name != "Response"
    ]
    for shape in shapes:
        assert shape.__name__ == f"{schema.tag_of(shape)}Response"
    assert {schema.tag_of(shape) for shape in shapes} == tags


def test_shape_with_an_unknown_annotation_is_refused_when_compiled() -> None:
    class Odd(dict):  # type: ignore[type-arg]
        __annotations__ = {"type": 'Literal["Odd"]', "when": "datetime"}

    with pytest.raises(TypeError, match=r"Odd\.when: unsupported field annotation"):
        schema._compile(Odd)

    class Untagged(dict):  # type: ignore[type-arg]
        __annotations__ = {"type": "str"}

    with pytest.raises(TypeError, match="Literal"):
        schema._compile(Untagged)


@pytest.mark.parametrize("value", [None, "x"])
def test_optional_fields_may_be_null_or_absent_but_not_mistyped(value: object) -> None:
    request: dict[str, object] = {
        "type": "RunCommand",
        "project_root": "/",
        "invoke_dir": "/",
        "namespace": "n",
        "command": "c",
        "runbook": value,
    }
    assert protocol.parse_request(request) is request
    with pytest.raises(ProtocolError, match="field 'args' must be list"):
        protocol.parse_request({**request, "args": "a b"})
    with pytest.raises(ProtocolError, match="missing field 'command'"):
        protocol.parse_request({**request, "command": None})


def test_query_fields_are_checked_against_the_query_shape() -> None:
    assert protocol.parse_request(protocol.query("WaitPipelines", ids=["a"], timeout_ms=5))
    with pytest.raises(ProtocolError, match="query WaitPipelines is missing field 'ids'"):
        protocol.parse_request(protocol.query("WaitPipelines"))
    with pytest.raises(ProtocolError, match=r"query GetPipeline has unknown field\(s\): idd"):
        protocol.parse_request(protocol.query("GetPipeline", id="x", idd="y"))


def test_import_does_not_build_the_schema() -> None:
    """The CLI never validates requests: importing and using the protocol's builders must not
    import the shapes at all, and importing the schema module must not compile the tables."""
    code = (
        "import sys\n"
        "import oj_trio.protocol as p\n"
        "p.request('Ping'); p.error('x'); p.exception_from(p.error('x'))\n"
        "assert not [m for m in sys.modules if m.startswith('oj_trio.messages')]\n"
        "import oj_trio.messages.schema as s\n"
        "assert s._schemas.cache_info().currsize == 0, s._schemas.cache_info()\n"
        "assert 'inspect' not in sys.modules\n"
        "p.parse_request({'type': 'Ping'})\n"
        "assert s._schemas.cache_info().currsize == 1, s._schemas.cache_info()\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_every_shape_is_re_exported_and_every_request_and_query_is_in_its_table() -> None:
    """Adding a verb means adding its shapes to ``messages/<noun>.py`` *and* to the tables in
    ``messages/__init__.py``; forgetting the second would make the daemon refuse the request."""
    from oj_trio.messages import commands, daemon, pipelines, status, workspaces

    for module in (daemon, commands, pipelines, status, workspaces):
        shapes = {
            name: value
            for name, value in vars(module).items()
            if isinstance(value, type) and value.__module__ == module.__name__
        }
        assert shapes, module
        for name, shape in shapes.items():
            assert getattr(messages, name) is shape, name
            if name.endswith("Request"):
                assert shape in messages.REQUESTS, name
            elif name.endswith("Query"):
                assert shape in messages.QUERIES, name


# -- Error replies keep the exception's kind -----------------------------------------------------

ALL_KINDS = [
    (OjError, "error", 1),
    (UsageError, "usage", 2),
    (NotFoundError, "not_found", 1),
    (RunbookError, "runbook", 1),
    (ProtocolError, "protocol", 1),
    (DaemonError, "daemon", 1),
    (WalError, "wal", 1),
    (CorruptStateError, "corrupt_state", 1),
]


def _over_the_wire(reply: dict[str, object]) -> OjError:
    frame = protocol.encode_frame(reply)
    return protocol.exception_from(protocol.decode_body(frame[4:]))


@pytest.mark.parametrize(("cls", "kind", "exit_code"), ALL_KINDS, ids=[k for _, k, _ in ALL_KINDS])
def test_error_round_trip_per_kind(cls: type[OjError], kind: str, exit_code: int) -> None:
    reply = protocol.error_from(cls("it went wrong: 'x'"))
    assert reply == {
        "type": "Error",
        "message": "it went wrong: 'x'",
        "kind": kind,
        "exit_code": exit_code,
    }
    back = _over_the_wire(dict(reply))
    assert type(back) is cls
    assert str(back) == "it went wrong: 'x'"
    assert back.exit_code == exit_code


def test_every_error_class_has_its_own_kind() -> None:
    classes = [
        value
        for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, OjError)
    ]
    assert sorted(c.__name__ for c in classes) == sorted(c.__name__ for c, _, _ in ALL_KINDS)
    assert {c.kind: c for c in classes} == errors.KINDS
    assert len({c.kind for c in classes}) == len(classes)


def test_runbook_error_keeps_its_located_text_once() -> None:
    located = RunbookError(
        "unknown step 'tset'", path=".oj/runbooks/b.hcl", entity="pipeline.build", line=7, column=3
    )
    text = ".oj/runbooks/b.hcl:7:3: pipeline.build: unknown step 'tset'"
    assert str(located) == text
    back = _over_the_wire(dict(protocol.error_from(located)))
    assert type(back) is RunbookError
    assert str(back) == text
    assert back.path is None and back.line is None  # the location lives in the text only


def test_subclass_from_elsewhere_travels_as_its_parent() -> None:
    class ArgumentLike(OjError):
        pass

    class StricterUsage(UsageError):
        exit_code = 64

    assert protocol.error_from(ArgumentLike("m"))["kind"] == "error"
    back = _over_the_wire(dict(protocol.error_from(StricterUsage("m"))))
    assert (type(back), back.exit_code) == (UsageError, 64)


def test_error_with_only_a_message_is_the_base_kind() -> None:
    assert protocol.error("boom") == {
        "type": "Error",
        "message": "boom",
        "kind": "error",
        "exit_code": 1,
    }
    assert protocol.error("bad", kind="usage", exit_code=2)["kind"] == "usage"


@pytest.mark.parametrize(
    ("reply", "cls", "exit_code"),
    [
        # an older daemon: no kind, no exit code
        ({"type": "Error", "message": "m"}, OjError, 1),
        # a newer daemon's kind this client does not know: the code it sends still counts
        ({"type": "Error", "message": "m", "kind": "quota", "exit_code": 5}, OjError, 5),
        ({"type": "Error", "message": "m", "kind": "not_found"}, NotFoundError, 1),
        # implausible exit codes fall back to the class's own
        ({"type": "Error", "message": "m", "kind": "usage", "exit_code": 0}, UsageError, 2),
        ({"type": "Error", "message": "m", "kind": "usage", "exit_code": True}, UsageError, 2),
        ({"type": "Error", "message": "m", "kind": "usage", "exit_code": 300}, UsageError, 2),
        ({"type": "Error", "message": "m", "kind": "usage", "exit_code": "3"}, UsageError, 2),
        ({"type": "Error", "message": "m", "kind": ["usage"]}, OjError, 1),
    ],
)
def test_error_replies_from_other_versions(
    reply: dict[str, object], cls: type[OjError], exit_code: int
) -> None:
    back = _over_the_wire(reply)
    assert (type(back), str(back), back.exit_code) == (cls, "m", exit_code)


def test_error_reply_without_message() -> None:
    assert str(protocol.exception_from({"type": "Error"})) == "unknown daemon error"
