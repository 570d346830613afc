"""The machine-readable report every benchmark can write with ``--report FILE`` (read by
``bench/run_all``, which turns the reports of one run into ``bench/RESULTS.md``).

A report is one JSON object::

    {"bench": "queue", "title": "...", "command": "...", "seconds": 12.3,
     "skipped": null | "why the whole bench could not run here",
     "figures": [{"key", "label", "value", "unit", "target", "ok", "ratio", "spec", "note"}],
     "tables": ["markdown", ...], "notes": ["text", ...]}

A figure's ``ok`` is decided by the bench that measured it (it knows what the target compares);
``None`` means "no target" (a raw limit, a side figure). ``spec`` marks the figures of SPEC §7.
``ratio`` is the measured value over the target (e.g. 1.04 for 83 % against "≥ 80 %"), for the
summary. ``unit`` "%" shows a fraction as a percentage, "×" a ratio.

To plug a new bench into ``run_all``: name it ``bench/<thing>_bench.py``, accept ``--report
FILE`` (see :func:`add_report_argument`), and optionally set module-level constants that run_all
reads without importing the script: ``RUN_ALL_ARGS`` (a list of extra arguments for the full
run), ``RUN_ALL_SMOKE_ARGS`` (tiny sizes, for the smoke test), ``RUN_ALL_TIMEOUT`` (seconds) and
``RUN_ALL_ORDER`` (an int; lower runs first). A bench whose tool is missing writes a report with
``skipped`` set (see :meth:`Report.skip`) and exits 0.

Stdlib only: the benchmarks import it with ``sys.path`` pointing at ``bench/``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any


def add_report_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--report", metavar="FILE", help="also write the figures as JSON (for bench/run_all)"
    )


class Report:
    """Figures, tables and notes of one bench run."""

    def __init__(self, bench: str, title: str) -> None:
        self.bench = bench
        self.title = title
        self.figures: list[dict[str, Any]] = []
        self.tables: list[str] = []
        self.notes: list[str] = []
        self.skipped: str | None = None
        self._start = time.perf_counter()

    def figure(
        self,
        key: str,
        label: str,
        value: float,
        unit: str = "",
        *,
        target: str = "",
        ok: bool | None = None,
        ratio: float | None = None,
        spec: bool = False,
        note: str = "",
    ) -> None:
        """One measured figure; ``target`` is how the SPEC states it (text), ``ok`` whether it
        was met (``None``: no target)."""
        self.figures.append(
            {
                "key": key,
                "label": label,
                "value": value,
                "unit": unit,
                "target": target,
                "ok": ok,
                "ratio": ratio,
                "spec": spec,
                "note": note,
            }
        )

    def table(self, markdown: str) -> None:
        self.tables.append(markdown.strip())

    def note(self, text: str) -> None:
        self.notes.append(text.strip())

    def skip(self, reason: str) -> None:
        """The whole bench cannot run here (a tool is missing): say why."""
        self.skipped = reason

    def to_json(self) -> dict[str, Any]:
        return {
            "bench": self.bench,
            "title": self.title,
            "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
            "seconds": round(time.perf_counter() - self._start, 1),
            "load": [round(x, 2) for x in os.getloadavg()],
            "skipped": self.skipped,
            "figures": self.figures,
            "tables": self.tables,
            "notes": self.notes,
        }

    def write(self, path: str | None) -> None:
        """Write the report if ``path`` was given (``--report``); no-op otherwise."""
        if path:
            Path(path).write_text(json.dumps(self.to_json(), indent=1, ensure_ascii=False))


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
