"""The wire protocol between `oj` and `ojd`, shared by both sides, with no I/O.

A frame is a 4-byte big-endian length followed by that many bytes of UTF-8 JSON. Every message
is a JSON object tagged by ``"type"`` (PascalCase names from reference §6.2). One request and one
response per connection.

**One source of truth.** Every request, query and response is a ``TypedDict`` below, grouped by
noun (daemon, commands, pipelines, workspaces, status). mypy checks the code that builds or reads
them; the daemon's run-time validation (:func:`parse_request`) derives its ``{field: (type,
required)}`` table from the same class bodies, so a field is declared exactly once. The check is
as strict as the old hand-written table and no stricter: unknown fields are rejected (a typo in a
client fails loudly), required fields are required, a field holding ``null`` counts as absent,
``bool`` is never accepted as ``int``, and containers are checked as ``list``/``dict`` without
looking inside (handlers convert elements with ``str()`` where it matters). Responses are not
checked at run time; their shapes exist for mypy and for readers.

**Cheap to import, on purpose.** The CLI imports this module on every invocation and must stay
stdlib-only (attrs alone would cost more than the whole client budget). Real ``typing.TypedDict``
classes are not cheap: the metaclass runs ``typing._type_check`` on every annotation and, under
``from __future__ import annotations``, compiles each one into a ``ForwardRef``. Measured with
``python -X importtime`` (bytecode cached, median of 15): this module's own import costs ≈ 2.9 ms
with real TypedDicts, ≈ 0.6 ms as written (the former hand-written table: 0.13 ms), against
≈ 10 ms that `oj` spends in all beyond a minimal socket client (bench/RESULTS.md). So only
the type checker sees the real ``TypedDict``; at run time the shapes are plain ``dict``
subclasses whose ``__annotations__`` are the unevaluated strings, and :func:`_compile` reads
those strings, lazily, on the daemon side. Consequences: ``typing.is_typeddict()`` is false at
run time, and run-time field types come from the small vocabulary in :data:`_FIELD_TYPES` (a new
spelling fails loudly when the table is first built; ``tests/test_protocol.py`` builds every
table). Real TypedDicts would not give a truthful ``__required_keys__`` here either: on Python
3.11 ``NotRequired`` inside a string annotation is not recognised at run time.

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
from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING, Any, cast

from .errors import OjError, ProtocolError, error_class

if TYPE_CHECKING:
    from typing import Literal, NotRequired, TypeAlias, TypedDict
else:
    # See the module docstring: the type checker gets typing.TypedDict, the run time a plain
    # dict subclass that keeps its annotations as strings.
    TypedDict = dict

#: Largest frame either side accepts. A request is a command line and a little JSON; a response
#: is at most a log tail or a list of pipelines, so 16 MiB is generous without letting a stray
#: length prefix make the daemon allocate gigabytes.
MAX_FRAME = 16 * 1024 * 1024

HEADER = struct.Struct(">I")
HEADER_SIZE = HEADER.size

#: Loose alias for a decoded message, for code that has not moved to the shapes below yet.
Message = dict[str, Any]


# == daemon =========================================================================================


class PingRequest(TypedDict):
    type: Literal["Ping"]


class HelloRequest(TypedDict):
    type: Literal["Hello"]
    version: str


class StatusRequest(TypedDict):
    type: Literal["Status"]


class ShutdownRequest(TypedDict):
    type: Literal["Shutdown"]
    kill: NotRequired[bool]


class QueryRequest(TypedDict):
    """The envelope of every query; ``query`` is one of the ``*Query`` shapes (see :data:`Query`)."""

    type: Literal["Query"]
    query: Query


class PongResponse(TypedDict):
    type: Literal["Pong"]


class HelloResponse(TypedDict):
    type: Literal["Hello"]
    version: str


class StatusResponse(TypedDict):
    type: Literal["Status"]
    version: str
    uptime_secs: int
    pid: int
    pipelines_active: int
    sessions_active: int
    orphan_count: int


class ShuttingDownResponse(TypedDict):
    type: Literal["ShuttingDown"]


class ErrorResponse(TypedDict):
    """A failed request. ``kind``/``exit_code`` are absent only in an older daemon's replies."""

    type: Literal["Error"]
    message: str
    kind: NotRequired[str]
    exit_code: NotRequired[int]


