"""The small family of exceptions oj raises on purpose.

Every exception here carries a message a user can act on; the CLI prints it as
``Error: <message>`` and exits with ``exit_code``. Anything else escaping to the top is a bug.
Stdlib-only, because the CLI imports it.

Each class also has a stable wire ``kind``: the daemon answers a failed request with an ``Error``
reply that names the kind and exit code (``protocol.error_from``), and the client re-raises the
same class from it (:func:`error_class`), so ``oj`` exits with the daemon-side error's code instead
of a generic 1. The kinds are a wire contract between an ``oj`` and an ``ojd`` of possibly different
versions: never rename one; a new class gets a new kind and a row in :data:`KINDS`. A subclass
defined elsewhere (``runbook.argspec.ArgumentError``, ``client.DaemonNotRunning``) inherits its
parent's kind and so arrives as the parent class.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import ClassVar


class OjError(Exception):
    """Base for errors that are the user's to fix (or at least to read)."""

    #: Stable wire name of the class (see the module docstring); ``"error"`` means "no finer kind".
    kind: ClassVar[str] = "error"
    exit_code: int = 1

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class UsageError(OjError):
    """The command line itself is wrong (argparse's convention: exit 2)."""

    kind = "usage"
    exit_code = 2


class NotFoundError(OjError):
    """A named thing (pipeline, queue item, worker, command) does not exist."""

    kind = "not_found"


class RunbookError(OjError):
    """A runbook is malformed. Knows where: file, entity path, and line/column if the parser gave them.

    Only the text crosses the wire: a RunbookError rebuilt by the client carries the whole
    located message (``path:line:col: entity: message``) as its message and no location fields,
    so it prints exactly what the daemon-side one printed.
    """

    kind = "runbook"

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

    kind = "protocol"


class DaemonError(OjError):
    """The daemon could not be reached, started or stopped."""

    kind = "daemon"


class WalError(OjError):
    """The write-ahead log cannot be written or read; the daemon must not pretend otherwise."""

    kind = "wal"


class CorruptStateError(WalError):
    """Durable history is unreadable in a way that would lose acknowledged state if ignored."""

    kind = "corrupt_state"


#: wire kind -> class: the one place a kind is turned back into an exception class.
KINDS: dict[str, type[OjError]] = {
    cls.kind: cls
    for cls in (
        OjError,
        UsageError,
        NotFoundError,
        RunbookError,
        ProtocolError,
        DaemonError,
        WalError,
        CorruptStateError,
    )
}


def error_class(kind: object) -> type[OjError]:
    """The class for a wire ``kind``; :class:`OjError` for a kind this version does not know
    (a newer daemon's) or for no kind at all (an older daemon's reply)."""
    return KINDS.get(kind, OjError) if isinstance(kind, str) else OjError
