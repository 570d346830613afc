"""The daemon itself: ping, version handshake, status, shutdown, the ``Query`` envelope; and the
replies any noun may give (``Error``, ``Ok``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._shape import TypedDict

if TYPE_CHECKING:
    from typing import Literal, NotRequired

    from . import Query


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