class OkResponse(TypedDict):
    type: Literal["Ok"]
    id: NotRequired[str]


# == commands =======================================================================================


class RunCommandRequest(TypedDict):
    type: Literal["RunCommand"]
    project_root: str
    invoke_dir: str
    namespace: str
    command: str
    args: NotRequired[list[str]]
    named_args: NotRequired[dict[str, str]]
    help: NotRequired[bool]
    runbook: NotRequired[str]


class ListCommandsRequest(TypedDict):
    type: Literal["ListCommands"]
    project_root: str


class CommandStartedResponse(TypedDict):
    type: Literal["CommandStarted"]
    pipeline_id: str
    pipeline_name: str


class CommandHelpResponse(TypedDict):
    type: Literal["CommandHelp"]
    text: str


class CommandListResponse(TypedDict):
    type: Literal["CommandList"]
    usage: str


# == pipelines ======================================================================================


class PipelineCancelRequest(TypedDict):
    type: Literal["PipelineCancel"]
    ids: list[str]


class PipelineResumeRequest(TypedDict):
    type: Literal["PipelineResume"]
    id: str
    message: NotRequired[str]
    vars: NotRequired[dict[str, str]]


class PipelinePruneRequest(TypedDict):
    type: Literal["PipelinePrune"]
    all: NotRequired[bool]
    failed: NotRequired[bool]
    dry_run: NotRequired[bool]


class ListPipelinesQuery(TypedDict):
    type: Literal["ListPipelines"]


class GetPipelineQuery(TypedDict):
    type: Literal["GetPipeline"]
    id: str


class GetPipelineLogsQuery(TypedDict):
    type: Literal["GetPipelineLogs"]
    id: str
    lines: NotRequired[int]
    offset: NotRequired[int]


class WaitPipelinesQuery(TypedDict):
    type: Literal["WaitPipelines"]
    ids: list[str]
    all: NotRequired[bool]
    after_seq: NotRequired[int]
    timeout_ms: NotRequired[int]


class PipelineSummary(TypedDict):
    """One pipeline in a list (``views.pipeline_summary``)."""

    id: str
    name: str
    kind: str
    step: str
    step_status: str
    terminal: bool
    namespace: str
    updated_at_ms: int
    created_at_ms: int


class StepRecordDetail(TypedDict):
    name: str
    started_at_ms: int
    finished_at_ms: int | None
    outcome: str
    detail: str | None
    agent_id: str | None
    agent_name: str | None


class PipelineDetail(TypedDict):
    """One pipeline with its history (``views.pipeline_detail``)."""

    id: str
    name: str
    kind: str
    step: str
    step_status: str
    terminal: bool
    namespace: str
    updated_at_ms: int
    vars: dict[str, str]
    workspace_path: str | None
    session_id: str | None
    error: str | None
    steps: list[StepRecordDetail]
    agents: list[dict[str, Any]]
    created_at_ms: int


class PrunedPipeline(TypedDict):
    id: str
    name: str
    step: str


class PipelinesCancelledResponse(TypedDict):
    type: Literal["PipelinesCancelled"]
    cancelled: list[str]
    already_terminal: list[str]
    not_found: list[str]


class PipelinesPrunedResponse(TypedDict):
    type: Literal["PipelinesPruned"]
    pruned: list[PrunedPipeline]
    skipped: int


class PipelinesResponse(TypedDict):
    type: Literal["Pipelines"]
    pipelines: list[PipelineSummary]


class PipelineResponse(TypedDict):
    type: Literal["Pipeline"]
    pipeline: PipelineDetail | None


class PipelineLogsResponse(TypedDict):
    type: Literal["PipelineLogs"]
    log_path: str
    lines: list[str]
    size: int


class PipelineStatesResponse(TypedDict):
    """``WaitPipelines``' answer: one detail (or null) per id asked, and the seq it reflects."""

    type: Literal["PipelineStates"]
    seq: int
    pipelines: list[PipelineDetail | None]


# == workspaces =====================================================================================


class WorkspaceDropRequest(TypedDict):
    type: Literal["WorkspaceDrop"]
    id: str


class WorkspaceDropFailedRequest(TypedDict):
    type: Literal["WorkspaceDropFailed"]


