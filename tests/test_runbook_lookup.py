"""Finding entities across a project's runbooks, listing commands, and help texts."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from oj_trio.errors import NotFoundError, RunbookError
from oj_trio.runbook import (
    find_command,
    find_pipeline,
    find_queue,
    find_worker,
    format_command_help,
    format_command_listing,
    list_commands,
    load_project,
)

GOOD = """# Build things.
# Build a feature branch.
#
# Long description.
# Usage: oj run build x "do it"

command "build" {
  args = "<name> <instructions> [files...] [-b/--base <branch>] [--draft] [-v]"
  defaults = { base = "main", draft = "" }
  run = { pipeline = "build" }
}
command "plain" {
  description = "A plain command"
  run = "true"
}
pipeline "build" {
  step "a" { run = "true" }
}
queue "q" {
  type = "persisted"
  vars = ["a"]
}
worker "w" {
  source = { queue = "q" }
  handler = { pipeline = "build" }
}
"""


def project(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        file = tmp_path / ".oj" / "runbooks" / name
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(text)
    return tmp_path


def test_find_each_kind_recursively(tmp_path: Path) -> None:
    root = project(tmp_path, {"nested/deep/good.hcl": GOOD, "other.toml": "", "x.txt": "junk"})
    runbook, command = find_command(root, "build")
    assert command.name == "build" and runbook.path == ".oj/runbooks/nested/deep/good.hcl"
    assert find_pipeline(root, "build")[1].kind == "build"
    assert find_queue(root, "q")[1].type == "persisted"
    assert find_worker(root, "w")[1].pipeline == "build"
    assert [r.path for r in load_project(root)] == [
        ".oj/runbooks/nested/deep/good.hcl",
        ".oj/runbooks/other.toml",
    ]


@pytest.mark.parametrize(
    ("finder", "message"),
    [
        (find_command, "unknown command: nope"),
        (find_queue, "no runbook found containing queue 'nope'"),
        (find_worker, "no runbook found containing worker 'nope'"),
        (find_pipeline, "no runbook found containing pipeline 'nope'"),
    ],
)
def test_not_found_messages(tmp_path: Path, finder: object, message: str) -> None:
    root = project(tmp_path, {"good.hcl": GOOD})
    with pytest.raises(NotFoundError, match=f"^{re.escape(message)}$"):
        finder(root, "nope")  # type: ignore[operator]


def test_missing_runbook_dir_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match=r"^unknown command: build$"):
        find_command(tmp_path, "build")
    assert list_commands(tmp_path) == []


def test_defined_in_multiple_runbooks(tmp_path: Path) -> None:
    root = project(tmp_path, {"a.hcl": GOOD, "b.toml": '[command.build]\nrun = "true"\n'})
    with pytest.raises(
        RunbookError, match=r"^'build' defined in multiple runbooks; use --runbook <file>$"
    ):
        find_command(root, "build")
    runbook, command = find_command(root, "build", runbook_file="b.toml")
    assert runbook.path == "b.toml" and command.args_text == ""


def test_broken_runbook_skipped_but_others_work(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        {"good.hcl": GOOD, "bad.hcl": 'command "x" {\n', "worse.json": '{"command": {"y": {}}}'},
    )
    assert find_command(root, "build")[1].name == "build"
    with pytest.raises(NotFoundError) as info:
        find_command(root, "x")
    assert str(info.value) == (
        "x not found; 2 runbook(s) skipped due to errors:\n"
        "  .oj/runbooks/bad.hcl:2:1: HCL parse error: unexpected end of input\n"
        "  .oj/runbooks/worse.json:1:1: command.y: missing field `run`"
    )
    assert [c.name for c in list_commands(root)] == ["build", "plain"]


def test_listing_text(tmp_path: Path) -> None:
    root = project(tmp_path, {"good.hcl": GOOD})
    assert format_command_listing(list_commands(root)) == (
        "Usage: oj run <COMMAND> [ARGS]...\n"
        "\n"
        "Available Commands:\n"
        "  build <name> <instructions> [files...] [--base <base>] [--draft] [-v] "
        "Build a feature branch.\n"
        "  plain                                 A plain command\n"
        "\n"
        "For more information, try '--help'.\n"
    )


def test_command_help_text(tmp_path: Path) -> None:
    runbook, command = find_command(project(tmp_path, {"good.hcl": GOOD}), "build")
    assert format_command_help(runbook, command) == (
        "Build things.\n"
        "Build a feature branch.\n"
        "\n"
        "Usage: oj run build <name> <instructions> [files...] [--base <base>] [--draft] [-v]\n"
        "\n"
        "Arguments:\n"
        "  <name>\n"
        "  <instructions>\n"
        "  [files...]\n"
        "\n"
        "Options:\n"
        "  -b, --base <base>     [default: main]\n"
        "  --draft\n"
        "  -v\n"
        "\n"
        "Description:\n"
        "Long description.\n"
        'Examples: oj run build x "do it"\n'
    )


def test_command_help_minimal(tmp_path: Path) -> None:
    runbook, command = find_command(project(tmp_path, {"good.hcl": GOOD}), "plain")
    assert format_command_help(runbook, command).startswith(
        "A plain command\n\nUsage: oj run plain\n"
    )


def test_project_memo_follows_every_change_on_disk(tmp_path: Path) -> None:
    """The daemon answers pushes from the project memo; any edit, new file, removal or
    retargeted symlink must make the next lookup read the files again."""
    from oj_trio.runbook.loader import cached_project

    root = project(tmp_path, {"a.hcl": GOOD})
    assert cached_project(root) is None
    first = load_project(root)
    assert cached_project(root) is first and load_project(root) is first
    runbooks = root / ".oj" / "runbooks"
    (runbooks / "b.toml").write_text("")
    assert cached_project(root) is None
    assert [r.path for r in load_project(root)] == [".oj/runbooks/a.hcl", ".oj/runbooks/b.toml"]
    (runbooks / "b.toml").unlink()
    assert cached_project(root) is None
    load_project(root)
    (runbooks / "a.hcl").write_text(GOOD.replace('"q"', '"q2"'))
    assert cached_project(root) is None
    assert find_queue(root, "q2")[1].name == "q2"
    # A symlinked runbook pointed at another file of the same size and time: a new inode.
    other = tmp_path / "elsewhere.hcl"
    other.write_text(GOOD.replace('"q"', '"q3"'))
    (runbooks / "a.hcl").unlink()
    (runbooks / "a.hcl").symlink_to(other)
    load_project(root)
    again = tmp_path / "again.hcl"
    again.write_text(GOOD.replace('"q"', '"q4"'))
    stat = other.stat()
    os.utime(again, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    (runbooks / "a.hcl").unlink()
    (runbooks / "a.hcl").symlink_to(again)
    assert cached_project(root) is None
    assert find_queue(root, "q4")[1].name == "q4"


def test_settled_project_memo_is_checked_by_stat_and_still_sees_every_change(
    tmp_path: Path,
) -> None:
    """Files and directories left alone for a while are checked with a stat each, no walk; an
    added, removed or edited file still changes a directory's or the file's stamp."""
    from oj_trio.runbook import loader

    root = project(tmp_path, {"a.hcl": GOOD, "sub/b.toml": ""})
    runbooks = root / ".oj" / "runbooks"

    def age_everything() -> None:
        old = time.time_ns() - 60 * 10**9
        for path in [runbooks, runbooks / "sub", *runbooks.rglob("*.*")]:
            os.utime(path, ns=(old, old))

    fresh = load_project(root)
    assert loader._projects[str(root)][2] is False  # just written: not settled yet
    age_everything()
    assert loader.cached_project(root) is None  # the ages changed: one reload
    first = load_project(root)
    assert loader._projects[str(root)][2] is True
    assert loader.cached_project(root) is first and first is not fresh

    (runbooks / "sub" / "c.json").write_text("{}")  # a new file in a subdirectory
    assert loader.cached_project(root) is None
    assert [r.path for r in load_project(root)][-1] == ".oj/runbooks/sub/c.json"

    age_everything()
    load_project(root)
    (runbooks / "sub" / "c.json").unlink()  # a removal
    assert loader.cached_project(root) is None
    age_everything()
    load_project(root)
    # an edit of the same size, its time set back to another old value
    (runbooks / "a.hcl").write_text(GOOD.replace('"q"', '"r"'))
    older = time.time_ns() - 120 * 10**9
    os.utime(runbooks / "a.hcl", ns=(older, older))
    assert loader.cached_project(root) is None
    assert find_queue(root, "r")[1].name == "r"
