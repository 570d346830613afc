"""Loading runbook files and finding entities across a project's runbooks (reference §1.1).

Each file is read, parsed, built and validated on its own; a broken file is reported and
skipped, never fatal to the others. Results are memoised by (path, mtime, size), so the daemon
can look entities up on every request without re-parsing unchanged files.
"""

from __future__ import annotations

import os
import stat as stat_module
import time
from pathlib import Path

import attrs

from ..errors import NotFoundError, RunbookError
from ..project import RUNBOOK_DIR
from .build import build_runbook
from .diagnostics import Diagnostics
from .formats import format_of, leading_comment, read_entries
from .model import Command, Cron, Pipeline, Queue, Runbook, Worker
from .validate import validate_runbook


@attrs.frozen
class LoadedRunbook:
    """One file's outcome: the model (``None`` if unparseable), its errors and warnings."""

    path: str  #: as shown to the user
    runbook: Runbook | None
    errors: tuple[RunbookError, ...] = ()
    warnings: tuple[RunbookError, ...] = ()

    @property
    def ok(self) -> bool:
        return self.runbook is not None and not self.errors


def load_runbook_text(
    text: str, path: str, fmt: str | None = None, *, check_shell: bool = True
) -> LoadedRunbook:
    """Parse, build and validate one runbook's text; ``fmt`` defaults to ``path``'s extension."""
    fmt = fmt or format_of(path) or "toml"
    diag = Diagnostics(path, text)
    entries = read_entries(text, fmt, diag)
    if entries is None:
        return LoadedRunbook(path, None, tuple(diag.errors), ())
    short, long = leading_comment(text) if fmt != "json" else ("", "")
    runbook = build_runbook(path, entries, diag, short, long)
    validate_runbook(runbook, diag, check_shell=check_shell)
    return LoadedRunbook(path, runbook, tuple(diag.errors), tuple(diag.warnings))


_cache: dict[tuple[str, str], tuple[tuple[int, int], LoadedRunbook]] = {}


def load_runbook(
    file: Path, display: str | None = None, *, check_shell: bool = True
) -> LoadedRunbook:
    """Load one runbook file (memoised while the file is unchanged)."""
    shown = display if display is not None else str(file)
    try:
        stat = file.stat()
        key = (str(file.resolve()), shown)
        stamp = (stat.st_mtime_ns, stat.st_size)
        cached = _cache.get(key)
        if cached is not None and cached[0] == stamp and check_shell:
            return cached[1]
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return LoadedRunbook(shown, None, (RunbookError(f"cannot read: {reason}", path=shown),))
    loaded = load_runbook_text(text, shown, format_of(str(file)), check_shell=check_shell)
    if check_shell:
        _cache[key] = (stamp, loaded)
    return loaded


def runbook_dir(project_root: Path) -> Path:
    return project_root / RUNBOOK_DIR


def discover_runbooks(directory: Path) -> list[Path]:
    """Every ``.hcl``/``.toml``/``.json`` file under ``directory`` (recursive, sorted)."""
    if directory.is_file():
        return [directory]
    if not directory.is_dir():
        return []
    found: list[Path] = []
    for root, _dirs, files in os.walk(directory):
        found.extend(Path(root) / name for name in files if format_of(name))
    return sorted(found)


#: (path, mtime, size, device, inode) of every runbook file and directory of a project.
_Stamp = tuple[tuple[str, int, int, int, int], ...]

#: Per project root: the stamp of its runbook files when last loaded, what they loaded to, and
#: whether the stamp is *settled* (see :func:`_project_stamp`).
_projects: dict[str, tuple[_Stamp, list[LoadedRunbook], bool]] = {}

#: A file system time stamp this close to the moment it was read may still be shared by a later
#: change (time stamps are coarse: a few milliseconds), so it cannot prove "nothing changed".
_RACY_NS = 1_000_000_000