class WorkspaceDropAllRequest(TypedDict):
    type: Literal["WorkspaceDropAll"]


class WorkspacePruneRequest(TypedDict):
    type: Literal["WorkspacePrune"]
    all: NotRequired[bool]
    dry_run: NotRequired[bool]


class ListWorkspacesQuery(TypedDict):
    type: Literal["ListWorkspaces"]


class GetWorkspaceQuery(TypedDict):
    type: Literal["GetWorkspace"]
    id: str


class WorkspaceSummary(TypedDict):
    """One workspace in a list (``views.workspace_summary``); namespace from its owner."""

    id: str
    path: str
    branch: str | None
    status: str
    created_at_ms: int
    namespace: str


class WorkspaceDetail(TypedDict):
    id: str
    path: str
    branch: str | None
    owner: str | None
    status: str
    created_at_ms: int


class RemovedWorkspace(TypedDict):
    """A workspace a drop or prune removed (or, with ``dry_run``, would remove)."""

    id: str
    path: str
    branch: str | None


class WorkspacesDroppedResponse(TypedDict):
    type: Literal["WorkspacesDropped"]
    dropped: list[RemovedWorkspace]


class WorkspacesPrunedResponse(TypedDict):
    type: Literal["WorkspacesPruned"]
    pruned: list[RemovedWorkspace]
    skipped: int


class WorkspacesResponse(TypedDict):
    type: Literal["Workspaces"]
    workspaces: list[WorkspaceSummary]


class WorkspaceResponse(TypedDict):
    type: Literal["Workspace"]
    workspace: WorkspaceDetail | None


# == status =========================================================================================


class StatusOverviewQuery(TypedDict):
    type: Literal["StatusOverview"]


class StatusPipeline(TypedDict):
    id: str
    name: str
    kind: str
    step: str
    step_status: str
    elapsed_ms: int
    waiting_reason: NotRequired[str | None]


class NamespaceStatus(TypedDict):
    """One namespace with something live (``views.status_overview``). Workers, queues and
    agents do not exist yet; their lists are always empty."""

    namespace: str
    active_pipelines: list[StatusPipeline]
    escalated_pipelines: list[StatusPipeline]
    workers: list[dict[str, Any]]
    queues: list[dict[str, Any]]
    active_agents: list[dict[str, Any]]


class StatusOverviewResponse(TypedDict):
    type: Literal["StatusOverview"]
    uptime_secs: int
    namespaces: list[NamespaceStatus]


# == the tables ======================================================================================

#: Every request the daemon accepts. The tag of each is its ``type: Literal[...]`` annotation.
REQUESTS = (
    PingRequest,
    HelloRequest,
    StatusRequest,
    ShutdownRequest,
    QueryRequest,
    RunCommandRequest,
    ListCommandsRequest,
    PipelineCancelRequest,
    PipelineResumeRequest,
    PipelinePruneRequest,
    WorkspaceDropRequest,
    WorkspaceDropFailedRequest,
    WorkspaceDropAllRequest,
    WorkspacePruneRequest,
)

#: Every query a ``Query`` request may carry.
QUERIES = (
    ListPipelinesQuery,
    GetPipelineQuery,
    GetPipelineLogsQuery,
    WaitPipelinesQuery,
    ListWorkspacesQuery,
    GetWorkspaceQuery,
    StatusOverviewQuery,
)

Request: TypeAlias = (
    PingRequest
    | HelloRequest
    | StatusRequest
    | ShutdownRequest
    | QueryRequest
    | RunCommandRequest
    | ListCommandsRequest
    | PipelineCancelRequest
    | PipelineResumeRequest
    | PipelinePruneRequest
    | WorkspaceDropRequest
    | WorkspaceDropFailedRequest
    | WorkspaceDropAllRequest
    | WorkspacePruneRequest
)
Query: TypeAlias = (
    ListPipelinesQuery
    | GetPipelineQuery
    | GetPipelineLogsQuery
    | WaitPipelinesQuery
    | ListWorkspacesQuery
    | GetWorkspaceQuery
    | StatusOverviewQuery
)
#: Everything the daemon answers with; a handler is typed ``-> Response`` (or a member).
Response: TypeAlias = (
    PongResponse
    | HelloResponse
    | StatusResponse
    | ShuttingDownResponse
    | ErrorResponse
    | OkResponse
    | CommandStartedResponse
    | CommandHelpResponse
    | CommandListResponse
    | PipelinesCancelledResponse
    | PipelinesPrunedResponse
    | PipelinesResponse
    | PipelineResponse
    | PipelineLogsResponse
    | PipelineStatesResponse
    | WorkspacesDroppedResponse
    | WorkspacesPrunedResponse
    | WorkspacesResponse
    | WorkspaceResponse
    | StatusOverviewResponse
)


