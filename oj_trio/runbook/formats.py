"""Reading the three runbook formats (HCL, TOML, JSON) into one plain shape.

Each reader returns ``{kind: [(name, body), ...]}`` with ``kind`` in the singular (``command``,
``pipeline``, ``agent``, ``queue``, ``worker``), every definition kept in source order (so
duplicates can be reported), and bodies as plain dicts/lists/strings shaped like the TOML/JSON
form. Syntax errors are recorded with the parser's line and column.

HCL needs the most care (python-hcl2 8.x, see the ecosystem notes): heredocs come back raw and
are decoded here (``<<-`` dedented), ``$${`` becomes ``${``, unlabeled blocks (``locals {}``,
``notify {}``) arrive as lists of dicts and are merged, labeled ``step "x" {}`` blocks arrive as
``{"x": {...}}``. Shell-style ``${NAME:-default}`` is not valid inside an HCL quoted string, so
it is escaped to ``$${NAME:-default}`` before parsing (oj resolves every ``${`` itself anyway).
"""

from __future__ import annotations

import json
import re
import textwrap
from typing import Any

from .diagnostics import Diagnostics

KINDS: tuple[str, ...] = ("command", "pipeline", "agent", "queue", "worker", "cron")
ALIASES: dict[str, str] = {**{k: k for k in KINDS}, **{f"{k}s": k for k in KINDS}}

Entries = dict[str, list[tuple[str, Any]]]

#: HCL unlabeled blocks (and map attributes) that are merged into one dict.
_MERGED_BLOCKS = frozenset(
    {
        "locals",
        "notify",
        "env",
        "retry",
        "source",
        "handler",
        "defaults",
        "on_idle",
        "on_dead",
        "on_exit",
        "on_prompt",
        "on_done",
        "on_fail",
        "on_cancel",
    }
)
_STEP_FIELDS = frozenset({"name", "run", "on_done", "on_fail", "on_cancel"})
_HEREDOC = re.compile(r"\A<<(-?)([A-Za-z_][A-Za-z0-9_]*)\n(.*?)\n?[ \t]*\2\Z", re.DOTALL)
_ENV_DEFAULT_IN_SOURCE = re.compile(r"(?<!\$)\$\{([A-Za-z0-9_]+):-")


def format_of(path: str) -> str:
    """``hcl``, ``toml`` or ``json`` by extension; ``""`` for files that are not runbooks."""
    lower = path.lower()
    for ext in ("hcl", "toml", "json"):
        if lower.endswith(f".{ext}"):
            return ext
    return ""


def leading_comment(text: str) -> tuple[str, str]:
    """The file's leading ``#`` (or ``//``) comment block, split into (short, long).

    The short part runs up to the first empty comment line; the long part is the rest.
    """
    lines: list[str] = []
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("#"):
            body = stripped[1:]
        elif stripped.startswith("//"):
            body = stripped[2:]
        elif not stripped and not lines:
            continue
        else:
            break
        lines.append(body[1:] if body.startswith(" ") else body)
    if "" in [line.strip() for line in lines]:
        cut = [line.strip() for line in lines].index("")
        short, long = lines[:cut], lines[cut + 1 :]
    else:
        short, long = lines, []
    return "\n".join(short).strip("\n"), "\n".join(long).strip("\n")


def read_entries(text: str, fmt: str, diag: Diagnostics) -> Entries | None:
    """Parse ``text``; ``None`` (with an error recorded) when it is not valid ``fmt``."""
    if fmt == "hcl":
        data = _load_hcl(text, diag)
    elif fmt == "toml":
        data = _load_toml(text, diag)
    else:
        data = _load_json(text, diag)
    if data is None:
        return None
    if not isinstance(data, dict):
        diag.error(None, f"{fmt.upper()} parse error: top level must be an object")
        return None
    entries: Entries = {k: [] for k in KINDS}
    for key, value in _pairs(data):
        kind = ALIASES.get(key)
        if kind is None:
            continue  # unknown fields are ignored (reference §1.1)
        entries[kind].extend(_pairs(value))
    return entries


def _pairs(value: Any) -> list[tuple[str, Any]]:
    """Name/body pairs of a map, a JSON map with duplicate keys, or HCL labeled blocks."""
    if isinstance(value, _PairsDict):
        return list(value.pairs)
    if isinstance(value, dict):
        return list(value.items())
    if isinstance(value, list):
        out: list[tuple[str, Any]] = []
        for item in value:
            if isinstance(item, dict):
                out.extend(_pairs(item))
        return out
    return []


