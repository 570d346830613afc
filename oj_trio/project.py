"""Project root and namespace resolution (reference §3.7, SPEC §4.2).

Stdlib-only; `tomllib` is imported only when a project has a `.oj/config.toml`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

RUNBOOK_DIR = Path(".oj") / "runbooks"


def find_project_root(cwd: Path | None = None) -> Path:
    """Nearest ancestor of `cwd` holding a `.oj/` directory, else `cwd` itself.

    A git worktree (``.git`` is a file ``gitdir: <main>/.git/worktrees/<n>``) whose main checkout
    has `.oj/` resolves to the main checkout, so agents working in a worktree act on the project.
    """
    start = (cwd or Path.cwd()).resolve()
    for candidate in (start, *start.parents):
        if (candidate / ".oj").is_dir():
            return _main_checkout(candidate) or candidate
    return start


def _main_checkout(root: Path) -> Path | None:
    git = root / ".git"
    if not git.is_file():
        return None
    try:
        text = git.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    if not text.startswith("gitdir:"):
        return None
    gitdir = Path(text.split(":", 1)[1].strip())
    if not gitdir.is_absolute():
        gitdir = (root / gitdir).resolve()
    # <main>/.git/worktrees/<name>
    if gitdir.parent.name != "worktrees" or gitdir.parent.parent.name != ".git":
        return None
    main = gitdir.parent.parent.parent
    return main if (main / ".oj").is_dir() else None


def _config_value(root: Path, table: str, key: str, *, strict: bool = False) -> str | None:
    """`[table] key` from `.oj/config.toml` when it is a non-empty string.

    Raises:
        OjError: only with ``strict``: the file cannot be read or parsed, or the value is not a
            string (for a setting whose silent absence would do harm).
    """
    config = root / ".oj" / "config.toml"
    if not config.is_file():
        return None
    import tomllib

    try:
        data = tomllib.loads(config.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        if strict:
            from .errors import OjError

            raise OjError(f"{config}: {exc}") from None
        return None
    section = data.get(table)
    if isinstance(section, dict):
        value = section.get(key)
        if isinstance(value, str) and value:
            return value
        if strict and value is not None and not isinstance(value, str):
            from .errors import OjError

            raise OjError(f"{config}: [{table}] {key} must be a string")
    return None


def config_namespace(root: Path) -> str | None:
    """`[project] name` from `.oj/config.toml`, if any."""
    return _config_value(root, "project", "name")


def queue_url(root: Path, env: Mapping[str, str]) -> str | None:
    """Where the project's persisted queues live: `OJ_QUEUE_URL` (the daemon's environment)
    > `.oj/config.toml [queues] url` > None (the daemon's own WAL).

    Raises:
        OjError: `.oj/config.toml` is malformed: a daemon must not quietly keep a private queue
            while the other machines share one.
    """
    return env.get("OJ_QUEUE_URL") or _config_value(root, "queues", "url", strict=True)


def resolve_namespace(
    root: Path, explicit: str | None = None, env: dict[str, str] | None = None
) -> str:
    """`--project` > `OJ_NAMESPACE` > `.oj/config.toml [project].name` > basename of the root."""
    if explicit:
        return explicit
    env_ns = (os.environ if env is None else env).get("OJ_NAMESPACE")
    if env_ns:
        return env_ns
    return config_namespace(root) or root.name or "default"
