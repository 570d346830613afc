"""Command argument specs (reference §1.4): parse, render, split argv, validate, map to vars.

A spec such as ``<name> [files...] [-b/--base <branch>] [--dry-run]`` declares what ``oj run
<command>`` accepts. The CLI splits the raw argv with it, both sides validate, and the daemon
maps the result onto ``args.*`` vars. All values are strings; absent optional args get no key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import attrs

from .. import keyvalue
from ..errors import OjError


class ArgSpecError(ValueError):
    """An arg spec string is malformed; the message is the reference's."""


class ArgumentError(OjError):
    """The arguments given to ``oj run <command>`` do not fit the command's spec."""


@attrs.frozen
class Positional:
    name: str
    required: bool


@attrs.frozen
class Variadic:
    name: str
    required: bool


@attrs.frozen
class Option:
    """``--name <value>``; ``required`` unless written in brackets."""

    name: str
    short: str | None = None
    required: bool = False


@attrs.frozen
class Flag:
    """A boolean switch (value ``"true"``); never required."""

    name: str
    short: str | None = None


@attrs.frozen
class ArgSpec:
    positionals: tuple[Positional, ...] = ()
    variadic: Variadic | None = None
    options: tuple[Option, ...] = ()
    flags: tuple[Flag, ...] = ()

    def names(self) -> list[str]:
        """Every declared name, in declaration groups (positionals, variadic, options, flags)."""
        out = [p.name for p in self.positionals]
        if self.variadic is not None:
            out.append(self.variadic.name)
        out += [o.name for o in self.options]
        out += [f.name for f in self.flags]
        return out

    def option_by_token(self, token: str) -> Option | None:
        for option in self.options:
            if token == f"--{option.name}" or (option.short and token == f"-{option.short}"):
                return option
        return None

    def flag_by_token(self, token: str) -> Flag | None:
        for flag in self.flags:
            if token == f"--{flag.name}" or (flag.short and token == f"-{flag.short}"):
                return flag
        return None


_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_LONG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
_SHORT = re.compile(r"^[A-Za-z0-9]$")


def _syntax(message: str) -> ArgSpecError:
    return ArgSpecError(f"invalid argument syntax: {message}")


def _tokens(spec: str) -> list[str]:
    """Split on whitespace, but keep ``<...>`` and ``[...]`` groups whole."""
    out: list[str] = []
    i, n = 0, len(spec)
    while i < n:
        ch = spec[i]
        if ch.isspace():
            i += 1
            continue
        if ch in "<[":
            close = ">" if ch == "<" else "]"
            end = spec.find(close, i + 1)
            if end < 0:
                raise _syntax(f"unclosed {ch}: {spec[i:]}")
            out.append(spec[i : end + 1])
            i = end + 1
            continue
        j = i
        while j < n and not spec[j].isspace() and spec[j] not in "<[":
            j += 1
        out.append(spec[i:j])
        i = j
    return out


def _parse_flag_names(text: str) -> tuple[str, str | None]:
    """``-f/--flag`` → (flag, f); ``--flag`` → (flag, None); ``-f`` → (f, f)."""
    if text in ("-", "--"):
        raise _syntax("empty flag")
    if not text.startswith("-"):
        raise _syntax(f"flag must start with -: {text}")
    parts = text.split("/")
    if len(parts) > 2:
        raise _syntax(f"invalid flag syntax: {text}")
    if len(parts) == 2:
        short, long = parts
        if not short.startswith("-") or short.startswith("--"):
            raise _syntax(f"invalid flag syntax: {text}")
        if not long.startswith("--"):
            raise _syntax(
                f"flag must start with -: {long}"
                if not long.startswith("-")
                else f"invalid flag syntax: {text}"
            )
        if not _SHORT.match(short[1:]):
            raise _syntax(f"invalid short flag: {short}")
        if not _LONG.match(long[2:]):
            raise _syntax(f"invalid long flag: {long}")
        return long[2:], short[1:]
    if text.startswith("--"):
        if not _LONG.match(text[2:]):
            raise _syntax(f"invalid long flag: {text}")
        return text[2:], None
    if not _SHORT.match(text[1:]):
        raise _syntax(f"invalid short flag: {text}")
    return text[1:], text[1:]