def _project_stamp(project_root: Path) -> tuple[_Stamp | None, bool]:
    """Every runbook file and directory of the project with its (mtime, size, device, inode):
    one directory walk and one ``stat`` per file, on plain strings (this runs on every request
    that names a project). ``None`` if a file vanished meanwhile or a directory cannot be
    listed. The inode catches a symlink pointed at another file, which a path-keyed stamp would
    miss.

    Also whether the stamp is *settled*: every time stamp in it is older than the walk by more
    than :data:`_RACY_NS`. Only then do unchanged directory times prove that no file was added
    or removed, and :func:`cached_project` may skip the walk (as git trusts an index entry only
    when the file is older than the index)."""
    started = time.time_ns()
    directory = os.fspath(runbook_dir(project_root))
    found: list[tuple[str, int, int, int, int]] = []
    try:
        st = os.stat(directory)
        found.append((directory, st.st_mtime_ns, st.st_size, st.st_dev, st.st_ino))
        if stat_module.S_ISDIR(st.st_mode):
            _scan(directory, found)
    except FileNotFoundError:
        return (None if os.path.lexists(directory) else ()), False
    except OSError:
        return None, False
    found.sort()
    settled = all(entry[1] < started - _RACY_NS for entry in found)
    return tuple(found), settled


def _scan(top: str, found: list[tuple[str, int, int, int, int]]) -> None:
    """What :func:`discover_runbooks` finds (symlinked directories are not entered, as
    ``os.walk`` does), stamped, with the directories entered."""
    with os.scandir(top) as entries:
        for entry in entries:
            if entry.is_dir():
                if not entry.is_symlink():
                    st = entry.stat()
                    found.append((entry.path, st.st_mtime_ns, st.st_size, st.st_dev, st.st_ino))
                    _scan(entry.path, found)
            elif format_of(entry.name):
                st = entry.stat()
                found.append((entry.path, st.st_mtime_ns, st.st_size, st.st_dev, st.st_ino))


def _unchanged(stamp: _Stamp) -> bool:
    """Whether every file and directory of a settled stamp is as it was: a ``stat`` each, no
    walk (a file added to or removed from a directory changes that directory's time)."""
    try:
        for path, mtime, size, dev, ino in stamp:
            st = os.stat(path)
            if (st.st_mtime_ns, st.st_size, st.st_dev, st.st_ino) != (mtime, size, dev, ino):
                return False
    except OSError:
        return False
    return True


def cached_project(project_root: Path) -> list[LoadedRunbook] | None:
    """The project's runbooks if none changed since :func:`load_project` last loaded them, else
    ``None``. No parsing: a ``stat`` per file and directory once the files have been left alone
    for a second, a directory walk before that. Cheap enough for the daemon to call inline on
    every request that names a project."""
    key = str(project_root)
    hit = _projects.get(key)
    if hit is None:
        return None
    stamp, loaded, settled = hit
    if settled and _unchanged(stamp):
        return loaded
    fresh, fresh_settled = _project_stamp(project_root)
    if fresh is None or fresh != stamp:
        return None
    if fresh_settled and not settled:
        _projects[key] = (stamp, loaded, True)
    return loaded


def project_is_cached(project_root: Path) -> bool:
    """Whether :func:`load_project` would answer from memory (see :func:`cached_project`)."""
    return cached_project(project_root) is not None


def load_project(project_root: Path) -> list[LoadedRunbook]:
    """Every runbook of a project, paths shown relative to the project root."""
    hit = cached_project(project_root)
    if hit is not None:
        return hit
    stamp, settled = _project_stamp(project_root)
    out: list[LoadedRunbook] = []
    for file in discover_runbooks(runbook_dir(project_root)):
        out.append(load_runbook(file, _relative(file, project_root)))
    if stamp is not None:
        # Stamped before reading: a file edited meanwhile no longer matches, so it is re-read.
        _projects[str(project_root)] = (stamp, out, settled)
    return out


def _relative(file: Path, root: Path) -> str:
    try:
        return str(file.relative_to(root))
    except ValueError:
        return str(file)


