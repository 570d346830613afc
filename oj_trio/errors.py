"""The small family of exceptions oj raises on purpose.

Every exception here carries a message a user can act on; the CLI prints it as
``Error: <message>`` and exits with ``exit_code``. Anything else escaping to the top is a bug.
Stdlib-only, because the CLI imports it.
"""

from __future__ import annotations


class OjError(Exception):
    """Base for errors that are the user's to fix (or at least to read)."""

    exit_code: int = 1

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class UsageError(OjError):
    """The command line itself is wrong (argparse's convention: exit 2)."""

    exit_code = 2


class NotFoundError(OjError):
    """A named thing (pipeline, queue item, worker, command) does not exist."""


class RunbookError(OjError):
    """A runbook is malformed. Knows where: file, entity path, and line/column if the parser gave them."""

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        entity: str | None = None,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        super().__init__(message)
        self.path = path
        self.entity = entity
        self.line = line
        self.column = column

    def __str__(self) -> str:
        where = ""
        if self.path:
            where = self.path
            if self.line is not None:
                where += f":{self.line}"
                if self.column is not None:
                    where += f":{self.column}"
            where += ": "
        entity = f"{self.entity}: " if self.entity else ""
        return f"{where}{entity}{self.args[0]}"


class ProtocolError(OjError):
    """A frame or message on the socket is malformed (either side)."""


class DaemonError(OjError):
    """The daemon could not be reached, started or stopped."""


class WalError(OjError):
    """The write-ahead log cannot be written or read; the daemon must not pretend otherwise."""


class CorruptStateError(WalError):
    """Durable history is unreadable in a way that would lose acknowledged state if ignored."""