def _positional_name(inner: str, token: str) -> tuple[str, bool]:
    """``files...`` → (files, True); validates the name."""
    variadic = inner.endswith("...")
    name = inner[:-3] if variadic else inner
    if not _NAME.match(name):
        bad = next((c for c in name if not (c.isalnum() or c in "_-")), name[:1] or token)
        raise _syntax(f"unexpected character: {bad}")
    return name, variadic


def parse_arg_spec(spec: str) -> ArgSpec:
    """Parse an arg spec string; raises :class:`ArgSpecError` with the reference's messages."""
    positionals: list[Positional] = []
    variadic: Variadic | None = None
    options: list[Option] = []
    flags: list[Flag] = []
    seen: set[str] = set()

    def declare(name: str) -> None:
        if name in seen:
            raise ArgSpecError(f"duplicate argument name: {name}")
        seen.add(name)

    tokens = _tokens(spec)
    i = 0
    while i < len(tokens):
        token = tokens[i]
        i += 1
        if token.startswith("["):
            inner = token[1:-1].strip()
            if inner.startswith("-"):
                words = inner.split()
                if len(words) > 2:
                    raise _syntax(f"invalid flag syntax: {token}")
                name, short = _parse_flag_names(words[0])
                declare(name)
                if len(words) == 2:
                    if not (words[1].startswith("<") and words[1].endswith(">")):
                        raise _syntax(f"invalid flag syntax: {token}")
                    options.append(Option(name, short, required=False))
                else:
                    flags.append(Flag(name, short))
                continue
            if not inner:
                raise _syntax(f"unexpected character: {token[-1]}")
            name, is_variadic = _positional_name(inner, token)
            if variadic is not None:
                raise ArgSpecError(f"variadic must be last: {variadic.name}")
            declare(name)
            if is_variadic:
                variadic = Variadic(name, required=False)
            else:
                positionals.append(Positional(name, required=False))
            continue
        if token.startswith("<"):
            name, is_variadic = _positional_name(token[1:-1].strip(), token)
            if variadic is not None:
                raise ArgSpecError(f"variadic must be last: {variadic.name}")
            if not is_variadic and any(not p.required for p in positionals):
                raise ArgSpecError(f"optional positional cannot precede required: {name}")
            declare(name)
            if is_variadic:
                variadic = Variadic(name, required=True)
            else:
                positionals.append(Positional(name, required=True))
            continue
        if token.startswith("-"):
            name, short = _parse_flag_names(token)
            declare(name)
            if i < len(tokens) and tokens[i].startswith("<"):
                i += 1
                options.append(Option(name, short, required=True))
            else:
                flags.append(Flag(name, short))
            continue
        raise _syntax(f"unexpected character: {token[0]}")
    return ArgSpec(tuple(positionals), variadic, tuple(options), tuple(flags))


def render_usage(spec: ArgSpec) -> str:
    """The usage line of ``--help`` and the ``oj run`` listing (short aliases are not shown)."""
    parts = [f"<{p.name}>" if p.required else f"[{p.name}]" for p in spec.positionals]
    if spec.variadic is not None:
        v = spec.variadic
        parts.append(f"<{v.name}...>" if v.required else f"[{v.name}...]")
    for option in spec.options:
        text = f"--{option.name} <{option.name}>"
        parts.append(text if option.required else f"[{text}]")
    for flag in spec.flags:
        parts.append(f"[-{flag.name}]" if flag.short == flag.name else f"[--{flag.name}]")
    return " ".join(parts)


def _flag_names_text(name: str, short: str | None) -> str:
    if short is None:
        return f"--{name}"
    if short == name:
        return f"-{short}"
    return f"-{short}/--{name}"


def format_arg_spec(spec: ArgSpec) -> str:
    """A canonical spec string that parses back to ``spec`` (short aliases included)."""
    parts = [f"<{p.name}>" if p.required else f"[{p.name}]" for p in spec.positionals]
    if spec.variadic is not None:
        v = spec.variadic
        parts.append(f"<{v.name}...>" if v.required else f"[{v.name}...]")
    for option in spec.options:
        text = f"{_flag_names_text(option.name, option.short)} <{option.name}>"
        parts.append(text if option.required else f"[{text}]")
    for flag in spec.flags:
        parts.append(f"[{_flag_names_text(flag.name, flag.short)}]")
    return " ".join(parts)