def _find(
    project_root: Path,
    name: str,
    attribute: str,
    not_found: str,
    runbook_file: str | None,
    loaded: list[LoadedRunbook] | None = None,
) -> tuple[Runbook, object]:
    if runbook_file is not None:
        loaded = [load_runbook(runbook_dir(project_root) / runbook_file, runbook_file)]
    elif loaded is None:
        loaded = load_project(project_root)
    matches: list[tuple[Runbook, object]] = []
    skipped: list[LoadedRunbook] = []
    for item in loaded:
        if not item.ok:
            skipped.append(item)
            continue
        assert item.runbook is not None
        entity = getattr(item.runbook, attribute).get(name)
        if entity is not None:
            matches.append((item.runbook, entity))
    if len(matches) > 1:
        raise RunbookError(f"'{name}' defined in multiple runbooks; use --runbook <file>")
    if matches:
        return matches[0]
    if skipped:
        details = "\n".join(f"  {_skip_reason(item)}" for item in skipped)
        raise NotFoundError(
            f"{name} not found; {len(skipped)} runbook(s) skipped due to errors:\n{details}"
        )
    raise NotFoundError(not_found)


def _skip_reason(item: LoadedRunbook) -> str:
    first = item.errors[0]
    text = str(first)
    return text if first.path else f"{item.path}: {text}"


def find_command(
    project_root: Path,
    name: str,
    runbook_file: str | None = None,
    loaded: list[LoadedRunbook] | None = None,
) -> tuple[Runbook, Command]:
    """The runbook defining command ``name`` (``--runbook`` narrows the search to one file)."""
    runbook, entity = _find(
        project_root, name, "commands", f"unknown command: {name}", runbook_file, loaded
    )
    assert isinstance(entity, Command)
    return runbook, entity


def find_pipeline(
    project_root: Path, name: str, loaded: list[LoadedRunbook] | None = None
) -> tuple[Runbook, Pipeline]:
    """The runbook defining pipeline ``name`` (in ``loaded``, when the caller has the project)."""
    runbook, entity = _find(
        project_root,
        name,
        "pipelines",
        f"no runbook found containing pipeline '{name}'",
        None,
        loaded,
    )
    assert isinstance(entity, Pipeline)
    return runbook, entity


def find_queue(
    project_root: Path, name: str, loaded: list[LoadedRunbook] | None = None
) -> tuple[Runbook, Queue]:
    """The runbook defining queue ``name`` (in ``loaded``, when the caller has the project)."""
    runbook, entity = _find(
        project_root, name, "queues", f"no runbook found containing queue '{name}'", None, loaded
    )
    assert isinstance(entity, Queue)
    return runbook, entity


def find_worker(
    project_root: Path, name: str, loaded: list[LoadedRunbook] | None = None
) -> tuple[Runbook, Worker]:
    """The runbook defining worker ``name`` (in ``loaded``, when the caller has the project)."""
    runbook, entity = _find(
        project_root, name, "workers", f"no runbook found containing worker '{name}'", None, loaded
    )
    assert isinstance(entity, Worker)
    return runbook, entity


def find_cron(project_root: Path, name: str) -> tuple[Runbook, Cron]:
    """The runbook defining cron ``name``. A cron defined only in a file with errors is reported
    with that file's first error (one located line), not as "not found"."""
    try:
        runbook, entity = _find(
            project_root, name, "crons", f"no runbook found containing cron '{name}'", None
        )
    except NotFoundError:
        for item in load_project(project_root):
            if item.errors and item.runbook is not None and name in item.runbook.crons:
                own = (f"cron.{name}", f"cron.{name}.")
                cron_errors = [
                    e
                    for e in item.errors
                    if (e.entity or "") == own[0] or (e.entity or "").startswith(own[1])
                ]
                raise (cron_errors or list(item.errors))[0] from None
        raise
    assert isinstance(entity, Cron)
    return runbook, entity


@attrs.frozen
class CommandInfo:
    """One line of the ``oj run`` listing."""

    name: str
    usage: str
    description: str


def list_commands(project_root: Path) -> list[CommandInfo]:
    """Every command of the project's valid runbooks, sorted by name (broken files skipped)."""
    from .argspec import render_usage

    infos: dict[str, CommandInfo] = {}
    for item in load_project(project_root):
        if not item.ok or item.runbook is None:
            continue
        for name, command in item.runbook.commands.items():
            infos.setdefault(
                name,
                CommandInfo(
                    name, render_usage(command.args), item.runbook.command_description(name)
                ),
            )
    return [infos[name] for name in sorted(infos)]
