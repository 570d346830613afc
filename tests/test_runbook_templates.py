"""Templates, shell escaping, the uniform context, slugs, names and durations."""

from __future__ import annotations

import re
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oj_trio.runbook.durations import parse_duration
from oj_trio.runbook.names import display_name, slugify, workspace_id
from oj_trio.runbook.templates import (
    build_context,
    escape_shell,
    interpolate,
    interpolate_shell,
)


def test_variables_and_unknown_left_verbatim() -> None:
    context = {"var.name": "bob", "a.b-c": "x", "name": "n"}
    text = "${var.name} ${a.b-c} ${name} ${nope} ${var.zzz} ${} $(date) $HOME"
    assert interpolate(text, context, env={}) == "bob x n ${nope} ${var.zzz} ${} $(date) $HOME"


def test_env_defaults() -> None:
    env = {"SET": "yes", "EMPTY": ""}
    text = "${SET:-no} ${UNSET:-fallback} ${EMPTY:-d} ${UNSET:-}"
    assert interpolate(text, {}, env=env) == "yes fallback d "


def test_env_defaults_come_from_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OJ_TEST_TEMPLATE", "from-env")
    assert interpolate("${OJ_TEST_TEMPLATE:-x}", {}) == "from-env"


def test_values_are_not_rescanned() -> None:
    context = {"a": "${b}", "b": "B"}
    assert interpolate("${a}", context, env={}) == "${b}"


def test_shell_variant_escapes_values_only() -> None:
    context = {"var.t": 'a"b$c`d\\e'}
    assert interpolate_shell('echo "${var.t}" $X', context, env={}) == (
        'echo "a\\"b\\$c\\`d\\\\e" $X'
    )


def test_shell_variant_escapes_env_values() -> None:
    assert interpolate_shell("${E:-x}", {}, env={"E": '"$(id)"'}) == '\\"\\$(id)\\"'


def test_build_context_convention() -> None:
    vars = {
        "branch": "main",
        "args.name": "bob",
        "local.repo": "/r",
        "workspace.root": "/w",
        "invoke.dir": "/i",
        "item.id": "7",
        "bug.id": "3",
    }
    context = build_context(
        vars, pipeline_id="p1", name="n", workspace="/w", extra={"agent_id": "a"}
    )
    assert context["var.branch"] == "main"
    assert context["var.args.name"] == "bob"
    assert context["args.name"] == "bob"
    assert context["local.repo"] == "/r"
    assert context["workspace.root"] == "/w"
    assert context["invoke.dir"] == "/i"
    assert context["item.id"] == "7"
    assert context["var.bug.id"] == "3"
    assert "bug.id" not in context and "branch" not in context
    assert (context["pipeline_id"], context["name"], context["workspace"]) == ("p1", "n", "/w")
    assert context["agent_id"] == "a"
    assert "workspace" not in build_context({}, pipeline_id="p", name="n")


_shell_text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=40)


@settings(max_examples=60, deadline=None)
@given(_shell_text)
def test_escaped_value_prints_exactly_in_bash(value: str) -> None:
    script = interpolate_shell('printf %s "${var.v}"', {"var.v": value}, env={})
    out = subprocess.run(["bash", "-c", script], capture_output=True, check=True)
    assert out.stdout.decode("utf-8", "surrogateescape") == value


@given(_shell_text)
def test_escaped_value_has_no_unescaped_specials(value: str) -> None:
    escaped = escape_shell(value)
    i = 0
    while i < len(escaped):
        ch = escaped[i]
        if ch == "\\":
            assert i + 1 < len(escaped) and escaped[i + 1] in '\\$`"'
            i += 2
            continue
        assert ch not in '"$`'
        i += 1


@pytest.mark.parametrize(
    ("text", "slug"),
    [
        ("Fix the login button", "fix-login-button"),
        ("fix: login_button!", "fix-login-button"),
        ("café résumé", "caf-r-sum"),
        ("The", ""),
        ("a very long title that goes on and on forever", "long-title-goes-forever"),
        ("abcdefghijklmnopqrstuvwx-yz", "abcdefghijklmnopqrstuvwx"),
        ("abcdefghijklmnopqrstuvw yz", "abcdefghijklmnopqrstuvw"),
    ],
)
def test_slugify_examples(text: str, slug: str) -> None:
    assert slugify(text) == slug


@given(st.text(max_size=80))
def test_slugify_properties(text: str) -> None:
    slug = slugify(text)
    assert len(slug) <= 24
    assert re.fullmatch(r"[a-z0-9-]*", slug)
    assert not slug.startswith("-") and not slug.endswith("-")
    assert "--" not in slug
    assert slugify(slug) == slug


def test_display_names_and_workspace_ids() -> None:
    pid = "abcdef12-3456-4789-8abc-def012345678"
    assert display_name("Fix the login", pid, "ignored") == "fix-login-abcdef12"
    assert display_name("the", pid, "ignored") == "abcdef12"
    assert display_name(None, pid, "bob") == "bob"
    assert workspace_id("fix-login-abcdef12", pid) == "ws-fix-login-abcdef12"
    assert workspace_id("oj-bob", pid) == "ws-bob-abcdef12"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0),
        ("30", 30),
        ("30s", 30),
        ("5 sec", 5),
        ("2m", 120),
        ("2 minutes", 120),
        ("1h", 3600),
        ("3hrs", 10800),
        ("1d", 86400),
        (" 2 days ", 172800),
    ],
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty duration string"),
        ("  ", "empty duration string"),
        ("s", "invalid number in duration: s"),
        ("-5s", "invalid number in duration: -5s"),
        ("5x", "unknown duration suffix: x"),
        ("1h30m", "unknown duration suffix: h30m"),
    ],
)
def test_duration_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        parse_duration(text)
