"""Collecting every problem of one runbook file, each located (file, entity, line, column).

A runbook check should show all mistakes at once, so the loader never stops at the first one:
it records a :class:`~oj_trio.errors.RunbookError` per problem here and carries on.
"""

from __future__ import annotations

from ..errors import RunbookError
from .locations import Locator, Where


class Diagnostics:
    """Errors and warnings of one file, in the order they were found."""

    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.locator = Locator(text)
        self.errors: list[RunbookError] = []
        self.warnings: list[RunbookError] = []

    def _make(
        self, where: Where | None, message: str, line: int | None, column: int | None
    ) -> RunbookError:
        if where is not None and line is None:
            line, column = self.locator.find(where)
        return RunbookError(
            message,
            path=self.path,
            entity=where.entity if where is not None else None,
            line=line,
            column=column,
        )

    def error(
        self,
        where: Where | None,
        message: str,
        *,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        self.errors.append(self._make(where, message, line, column))

    def warn(self, where: Where | None, message: str) -> None:
        self.warnings.append(self._make(where, message, None, None))