@attrs.frozen
class SplitArgs:
    """Raw argv sorted into positionals and named args (options, flags, ``-a k=v``)."""

    positionals: tuple[str, ...]
    named: dict[str, str]


ARG_TOKENS = ("-a", "--arg")


def parse_key_value(text: str) -> tuple[str, str]:
    """``k=v`` → (k, v); the message is the reference's, and an empty key is accepted."""
    return keyvalue.parse_key_value(text, ArgumentError, allow_empty_key=True)


def split_args(spec: ArgSpec, argv: Sequence[str]) -> SplitArgs:
    """Sort raw ``oj run <cmd> ARGS...`` into positionals and named args (reference §1.4).

    Known options/flags may appear anywhere; an option as the very last word stays positional;
    ``--opt=value`` and unknown dashes stay positional; ``--`` ends option parsing; ``-a k=v`` /
    ``--arg k=v`` adds a named arg (later wins) unless the spec itself declares ``-a``.
    """
    positionals: list[str] = []
    named: dict[str, str] = {}
    i = 0
    rest_positional = False
    while i < len(argv):
        word = argv[i]
        i += 1
        if rest_positional:
            positionals.append(word)
            continue
        if word == "--":
            rest_positional = True
            continue
        option = spec.option_by_token(word)
        flag = spec.flag_by_token(word)
        if word in ARG_TOKENS and option is None and flag is None and i < len(argv):
            key, value = parse_key_value(argv[i])
            named[key] = value
            i += 1
            continue
        if option is not None:
            if i < len(argv):
                named[option.name] = argv[i]
                i += 1
            else:
                positionals.append(word)
            continue
        if flag is not None:
            named[flag.name] = "true"
            continue
        positionals.append(word)
    return SplitArgs(tuple(positionals), named)


def validate_args(
    spec: ArgSpec,
    positionals: Sequence[str],
    named: Mapping[str, str],
    defaults: Mapping[str, str],
) -> None:
    """Raise :class:`ArgumentError` with the reference's message for the first problem."""
    declared = set(spec.names())
    for key in named:
        if key not in declared:
            raise ArgumentError(f"unknown option: --{key}")

    def given(name: str) -> bool:
        return name in named or name in defaults

    for index, positional in enumerate(spec.positionals):
        if positional.required and index >= len(positionals) and not given(positional.name):
            raise ArgumentError(f"missing required argument: {positional.name}")
    for option in spec.options:
        if option.required and not given(option.name):
            raise ArgumentError(f"missing required option: --{option.name}")
    extra = list(positionals[len(spec.positionals) :])
    variadic = spec.variadic
    if variadic is None:
        if extra:
            raise ArgumentError(f"unexpected positional argument: {extra[0]}")
    elif variadic.required and not extra and not given(variadic.name):
        raise ArgumentError(f"missing required argument: {variadic.name}...")


def map_args(
    spec: ArgSpec,
    positionals: Sequence[str],
    named: Mapping[str, str],
    defaults: Mapping[str, str],
) -> dict[str, str]:
    """Defaults, then positionals by index, the variadic rest joined by a space, then named."""
    values = dict(defaults)
    for index, positional in enumerate(spec.positionals):
        if index < len(positionals):
            values[positional.name] = positionals[index]
    rest = positionals[len(spec.positionals) :]
    if spec.variadic is not None and rest:
        values[spec.variadic.name] = " ".join(rest)
    values.update(named)
    return values


def parse_command_args(
    spec: ArgSpec, argv: Sequence[str], defaults: Mapping[str, str]
) -> dict[str, str]:
    """Split, validate and map in one go: what ``oj run`` and the daemon both do."""
    split = split_args(spec, argv)
    validate_args(spec, split.positionals, split.named, defaults)
    return map_args(spec, split.positionals, split.named, defaults)
