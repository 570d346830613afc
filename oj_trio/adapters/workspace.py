"""Workspace directories on disk.

A workspace is a plain directory under ``$OJ_STATE_DIR/workspaces``; runbooks commonly turn it
into a git worktree (``git worktree add … ${workspace.root}``), which must be unregistered from
its repository before the directory goes, or the repository keeps a dangling worktree entry.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


def create_workspace(path: Path) -> None:
    """Make a workspace directory (owner-only; parents as needed; an existing one is reused).

    Raises:
        OSError: the directory cannot be made; the caller fails the pipeline with its text.
    """
    path.mkdir(parents=True, exist_ok=True, mode=0o700)


def remove_workspace(path: Path) -> None:
    """Delete a workspace directory (blocking; call through a thread from trio).

    A git worktree (``.git`` is a file) is removed with ``git worktree remove --force`` first,
    best effort: a repository that is gone must not keep the directory alive.
    """
    if (path / ".git").is_file():
        subprocess.run(
            ["git", "worktree", "remove", "--force", str(path)],
            cwd=path,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )
    shutil.rmtree(path, ignore_errors=True)
