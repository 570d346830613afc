"""The pure helpers of the `oj` CLI, without a daemon: key=value words, `oj run` argument
splitting, durations, number types, tables and text output, and how the noun modules assemble
the command tree (one module per noun, in the order of `oj --help`).

The black-box suites (test_pipeline_*.py, test_daemon_*.py) cover the commands end to end; this
file pins the small rules they rely on, including the exact error messages of every key=value
caller, which share one parser (`oj_trio.keyvalue`) but keep their own wording.
"""

from __future__ import annotations

import argparse
import importlib
import io
from pathlib import Path
from typing import Any

import pytest

from oj_trio import cli, keyvalue
from oj_trio.commands import pipeline as pipeline_commands
from oj_trio.commands._args import (
    namespace_of,
    non_negative_int,
    parse_cli_duration,
    parse_cli_key_value,
)
from oj_trio.commands._output import (
    ago,
    emit_json,
    follow_file,
    project_table,
    short_duration,
    step_duration,
    table,
    tail_lines,
    uptime_text,
)
from oj_trio.commands.run import split_run_args
from oj_trio.errors import UsageError
from oj_trio.runbook.argspec import ArgumentError
from oj_trio.runbook.argspec import parse_key_value as argspec_parse_key_value

# -- key=value -------------------------------------------------------------------------------------


class _Boom(Exception):
    pass


@pytest.mark.parametrize(
    ("text", "pair"),
    [("k=v", ("k", "v")), ("k=", ("k", "")), ("k=a=b", ("k", "a=b")), ("k==", ("k", "="))],
)
def test_key_value_splits_at_the_first_equals(text: str, pair: tuple[str, str]) -> None:
    assert keyvalue.parse_key_value(text, _Boom) == pair


@pytest.mark.parametrize("text", ["novalue", "", "=v", "="])
def test_key_value_rejects_no_equals_or_empty_key(text: str) -> None:
    with pytest.raises(_Boom) as info:
        keyvalue.parse_key_value(text, _Boom)
    assert str(info.value) == f"invalid key=value: no `=` found in `{text}`"


def test_key_value_empty_key_allowed_on_request() -> None:
    assert keyvalue.parse_key_value("=v", _Boom, allow_empty_key=True) == ("", "v")
    with pytest.raises(_Boom):
        keyvalue.parse_key_value("v", _Boom, allow_empty_key=True)


def test_key_value_message_template_only_formats_the_template() -> None:
    """Braces in the word itself are printed as they are, not interpreted."""
    with pytest.raises(_Boom) as info:
        keyvalue.parse_key_value("{0}{text}", _Boom, message="bad <{text}>")
    assert str(info.value) == "bad <{0}{text}>"


def test_cli_key_value_is_a_usage_error() -> None:
    assert parse_cli_key_value("a=b") == ("a", "b")
    with pytest.raises(UsageError) as info:
        parse_cli_key_value("oops")
    assert str(info.value) == "invalid key=value: no `=` found in `oops`"
    assert info.value.exit_code == 2
    with pytest.raises(UsageError, match="no `=` found in `=v`"):
        parse_cli_key_value("=v")


def test_runbook_argspec_key_value_keeps_its_error_and_empty_keys() -> None:
    assert argspec_parse_key_value("x=2=3") == ("x", "2=3")
    assert argspec_parse_key_value("=v") == ("", "v")
    with pytest.raises(ArgumentError) as info:
        argspec_parse_key_value("oops")
    assert str(info.value) == "invalid key=value: no `=` found in `oops`"
    assert not isinstance(info.value, UsageError)


class _NoClient:
    def __init__(self) -> None:
        raise AssertionError("a bad --var must be rejected before the daemon is asked")


def test_pipeline_resume_var_keeps_its_own_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipeline_commands, "Client", _NoClient)
    args = argparse.Namespace(id="abc", message=None, var=["a=1", "novalue"], output="text")
    with pytest.raises(UsageError) as info:
        pipeline_commands.cmd_pipeline_resume(args)
    assert str(info.value) == "invalid input format 'novalue': must be key=value"
    args.var = ["=1"]
    with pytest.raises(UsageError, match=r"^invalid input format '=1': must be key=value$"):
        pipeline_commands.cmd_pipeline_resume(args)


# -- oj run argument splitting ---------------------------------------------------------------------


def test_split_run_args_passes_positionals_through() -> None:
    assert split_run_args(["x", "--base", "main", "-v"]) == (
        ["x", "--base", "main", "-v"],
        {},
        False,
        None,
    )


def test_split_run_args_named_pairs_later_wins() -> None:
    rest, named, want_help, runbook = split_run_args(
        ["-a", "k=1", "x", "--arg", "j=2", "--arg=k=3=4"]
    )
    assert rest == ["x"]
    assert named == {"k": "3=4", "j": "2"}
    assert (want_help, runbook) == (False, None)


