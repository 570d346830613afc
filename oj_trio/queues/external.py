"""An external queue: items live in someone else's system (an issue tracker, a CLI such as
``wok``); the runbook's ``list`` prints them as a JSON array and ``take`` claims one.

oj stores nothing about the items themselves, only which ones its workers are running
(``worker:item_dispatched``, committed with the items' pipelines), so an item that ``list``
still returns while its pipeline runs is never dispatched twice. A failing or malformed
``list`` or ``take`` is reported (it shows in ``oj queue list``), never raised into the worker.
Both commands run as ``bash -c "set -euo pipefail\\n<cmd>"`` in the worker's project root.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from .. import events as ev
from ..adapters.bash_eval import SnippetError, capture_bash
from ..runbook import templates
from ..runbook.model import Queue
from ..store import Store
from .backend import Claim, Claims, QueueError, WorkerRef, dispatched

log = logging.getLogger("oj.queues")

#: What a backend reports about its last attempt to read the queue: an error text, or None.
ErrorSink = Callable[[str | None], None]


def parse_listing(stdout: str) -> list[tuple[str, dict[str, str]]]:
    """``list``'s output as ``(id, data)`` pairs; data values that are not strings become JSON.

    Raises:
        QueueError: not a JSON array of objects, or an object without a string or number ``id``.
    """
    try:
        listed: Any = json.loads(stdout)
    except json.JSONDecodeError as exc:
        raise QueueError(f"list did not print JSON: {exc.msg} at char {exc.pos}") from None
    if not isinstance(listed, list):
        raise QueueError("list must print a JSON array")
    out: list[tuple[str, dict[str, str]]] = []
    for index, entry in enumerate(listed):
        if not isinstance(entry, dict):
            raise QueueError(f"list item {index} is not a JSON object")
        raw_id = entry.get("id")
        if isinstance(raw_id, bool) or not isinstance(raw_id, str | int):
            raise QueueError(f"list item {index} has no string or number 'id'")
        data = {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in entry.items()}
        out.append((str(raw_id), data))
    return out


class ExternalQueue:
    """The :class:`~oj_trio.queues.backend.QueueBackend` of one external queue."""

    def __init__(
        self,
        store: Store,
        queue: Queue,
        *,
        project_root: str,
        env: Mapping[str, str],
        report: ErrorSink,
    ) -> None:
        self.store = store
        self.queue = queue
        self.project_root = project_root
        self.env = env
        self.report = report
        self.poll_interval: float | None = float(queue.poll_seconds) if queue.poll_seconds else None

    async def _bash(self, command: str) -> str:
        return await capture_bash(
            f"set -euo pipefail\n{command}", cwd=self.project_root, env=self.env
        )

    async def claim(
        self,
        worker: WorkerRef,
        limit: int,
        in_flight: frozenset[str],
        new_pipeline_id: Callable[[], str],
    ) -> Claims:
        if limit <= 0:
            return Claims([])
        assert self.queue.list is not None and self.queue.take is not None
        try:
            listing = parse_listing(await self._bash(self.queue.list))
        except (SnippetError, QueueError) as exc:
            message = f"list failed: {exc}"
            self.report(message)
            raise QueueError(f"queue '{self.queue.name}': {message}") from None
        claims: list[Claim] = []
        take_error: str | None = None
        seen = set(in_flight)
        for item_id, data in listing:
            if item_id in seen:
                continue
            seen.add(item_id)
            context = {f"item.{k}": v for k, v in data.items()}
            command = templates.interpolate_shell(self.queue.take, context, env=self.env)
            try:
                await self._bash(command)
            except SnippetError as exc:
                take_error = f"take failed for item '{item_id}': {exc}"
                log.warning("queue %s: %s", self.queue.name, take_error)
                continue
            claims.append(Claim(item_id, data, new_pipeline_id()))
            if len(claims) == limit:
                break
        self.report(take_error)
        return dispatched(worker, claims)

    async def complete(self, worker: WorkerRef, pipeline_id: str, item_id: str) -> None:
        await self._settle(worker, pipeline_id)

    async def fail(
        self,
        worker: WorkerRef,
        pipeline_id: str,
        item_id: str,
        error: str,
        retry_at_ms: int | None,
    ) -> None:
        # The external system owns the item's fate (runbooks call e.g. `wok reopen` in a step).
        await self._settle(worker, pipeline_id)

    def outcome_events(
        self,
        worker: WorkerRef,
        pipeline_id: str,
        item_id: str,
        error: str | None,
        retry_at_ms: int | None,
    ) -> list[ev.EventBase]:
        return [self._settled(worker, pipeline_id)]

    async def release(self, worker: WorkerRef, pipeline_id: str, item_id: str) -> None:
        await self._settle(worker, pipeline_id)

    async def attach(self, worker: WorkerRef, pipeline_id: str, item_id: str) -> None:
        pass  # the claim is in this daemon's WAL: nothing to hold elsewhere

    async def recount(self, pipeline_id: str, item_id: str) -> None:
        pass  # the count is in this daemon's state already

    def failures(self, item_id: str) -> int:
        return 0

    async def _settle(self, worker: WorkerRef, pipeline_id: str) -> None:
        await self.store.commit(self._settled(worker, pipeline_id))

    def _settled(self, worker: WorkerRef, pipeline_id: str) -> ev.EventBase:
        return ev.WorkerItemSettled(
            worker_name=worker.name, pipeline_id=pipeline_id, namespace=worker.namespace
        )
