"""Regenerate man/oj.1 and man/ojd.8 from the argparse parsers.

Run after changing the CLI: ``.venv/bin/python scripts/gen_man.py``. The pages are checked in
(and installed as data files), and tests/test_manpages.py fails when they go stale.
SOURCE_DATE_EPOCH pins the date in the page header so regeneration is reproducible.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: 2026-11-22, the date of the 0.1.0 pages; bump together with the version.
RELEASE_EPOCH = "1795305600"

PAGES = {
    "oj.1": [
        "--module", "oj_trio.cli", "--function", "get_parser", "--prog", "oj",
        "--description", "run runbooks (commands, pipelines, queues) through the ojd daemon",
        "--manual-section", "1",
    ],
    "ojd.8": [
        "--module", "oj_trio.daemon", "--function", "get_parser", "--prog", "ojd",
        "--description", "the oj job and pipeline daemon",
        "--manual-section", "8",
    ],
}  # fmt: skip


def generate(out_dir: Path) -> list[Path]:
    from oj_trio import __version__

    out_dir.mkdir(parents=True, exist_ok=True)
    tool = Path(sys.executable).parent / "argparse-manpage"
    env = {**os.environ, "SOURCE_DATE_EPOCH": RELEASE_EPOCH}
    written = []
    for name, args in PAGES.items():
        target = out_dir / name
        common = ["--project-name", "oj", "--version", __version__, "--manual-title", "oj manual"]
        subprocess.run([str(tool), *args, *common, "--output", str(target)], check=True, env=env)
        written.append(target)
    return written


if __name__ == "__main__":
    for path in generate(ROOT / "man"):
        print(f"wrote {path.relative_to(ROOT)}")