def test_split_run_args_runbook_and_help() -> None:
    assert split_run_args(["--runbook", "a.hcl", "-h", "y", "--help"]) == (
        ["y"],
        {},
        True,
        "a.hcl",
    )


def test_split_run_args_double_dash_ends_extraction() -> None:
    rest, named, want_help, _ = split_run_args(["a", "--", "-a", "k=v", "--help"])
    assert rest == ["a", "--", "-a", "k=v", "--help"]
    assert (named, want_help) == ({}, False)


def test_split_run_args_option_without_value_stays_positional() -> None:
    assert split_run_args(["x", "-a"]) == (["x", "-a"], {}, False, None)
    assert split_run_args(["--runbook"]) == (["--runbook"], {}, False, None)


@pytest.mark.parametrize("argv", [["-a", "oops"], ["--arg=oops"], ["--arg", "=v"]])
def test_split_run_args_bad_pair_is_a_usage_error(argv: list[str]) -> None:
    with pytest.raises(UsageError, match=r"^invalid key=value: no `=` found in `"):
        split_run_args(argv)


# -- durations and numbers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("5m", 300), ("1h30m", 5400), ("2h", 7200), ("45", 45), (" 2m ", 120)],
)
def test_cli_duration(text: str, seconds: float) -> None:
    assert parse_cli_duration(text) == seconds


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "invalid duration: "),
        ("  ", "invalid duration:   "),
        ("0", "duration must be > 0: 0"),
        ("0s", "duration must be > 0: 0s"),
        ("5x", "unknown duration unit 'x' in: 5x"),
        ("5m5", "unknown duration unit '' in: 5m5"),
        ("m5", "invalid duration: m5"),
        ("1h 30m", "invalid duration: 1h 30m"),
        ("-5s", "invalid duration: -5s"),
    ],
)
def test_cli_duration_errors(text: str, message: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_cli_duration(text)
    assert str(info.value) == message


def test_non_negative_int() -> None:
    assert non_negative_int("0") == 0
    assert non_negative_int("12") == 12
    with pytest.raises(argparse.ArgumentTypeError, match=r"^must not be negative: -1$"):
        non_negative_int("-1")
    with pytest.raises(argparse.ArgumentTypeError, match=r"^invalid number: 'x'$"):
        non_negative_int("x")


def test_bad_limit_is_an_argparse_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.get_parser().parse_args(["pipeline", "list", "--limit", "x"])
    assert info.value.code == 2
    assert "argument -n/--limit: invalid number: 'x'" in capsys.readouterr().err


def test_namespace_of_prefers_the_project_flag(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    root, namespace = namespace_of(argparse.Namespace(project="mine"))
    assert namespace == "mine"
    assert isinstance(root, Path)


# -- output ----------------------------------------------------------------------------------------


def test_table_aligns_and_leaves_the_last_column_unpadded() -> None:
    assert table(["ID", "NAME"], [["a", "bbb"], ["cccc", "d"]]) == (
        "ID    NAME\na     bbb\ncccc  d"
    )
    assert table(["ID", "X"], []) == "ID  X"
    # a short last cell leaves no trailing blanks
    assert table(["A", "B", "C"], [["1", "", ""]]) == "A  B  C\n1"


_COLUMNS: list[tuple[str, Any]] = [("ID", lambda i: i["id"]), ("NAME", lambda i: i["name"])]


def test_project_table_without_namespaces_has_no_project_column() -> None:
    items = [{"id": "1", "name": "a"}, {"id": "2", "name": "b", "namespace": ""}]
    assert project_table(items, _COLUMNS) == "ID  NAME\n1   a\n2   b"


def test_project_table_adds_project_after_the_first_column() -> None:
    items = [{"id": "1", "name": "a", "namespace": "web"}, {"id": "22", "name": "b"}]
    assert project_table(items, _COLUMNS) == ("ID  PROJECT  NAME\n1   web      a\n22  -        b")


@pytest.mark.parametrize(
    ("secs", "text"),
    [
        (0, "0s"),
        (59, "59s"),
        (60, "1m"),
        (3599, "59m"),
        (3600, "1h"),
        (3660, "1h1m"),
        (86399, "23h59m"),
        (86400, "1d"),
        (3 * 86400 + 5, "3d"),
    ],
)
def test_short_duration(secs: int, text: str) -> None:
    assert short_duration(secs) == text


@pytest.mark.parametrize(
    ("ms", "text"),
    [(-5, "0s"), (999, "0s"), (59_999, "59s"), (61_000, "1m 1s"), (3_661_000, "1h 1m")],
)
def test_step_duration(ms: int, text: str) -> None:
    assert step_duration(ms) == text


@pytest.mark.parametrize(
    ("secs", "text"), [(5, "5s"), (61, "1m 1s"), (3661, "1h 1m 1s"), (90061, "25h 1m 1s")]
)
def test_uptime_text(secs: int, text: str) -> None:
    assert uptime_text(secs) == text


def test_ago() -> None:
    assert ago(None) == "-"
    assert ago(0) == "-"
    assert ago(1_000, now_ms=61_000) == "1m"
    assert ago(5_000, now_ms=1_000) == "0s"  # a clock skew never shows as negative


def test_emit_json_keeps_non_ascii(capsys: pytest.CaptureFixture[str]) -> None:
    emit_json({"name": "née", "n": [1]})
    assert capsys.readouterr().out == '{\n  "name": "née",\n  "n": [\n    1\n  ]\n}\n'


def test_tail_lines(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_bytes(b"one\ntwo\nthree\nfour\n")
    assert tail_lines(log, 2) == (["three", "four"], 19)
    assert tail_lines(log, 0) == (["one", "two", "three", "four"], 19)
    assert tail_lines(log, 10) == (["one", "two", "three", "four"], 19)
    log.write_bytes(b"")
    assert tail_lines(log, 5) == ([], 0)


def test_tail_lines_reads_back_across_blocks(tmp_path: Path) -> None:
    log = tmp_path / "big.log"
    lines = [f"line {i} " + "x" * 100 for i in range(2000)]  # > 64 KiB
    log.write_text("\n".join(lines) + "\n")
    got, size = tail_lines(log, 1500)
    assert got == lines[-1500:]
    assert size == log.stat().st_size


def test_follow_file_prints_from_offset_until_done(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "p.log"
    log.write_bytes(b"old\nnew 1\nnew 2\npartial")
    follow_file(log, len(b"old\n"), until=lambda: True)
    assert capsys.readouterr().out == "new 1\nnew 2\npartial\n"


# -- the command tree --------------------------------------------------------------------------------


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


_HELP_ORDER = [
    "run",
    "pipeline",
    "workspace",
    "queue",
    "worker",
    "cron",
    "agent",
    "emit",
    "session",
    "status",
    "daemon",
    "runbook",
    "completion",
]


def test_nouns_register_in_help_order() -> None:
    assert list(cli.NOUNS[: len(_HELP_ORDER)]) == _HELP_ORDER
    assert list(_subcommands(cli.get_parser())) == list(cli.NOUNS)
    for noun in cli.NOUNS:
        assert cli.noun_module(noun) is importlib.import_module(f"oj_trio.commands.{noun}")


@pytest.mark.parametrize(
    ("argv", "noun"),
    [
        (["queue", "push", "q"], "queue"),
        (["-o", "json", "status"], "status"),
        (["--output", "json", "--project", "run", "worker", "list"], "worker"),
        (["--output=json", "-ojson", "pipeline"], "pipeline"),
        (["--project", "queue"], None),
        (["nonsense", "queue"], None),
        (["--", "queue"], None),
        (["--help"], None),
        (["-h", "queue"], None),
        (["queue", "--help"], "queue"),
        ([], None),
    ],
)
def test_chosen_noun_skips_options_and_their_values(argv: list[str], noun: str | None) -> None:
    assert cli.chosen_noun(argv) == noun


def test_a_noun_alone_parses_like_the_whole_tree() -> None:
    for argv in (["queue", "push", "q", "--var", "a=b"], ["-o", "json", "worker", "list"]):
        whole = vars(cli.get_parser().parse_args(argv))
        alone = vars(cli.get_parser(only=cli.chosen_noun(argv)).parse_args(argv))
        assert whole == alone


def test_every_command_is_handled_by_its_nouns_module() -> None:
    handled = []
    for noun, parser in _subcommands(cli.get_parser()).items():
        verbs = _subcommands(parser) or {"": parser}
        # one level deeper where a verb has its own verbs (`oj agent hook stop`)
        leaves = {
            f"{verb} {sub}".strip(): leaf
            for verb, p in verbs.items()
            for sub, leaf in (_subcommands(p) or {"": p}).items()
        }
        for verb, leaf in leaves.items():
            func = leaf.get_default("func")
            assert func is not None, (noun, verb)
            assert func.__module__ == f"oj_trio.commands.{noun}", (noun, verb)
            name = "_".join(["cmd", noun, *verb.split()]).rstrip("_")
            assert func.__name__ == name.replace("-", "_").replace(":", "_")
            handled.append(f"{noun} {verb}".strip())
    assert len(handled) == 53


def test_get_parser_builds_a_fresh_tree_each_time() -> None:
    first, second = cli.get_parser(), cli.get_parser()
    assert first is not second
    out = io.StringIO()
    first.print_help(out)
    assert out.getvalue().startswith("Usage: oj")
