"""Every runbook example in the documentation loads and validates without an error.

The ``hcl``, ``toml`` and ``json`` code blocks of docs/runbook-language.md, and of the README's
"A runbook, briefly" section, are complete runbook files; a block that shows broken input is
written as ``text`` instead. (Other README sections may show fragments, e.g. a block that names a
pipeline defined elsewhere.)
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from oj_trio.runbook.loader import load_runbook_text

ROOT = Path(__file__).resolve().parent.parent
#: (page, heading of the section to check, or None for the whole page)
PAGES = [
    (ROOT / "docs" / "runbook-language.md", None),
    (ROOT / "README.md", "## A runbook, briefly"),
]
_BLOCK = re.compile(r"^```(hcl|toml|json)\n(.*?)^```$", re.DOTALL | re.MULTILINE)


def _section(text: str, heading: str | None) -> tuple[int, int]:
    if heading is None:
        return 0, len(text)
    start = text.index(heading + "\n")
    end = text.find("\n## ", start + len(heading))
    return start, end if end >= 0 else len(text)


def _examples() -> list[tuple[str, str, str]]:
    out = []
    for page, heading in PAGES:
        text = page.read_text(encoding="utf-8")
        start, end = _section(text, heading)
        for match in _BLOCK.finditer(text, start, end):
            line = text.count("\n", 0, match.start()) + 1
            out.append((f"{page.name}:{line}", match.group(1), match.group(2)))
    return out


EXAMPLES = _examples()


def test_the_pages_have_examples() -> None:
    assert len([e for e in EXAMPLES if e[0].startswith("runbook-language")]) >= 10


@pytest.mark.parametrize(("where", "fmt", "text"), EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_example_validates(where: str, fmt: str, text: str) -> None:
    loaded = load_runbook_text(text, f"example.{fmt}")
    assert loaded.runbook is not None and not loaded.errors, f"{where}: " + "; ".join(
        str(e) for e in loaded.errors
    )