def step_list(value: Any) -> list[Any]:
    """Steps as a list of dicts (``name`` injected from labels/keys when absent)."""
    items: list[Any] = []
    if isinstance(value, dict):
        value = [{k: v} for k, v in _pairs(value)]
    if not isinstance(value, list):
        return [value] if value is not None else []
    for item in value:
        # A one-key dict holding a dict is a labelled step (``step "x" { … }``) unless the key is
        # a step field — but a label may be a field's name too (``step "run" { run = … }``): a
        # body that has its own ``run`` is a step body (no run directive or transition has one).
        if (
            isinstance(item, dict)
            and len(item) == 1
            and isinstance(next(iter(item.values())), dict)
            and (next(iter(item)) not in _STEP_FIELDS or "run" in next(iter(item.values())))
        ):
            label, body = next(iter(item.items()))
            body = dict(body)
            body.setdefault("name", label)
            items.append(body)
        else:
            items.append(item)
    return items


# --- HCL -----------------------------------------------------------------------------------


def _load_hcl(text: str, diag: Diagnostics) -> Any:
    if not text.strip():
        return {}
    import hcl2
    from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedInput, UnexpectedToken

    options = hcl2.SerializationOptions(
        strip_string_quotes=True,
        explicit_blocks=False,
        with_comments=False,
        preserve_heredocs=True,
    )
    source = _ENV_DEFAULT_IN_SOURCE.sub(r"$${\1:-", text)
    try:
        data = hcl2.loads(source, serialization_options=options)
    except UnexpectedInput as exc:
        if isinstance(exc, UnexpectedToken):
            token = exc.token
            first_line = str(token).split("\n", 1)[0].strip()[:30]
            if token.type == "$END":
                message = "unexpected end of input"
            elif not first_line:
                message = "unexpected end of line"
            else:
                message = f"unexpected token {first_line!r}"
        elif isinstance(exc, UnexpectedCharacters):
            message = f"unexpected character {exc.char!r}"
        else:
            message = str(exc).splitlines()[0]
        line = getattr(exc, "line", None)
        column = getattr(exc, "column", None)
        diag.error(None, f"HCL parse error: {message}", line=_pos(line), column=_pos(column))
        return None
    except (LarkError, ValueError, TypeError) as exc:
        diag.error(None, f"HCL parse error: {str(exc).splitlines()[0] if str(exc) else exc!r}")
        return None
    return _clean_hcl(data, None)


def _pos(value: Any) -> int | None:
    return value if isinstance(value, int) and value > 0 else None


def _clean_hcl(value: Any, key: str | None) -> Any:
    if isinstance(value, str):
        return _hcl_string(value)
    if isinstance(value, list):
        items = [_clean_hcl(v, None) for v in value]
        if key in _MERGED_BLOCKS and items and all(isinstance(i, dict) for i in items):
            merged: dict[str, Any] = {}
            for item in items:
                merged.update(item)
            return merged
        return items
    if isinstance(value, dict):
        return {k: _clean_hcl(v, k) for k, v in value.items()}
    return value


def _hcl_string(value: str) -> str:
    match = _HEREDOC.match(value)
    if match:
        body = match.group(3)
        value = textwrap.dedent(body) if match.group(1) else body
    return value.replace("$${", "${")


# --- TOML and JSON -------------------------------------------------------------------------

_TOML_POSITION = re.compile(r"\(at line (\d+), column (\d+)\)")


def _load_toml(text: str, diag: Diagnostics) -> Any:
    import tomllib

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = _TOML_POSITION.search(message)
        line = column = None
        if match:
            line, column = int(match.group(1)), int(match.group(2))
            message = message[: match.start()].strip()
        diag.error(None, f"TOML parse error: {message}", line=line, column=column)
        return None


class _PairsDict(dict):  # type: ignore[type-arg]
    """A JSON object that remembers every key/value pair, duplicates included."""

    pairs: list[tuple[str, Any]]


def _keep_pairs(pairs: list[tuple[str, Any]]) -> _PairsDict:
    result = _PairsDict(pairs)
    result.pairs = pairs
    return result


def _load_json(text: str, diag: Diagnostics) -> Any:
    if not text.strip():
        return {}
    try:
        return json.loads(text, object_pairs_hook=_keep_pairs)
    except json.JSONDecodeError as exc:
        diag.error(None, f"JSON parse error: {exc.msg}", line=exc.lineno, column=exc.colno)
        return None