# == run-time schema, derived from the shapes ========================================================

#: ``{field: (python type, required)}``, what :func:`_check_fields` checks a message against.
Schema = dict[str, tuple[type, bool]]

#: The annotation spellings request and query fields may use, and the run-time type each checks.
_FIELD_TYPES: dict[str, type] = {
    "str": str,
    "bool": bool,
    "int": int,
    "object": object,
    "Query": dict,
}
#: Generic containers, matched by their head: ``list[str]`` is checked as a list (elements are not).
_CONTAINERS: dict[str, type] = {"list": list, "dict": dict}


def _annotations(shape: type) -> dict[str, str]:
    """A shape's field annotations as source text, bases first (a shape may extend another)."""
    import inspect  # daemon side only, where it is imported anyway; the CLI never gets here

    fields: dict[str, str] = {}
    for klass in reversed(shape.__mro__):
        for name, annotation in inspect.get_annotations(klass).items():
            # a string under `from __future__ import annotations`; a ForwardRef should the class
            # ever be a real TypedDict; the text is what counts.
            fields[name] = str(getattr(annotation, "__forward_arg__", annotation))
    return fields


def _unwrap(annotation: str, wrapper: str) -> str | None:
    prefix = wrapper + "["
    if annotation.startswith(prefix) and annotation.endswith("]"):
        return annotation[len(prefix) : -1].strip()
    return None


def tag_of(shape: type) -> str:
    """The wire tag of a shape: the string in its ``type: Literal["<Tag>"]`` annotation.

    Raises:
        TypeError: the shape has no such annotation.
    """
    literal = _unwrap(_annotations(shape).get("type", ""), "Literal")
    if literal is None or len(literal) < 2 or literal[0] not in "'\"" or literal[-1] != literal[0]:
        raise TypeError(f"{shape.__name__}: 'type' must be annotated Literal[\"<Tag>\"]")
    return literal[1:-1]


def _compile(shape: type) -> tuple[str, Schema]:
    """A request or query shape's tag and field schema.

    Raises:
        TypeError: the shape uses an annotation outside :data:`_FIELD_TYPES` or has no
            ``Literal`` tag: a programming error, caught by the protocol unit tests.
    """
    schema: Schema = {}
    for name, annotation in _annotations(shape).items():
        if name == "type":
            continue
        inner = _unwrap(annotation, "NotRequired")
        head, generic, _ = (annotation if inner is None else inner).partition("[")
        ftype = _CONTAINERS.get(head) if generic else _FIELD_TYPES.get(head)
        if ftype is None:
            raise TypeError(f"{shape.__name__}.{name}: unsupported field annotation {annotation!r}")
        schema[name] = (ftype, inner is None)
    return tag_of(shape), schema


@cache
def _schemas(shapes: tuple[type, ...]) -> dict[str, Schema]:
    """tag -> schema for a table of shapes, built once, on first use (the daemon side)."""
    table: dict[str, Schema] = {}
    for shape in shapes:
        tag, schema = _compile(shape)
        if tag in table:
            raise TypeError(f"two shapes are tagged {tag!r}")
        table[tag] = schema
    return table


def request_schemas() -> dict[str, Schema]:
    """tag -> field schema of every request in :data:`REQUESTS`."""
    return _schemas(REQUESTS)


def query_schemas() -> dict[str, Schema]:
    """tag -> field schema of every query in :data:`QUERIES`."""
    return _schemas(QUERIES)


# == frames ==========================================================================================


def encode_frame(message: Mapping[str, Any]) -> bytes:
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
    """Validate a decoded request against :data:`REQUESTS` (and :data:`QUERIES` for ``Query``)."""
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
