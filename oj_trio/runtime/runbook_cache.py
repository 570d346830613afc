"""Runbooks for the runtime: by content hash for running pipelines, from disk for new ones.

A pipeline runs the runbook it was created from, stored in state under its content hash
(``runbook:loaded``), so an edit to the file never changes a pipeline mid-run and a restart
finds the exact definition again. Loading from disk goes through one thread at a time: the
loader caches by file stamp, and a burst of requests on a cold cache would otherwise parse the
same file (and build the HCL parser) once per request, all at once. Once the project's files are
cached and unchanged, a lookup is a few ``stat`` calls and runs inline (no thread, no lock).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import trio

from .. import events as ev
from ..errors import OjError
from ..pipeline_setup import shell_command_runbook
from ..runbook.model import Command, Cron, Queue, Runbook, RunShell, Worker
from ..runbook.model import Pipeline as PipelineDef
from ..state import Pipeline
from ..store import Store

if TYPE_CHECKING:
    from ..runbook.loader import LoadedRunbook

#: Memo tables are cleared when they grow past this (runbook objects are few and long-lived).
_MEMO_LIMIT = 256

T = TypeVar("T")


class RunbookCache:
    """Decoded runbooks by hash, content hashes by object, and the loader's single thread."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._by_hash: dict[str, Runbook] = {}
        self._digests: dict[int, tuple[Runbook, str]] = {}
        self._shell: dict[tuple[int, str, str], tuple[Runbook, Runbook]] = {}
        self._load_lock = trio.Lock()

    # -- running pipelines -----------------------------------------------------------------------

    def runbook_for(self, p: Pipeline) -> Runbook:
        """The runbook ``p`` was created from, decoded once from state."""
        return self.by_hash(p.runbook_hash, f"of pipeline {p.id[:12]}")

    def by_hash(self, digest: str, owner: str = "") -> Runbook:
        """A runbook stored in state (``runbook:loaded``), decoded once."""
        runbook = self._by_hash.get(digest)
        if runbook is None:
            from ..runbook import runbook_from_json

            stored = self._store.state.runbooks.get(digest)
            if stored is None:
                of = f" {owner}" if owner else ""
                raise OjError(f"runbook {digest[:12]}{of} is not in state")
            runbook = runbook_from_json(stored.data)
            self._by_hash[digest] = runbook
        return runbook

    def pipeline_def(self, p: Pipeline) -> PipelineDef:
        definition = self.runbook_for(p).pipelines.get(p.kind)
        if definition is None:
            raise OjError(f"pipeline '{p.kind}' is not defined in its runbook")
        return definition

    # -- loading from a project ------------------------------------------------------------------

    async def find_command(
        self, root: Path, name: str, runbook_file: str | None
    ) -> tuple[Runbook, Command]:
        from ..runbook import find_command

        if runbook_file is None:
            return find_command(root, name, None, await self._loaded(root))
        return await self._load(root, lambda: find_command(root, name, runbook_file))

    async def _load(self, root: Path, fn: Callable[[], T]) -> T:
        """Run a loader call: inline when the project's files are memoised and unchanged (a few
        ``stat`` calls: cheaper than a thread hop, and pushes do not queue behind one lock),
        else in a thread, one at a time."""
        from ..runbook.loader import project_is_cached

        if project_is_cached(root):
            return fn()
        async with self._load_lock:
            return await trio.to_thread.run_sync(fn)

    async def _loaded(self, root: Path) -> list[LoadedRunbook]:
        """Every runbook file of the project: from memory while none changed (one directory
        walk and a ``stat`` per file, inline), else parsed in the loader's thread."""
        from ..runbook.loader import cached_project, load_project

        hit = cached_project(root)
        if hit is not None:
            return hit
        async with self._load_lock:
            return await trio.to_thread.run_sync(load_project, root)

    async def find_queue(self, root: Path, name: str) -> tuple[Runbook, Queue]:
        from ..runbook import find_queue

        return find_queue(root, name, await self._loaded(root))

    async def find_worker(self, root: Path, name: str) -> tuple[Runbook, Worker]:
        from ..runbook import find_worker

        return find_worker(root, name, await self._loaded(root))

    async def find_cron(self, root: Path, name: str) -> tuple[Runbook, Cron]:
        from ..runbook import find_cron

        return await self._load(root, lambda: find_cron(root, name))

    async def project(self, root: Path) -> list[Runbook]:
        """The project's valid runbooks (broken files are skipped, as ``oj run`` does)."""
        loaded = await self._loaded(root)
        return [item.runbook for item in loaded if item.ok and item.runbook is not None]

    async def list_commands(self, root: Path) -> str:
        """The project's commands, formatted as ``oj run`` lists them."""
        from ..runbook import format_command_listing, list_commands

        async with self._load_lock:
            commands = await trio.to_thread.run_sync(list_commands, root)
        return format_command_listing(commands)

    def digest(self, runbook: Runbook) -> str:
        """The runbook's content hash, memoised per object: the loader hands out the same
        object while the file is unchanged, and hashing costs a full serialisation."""
        from ..runbook import runbook_hash

        hit = self._digests.get(id(runbook))
        if hit is not None and hit[0] is runbook:
            return hit[1]
        if len(self._digests) > _MEMO_LIMIT:
            self._digests.clear()
        digest = runbook_hash(runbook)
        self._digests[id(runbook)] = (runbook, digest)
        self._by_hash.setdefault(digest, runbook)
        return digest

    def shell_runbook(self, runbook: Runbook, command: Command, run: RunShell, cwd: str) -> Runbook:
        """The one-step runbook of a shell command (see :func:`shell_command_runbook`),
        memoised so that repeated runs hash to the same stored runbook."""
        key = (id(runbook), command.name, cwd)
        hit = self._shell.get(key)
        if hit is not None and hit[0] is runbook:
            return hit[1]
        if len(self._shell) > _MEMO_LIMIT:
            self._shell.clear()
        synthesized = shell_command_runbook(runbook, command.name, run, cwd=cwd)
        self._shell[key] = (runbook, synthesized)
        return synthesized

    def load_events(self, runbook: Runbook) -> list[ev.EventBase]:
        """``runbook:loaded`` for ``runbook`` unless state already holds it."""
        from ..runbook import runbook_to_json

        digest = self.digest(runbook)
        if digest in self._store.state.runbooks:
            return []
        return [ev.RunbookLoaded(hash=digest, version=1, runbook=runbook_to_json(runbook))]
