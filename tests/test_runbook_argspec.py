"""Arg specs (reference §1.4): parsing, usage, argv splitting, validation, mapping to vars."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oj_trio.runbook.argspec import (
    ArgSpec,
    ArgSpecError,
    ArgumentError,
    Flag,
    Option,
    Positional,
    Variadic,
    format_arg_spec,
    map_args,
    parse_arg_spec,
    parse_command_args,
    render_usage,
    split_args,
    validate_args,
)


def test_parse_every_token_form() -> None:
    spec = parse_arg_spec(
        "<name> [base] [files...] --req <v> [--opt <v>] [-o/--other <v>] --flag [-f/--force] -x"
    )
    assert spec.positionals == (Positional("name", True), Positional("base", False))
    assert spec.variadic == Variadic("files", False)
    assert spec.options == (
        Option("req", None, True),
        Option("opt", None, False),
        Option("other", "o", False),
    )
    assert spec.flags == (Flag("flag"), Flag("force", "f"), Flag("x", "x"))


def test_empty_spec() -> None:
    assert parse_arg_spec("") == ArgSpec()
    assert parse_arg_spec("   ") == ArgSpec()


def test_required_variadic() -> None:
    assert parse_arg_spec("<a> <rest...>").variadic == Variadic("rest", True)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("<a> [b] <c>", "optional positional cannot precede required: c"),
        ("<a...> <b>", "variadic must be last: a"),
        ("[a...] [b]", "variadic must be last: a"),
        ("<a> --a", "duplicate argument name: a"),
        ("[--x] [--x <v>]", "duplicate argument name: x"),
        ("<a> <a>", "duplicate argument name: a"),
        ("name", "invalid argument syntax: unexpected character: n"),
        ("<na$me>", "invalid argument syntax: unexpected character: $"),
        ("-ab", "invalid argument syntax: invalid short flag: -ab"),
        ("--b$d", "invalid argument syntax: invalid long flag: --b$d"),
        ("[-f/force]", "invalid argument syntax: flag must start with -: force"),
        ("[-f/-g]", "invalid argument syntax: invalid flag syntax: -f/-g"),
        ("[-a/--b/--c]", "invalid argument syntax: invalid flag syntax: -a/--b/--c"),
        ("--", "invalid argument syntax: empty flag"),
        ("[-]", "invalid argument syntax: empty flag"),
        ("<open", "invalid argument syntax: unclosed <: <open"),
    ],
)
def test_spec_errors(spec: str, message: str) -> None:
    with pytest.raises(ArgSpecError, match=f"^{re.escape(message)}$"):
        parse_arg_spec(spec)


def test_render_usage_shape() -> None:
    spec = parse_arg_spec("[-b/--base <branch>] <name> [--dry-run] [files...] --mode <m> -v")
    assert render_usage(spec) == (
        "<name> [files...] [--base <base>] --mode <mode> [--dry-run] [-v]"
    )


def test_split_options_flags_anywhere() -> None:
    spec = parse_arg_spec("<a> [b] [--opt <v>] [-f/--flag]")
    split = split_args(spec, ["--opt", "1", "x", "-f", "y"])
    assert split.positionals == ("x", "y")
    assert split.named == {"opt": "1", "flag": "true"}


def test_split_option_as_last_word_stays_positional() -> None:
    spec = parse_arg_spec("<a> [--opt <v>]")
    assert split_args(spec, ["x", "--opt"]).positionals == ("x", "--opt")


def test_split_unknown_dashes_and_equals_stay_positional() -> None:
    spec = parse_arg_spec("[a...] [--opt <v>]")
    split = split_args(spec, ["--opt=1", "--nope", "-z"])
    assert split.positionals == ("--opt=1", "--nope", "-z")
    assert split.named == {}


def test_split_double_dash_ends_options() -> None:
    spec = parse_arg_spec("[a...] [--flag]")
    split = split_args(spec, ["--flag", "--", "--flag", "-a", "k=v"])
    assert split.positionals == ("--flag", "-a", "k=v")
    assert split.named == {"flag": "true"}


def test_split_arg_key_value_later_wins() -> None:
    spec = parse_arg_spec("[--x <v>]")
    split = split_args(spec, ["-a", "x=1", "--arg", "x=2=3"])
    assert split.named == {"x": "2=3"}


def test_split_bad_key_value() -> None:
    with pytest.raises(ArgumentError, match=r"^invalid key=value: no `=` found in `oops`$"):
        split_args(ArgSpec(), ["-a", "oops"])


@pytest.mark.parametrize(
    ("spec", "argv", "defaults", "message"),
    [
        ("<a>", ["-a", "foo=1", "x"], {}, "unknown option: --foo"),
        ("<a> <b>", ["x"], {}, "missing required argument: b"),
        ("--mode <m>", [], {}, "missing required option: --mode"),
        ("<files...>", [], {}, "missing required argument: files..."),
        ("<a>", ["x", "y"], {}, "unexpected positional argument: y"),
        ("", ["--nope"], {}, "unexpected positional argument: --nope"),
    ],
)
def test_validation_messages(
    spec: str, argv: list[str], defaults: dict[str, str], message: str
) -> None:
    with pytest.raises(ArgumentError, match=f"^{re.escape(message)}$"):
        parse_command_args(parse_arg_spec(spec), argv, defaults)


def test_required_satisfied_by_default_or_named() -> None:
    spec = parse_arg_spec("<a> <b> --mode <m> <rest...>")
    validate_args(spec, ["1"], {"b": "2", "rest": "r"}, {"mode": "fast"})


def test_mapping() -> None:
    spec = parse_arg_spec("<name> [base] [files...] [--greeting <g>] [--shout]")
    values = parse_command_args(
        spec, ["bob", "dev", "a", "b", "c", "--shout"], {"greeting": "hi", "base": "main"}
    )
    assert values == {
        "name": "bob",
        "base": "dev",
        "files": "a b c",
        "greeting": "hi",
        "shout": "true",
    }


def test_mapping_absent_optional_gets_no_key() -> None:
    spec = parse_arg_spec("<name> [base] [--opt <o>] [--flag]")
    assert map_args(spec, ["x"], {}, {}) == {"name": "x"}


def test_named_overrides_positional() -> None:
    spec = parse_arg_spec("<name>")
    assert parse_command_args(spec, ["x", "-a", "name=y"], {}) == {"name": "y"}


# --- properties -------------------------------------------------------------------------------

_names = st.from_regex(r"\A[a-z][a-z0-9_]{0,6}\Z", fullmatch=True)


@st.composite
def specs(draw: st.DrawFn, with_shorts: bool = True) -> ArgSpec:
    names = draw(st.lists(_names, min_size=0, max_size=7, unique=True))
    shorts = iter(draw(st.permutations("abcdefghijklmnopqrstuvwxyz")))
    n_pos = draw(st.integers(0, len(names)))
    n_required = draw(st.integers(0, n_pos))
    positionals = tuple(Positional(n, i < n_required) for i, n in enumerate(names[:n_pos]))
    rest = names[n_pos:]
    variadic = None
    if rest and draw(st.booleans()):
        variadic = Variadic(rest[0], draw(st.booleans()))
        rest = rest[1:]
    options: list[Option] = []
    flags: list[Flag] = []
    for name in rest:
        short = next(shorts) if with_shorts and draw(st.booleans()) else None
        if draw(st.booleans()):
            options.append(Option(name, short, draw(st.booleans())))
        else:
            flags.append(Flag(name, short))
    return ArgSpec(positionals, variadic, tuple(options), tuple(flags))


@given(specs())
def test_format_then_parse_round_trips(spec: ArgSpec) -> None:
    assert parse_arg_spec(format_arg_spec(spec)) == spec


@given(specs(with_shorts=False))
def test_usage_then_parse_round_trips(spec: ArgSpec) -> None:
    assert parse_arg_spec(render_usage(spec)) == spec


_values = st.text(st.characters(codec="utf-8", exclude_characters="-"), min_size=1, max_size=8)


@given(specs(), st.data())
def test_split_and_map_generated_argv(spec: ArgSpec, data: st.DataObject) -> None:
    """Build an argv from intended values; splitting and mapping recovers exactly those."""
    expected: dict[str, str] = {}
    positionals = [data.draw(_values) for _ in spec.positionals]
    for p, value in zip(spec.positionals, positionals, strict=True):
        expected[p.name] = value
    extra: list[str] = []
    if spec.variadic is not None:
        extra = data.draw(st.lists(_values, min_size=1, max_size=3))
        expected[spec.variadic.name] = " ".join(extra)
    named_words: list[list[str]] = []
    for option in spec.options:
        value = data.draw(_values)
        token = f"-{option.short}" if option.short and data.draw(st.booleans()) else None
        named_words.append([token or f"--{option.name}", value])
        expected[option.name] = value
    for flag in spec.flags:
        if data.draw(st.booleans()):
            named_words.append([f"-{flag.short}" if flag.short else f"--{flag.name}"])
            expected[flag.name] = "true"
    # Interleave whole named groups (option + value) between positionals.
    plain = positionals + extra
    argv = []
    slots = [[w] for w in plain]
    for words in named_words:
        at = data.draw(st.integers(0, len(slots)))
        slots.insert(at, words)
    for group in slots:
        argv.extend(group)
    assert parse_command_args(spec, argv, {}) == expected


def test_declared_short_a_wins_over_arg() -> None:
    spec = parse_arg_spec("[-a/--all]")
    assert split_args(spec, ["-a"]).named == {"all": "true"}
