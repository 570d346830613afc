"""Queues: push (one item or a batch), drop, retry, prune; list queues, list items.

Every request names the project (``project_root``, where the runbook defining the queue is
found) and its ``namespace`` (items are keyed ``namespace/queue``, SPEC §4.2).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._shape import TypedDict

if TYPE_CHECKING:
    from typing import Literal, NotRequired


class QueuePushRequest(TypedDict):
    """One item (``data``) or a batch (``items``, one object per line of ``--file``, with
    ``lines`` giving each item's line number for error messages). Values that are not strings are
    stored as their JSON text. Exactly one of ``data`` and ``items``."""

    type: Literal["QueuePush"]
    project_root: str
    namespace: str
    queue: str
    data: NotRequired[dict[str, Any]]
    items: NotRequired[list[dict[str, Any]]]
    lines: NotRequired[list[int]]


class QueuePushedResponse(TypedDict):
    type: Literal["QueuePushed"]
    queue: str
    item_ids: list[str]


class QueueDropRequest(TypedDict):
    type: Literal["QueueDrop"]
    project_root: str
    namespace: str
    queue: str
    item_id: str  #: full id or unique prefix


class QueueDroppedResponse(TypedDict):
    type: Literal["QueueDropped"]
    queue: str
    item_id: str


class QueueRetryRequest(TypedDict):
    """One failed or dead item (``item_id``), or every dead one (``all_dead``)."""

    type: Literal["QueueRetry"]
    project_root: str
    namespace: str
    queue: str
    item_id: NotRequired[str]
    all_dead: NotRequired[bool]


class QueueRetriedResponse(TypedDict):
    type: Literal["QueueRetried"]
    queue: str
    item_ids: list[str]


class QueuePruneRequest(TypedDict):
    """Completed and dead items that ended more than 12 h ago (or all of them with ``all``)."""

    type: Literal["QueuePrune"]
    project_root: str
    namespace: str
    queue: str
    all: NotRequired[bool]
    dry_run: NotRequired[bool]


class QueuePrunedResponse(TypedDict):
    type: Literal["QueuePruned"]
    queue: str
    pruned: list[QueueItemView]
    skipped: int


class ListQueuesQuery(TypedDict):
    """The queues the project's runbooks define (and any persisted queue with items in
    ``namespace``), with counts."""

    type: Literal["ListQueues"]
    project_root: str
    namespace: str


class QueueSummary(TypedDict):
    name: str
    namespace: str
    type: str  #: persisted | external
    pending: int
    active: int
    failed: int  #: failed and waiting for a retry
    dead: int
    completed: int
    workers: list[str]
    error: str | None  #: external: the last failing or malformed `list`/`take`, if any


class QueuesResponse(TypedDict):
    type: Literal["Queues"]
    queues: list[QueueSummary]


class ListQueueItemsQuery(TypedDict):
    type: Literal["ListQueueItems"]
    project_root: str
    namespace: str
    queue: str
    status: NotRequired[str]
    after_seq: NotRequired[int]  #: long poll: answer once state moved past this seq ...
    timeout_ms: NotRequired[int]  #: ... or after this long


class QueueItemView(TypedDict):
    """One item (reference §6.2 ``QueueItemSummary``)."""

    id: str
    queue: str
    namespace: str
    status: str
    data: dict[str, str]
    worker_name: str | None
    pushed_at_epoch_ms: int
    failure_count: int
    error: str | None
    #: A queue shared by several daemons: what happened to the item (claimed by which daemon,
    #: interrupted by an expired lease, completed, …), oldest first.
    history: NotRequired[list[str]]


class QueueItemsResponse(TypedDict):
    type: Literal["QueueItems"]
    queue: str
    items: list[QueueItemView]
    seq: int  #: the state's seq the answer reflects (for the next long poll)
