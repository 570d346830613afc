"""Where in a runbook file an entity lives: entity paths and best-effort line/column.

The parsers (python-hcl2, tomllib, json) give positions only for syntax errors, so semantic
errors are located by searching the source for the entity's words in order (kind, name, step,
field). That works the same for all three formats and is right for every normally laid-out
file; when a word is missing the last one found is reported, never a wrong file.
"""

from __future__ import annotations

import bisect
import re

import attrs

KIND_WORDS = {
    "command": "commands?",
    "pipeline": "pipelines?",
    "agent": "agents?",
    "queue": "queues?",
    "worker": "workers?",
    "cron": "crons?",
}

_NAMELESS_STEP = r'(?m)^[ \t]*(?:\[\[[^\]\n]*\bsteps?\]\]|steps?\s+"|\{)'


def _word(text: str) -> str:
    return rf"(?<![\w-]){re.escape(text)}(?![\w-])"


def _step_header(name: str) -> str:
    """HCL ``step "x"``, TOML ``name = "x"``, JSON ``"name": "x"`` or ``"x": {``."""
    quoted = re.escape(f'"{name}"')
    return (
        rf"\bsteps?\s+{quoted}|\bname\s*=\s*{quoted}"
        rf'|"name"\s*:\s*{quoted}|{quoted}\s*:\s*\{{'
    )


@attrs.frozen
class Where:
    """An entity inside a runbook, e.g. ``pipeline.build.step[1](test).run``.

    ``fields`` are the nested field names after the entity (or step); an ``int`` appends ``[i]``
    to the previous field (``agent.a.prime[0]``). ``occurrence`` picks the n-th definition of the
    entity (for duplicates).
    """

    kind: str
    name: str
    step: tuple[int, str | None] | None = None
    fields: tuple[str | int, ...] = ()
    occurrence: int = 1
    step_occurrence: int = 1  #: n-th step of that name (for duplicate step names)

    def field(self, *more: str | int) -> Where:
        return attrs.evolve(self, fields=self.fields + more)

    def at_step(self, index: int, name: str | None, occurrence: int = 1) -> Where:
        return attrs.evolve(self, step=(index, name), fields=(), step_occurrence=occurrence)

    @property
    def entity(self) -> str:
        text = f"{self.kind}.{self.name}"
        if self.step is not None:
            index, name = self.step
            text += f".step[{index}]" + (f"({name})" if name else "")
        for part in self.fields:
            text += f"[{part}]" if isinstance(part, int) else f".{part}"
        return text

    def needles(self) -> list[tuple[str, int]]:
        """Regexes to find one after another, each with the occurrence wanted."""
        kind = KIND_WORDS.get(self.kind, re.escape(self.kind))
        header = rf"(?m)^[ \t]*[\[{{]*[ \t]*\"?{kind}\b"
        if self.occurrence > 1:
            # The n-th header line naming the entity (HCL: `pipeline "a" {`).
            out = [(header + rf"[^\n]*?{_word(self.name)}", self.occurrence)]
        else:
            out = [(header, 1), (_word(self.name), 1)]
        if self.step is not None:
            index, name = self.step
            out.append(
                (_step_header(name), self.step_occurrence) if name else (_NAMELESS_STEP, index + 1)
            )
        for part in self.fields:
            if isinstance(part, str):
                out.append((_word(part), 1))
        return out


class Locator:
    """Finds line/column (1-based) of entities in one file's text."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._line_starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def position(self, offset: int) -> tuple[int, int]:
        index = bisect.bisect_right(self._line_starts, offset) - 1
        return index + 1, offset - self._line_starts[index] + 1

    def find(self, where: Where) -> tuple[int | None, int | None]:
        if not self._text:
            return None, None
        position = 0
        found: int | None = None
        needles = where.needles()
        if where.step is None and not where.fields and where.occurrence == 1:
            # The entity itself: point at its header, the one naming it when there is one
            # (HCL `cron "b" {`, TOML `[cron.b]`), else the first header of its kind (JSON).
            named = re.compile(needles[0][0] + rf"[^\n]*?{_word(where.name)}")
            match = named.search(self._text)
            if match is not None:
                return self.position(match.start())
        if where.step is None and not where.fields:
            needles = needles[:1]
        for pattern, occurrence in needles:
            regex = re.compile(pattern)
            start = position
            match = None
            for _ in range(occurrence):
                match = regex.search(self._text, start)
                if match is None:
                    break
                start = match.end()
            if match is None:
                break
            found = match.start()
            position = match.end()
        if found is None:
            return None, None
        return self.position(found)
