"""Template interpolation (reference §1.11, SPEC §4.7).

oj does its own substitution; HCL expressions are never evaluated. A template is any string with
two kinds of placeholders, resolved in one scan so a substituted value is never scanned again:

1. ``${NAME:-default}`` (``NAME`` = letters, digits, underscore): the environment variable
   ``NAME`` (of the daemon, or the ``env`` mapping passed in), or ``default`` when unset or empty.
2. ``${ident}`` / ``${ident.seg.seg}``: an exact key of a flat context dict. Unknown names are
   left verbatim, so a typo shows up literally instead of vanishing.

Shell contexts use :func:`interpolate_shell`: each substituted value has backslash, ``$``,
backtick and ``"`` backslash-escaped, which makes it inert inside double quotes. Runbooks are
expected to quote: ``echo "${var.title}"``.

The uniform context (SPEC §4.7) is flat: :func:`build_context` takes the pipeline's vars (a flat
``dict[str, str]`` whose keys may already be namespaced, e.g. ``args.name``, ``local.repo``,
``workspace.root``, ``invoke.dir``, ``item.id``, or plain, e.g. ``branch``) and exposes

- every var as ``var.<key>`` (``${var.branch}``, ``${var.args.name}``, ``${var.local.repo}``);
- every namespaced var (``args.``, ``local.``, ``workspace.``, ``invoke.``, ``item.``) also at the
  top level under its own key (``${args.name}``, ``${local.repo}``, ``${workspace.root}``);
- the system values ``pipeline_id``, ``name`` and, when given, ``workspace`` (execution dir);
- ``extra`` last (e.g. ``agent_id``, ``prompt``, ``error``, ``step``), overriding the rest.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

#: Var keys with these prefixes are also visible without the ``var.`` prefix.
TOP_LEVEL_NAMESPACES: tuple[str, ...] = ("args.", "local.", "workspace.", "invoke.", "item.")

_ENV_DEFAULT = r"\$\{(?P<env>[A-Za-z0-9_]+):-(?P<default>[^}]*)\}"
_VARIABLE = r"\$\{(?P<var>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_-]+)*)\}"
_PLACEHOLDER = re.compile(f"{_ENV_DEFAULT}|{_VARIABLE}")
#: Any ``${...}``; used to blank templates out before shell syntax checks.
ANY_TEMPLATE = re.compile(r"\$\{[^}]*\}")
#: Variable references only (not env defaults), for namespace checks.
VARIABLE_REFERENCE = re.compile(_VARIABLE)


def escape_shell(value: str) -> str:
    """Escape ``value`` for a double-quoted shell context: ``\\ $ ` "`` get a backslash."""
    return value.replace("\\", "\\\\").replace("$", "\\$").replace("`", "\\`").replace('"', '\\"')


def interpolate(
    template: str,
    context: Mapping[str, str],
    *,
    env: Mapping[str, str] | None = None,
    shell: bool = False,
) -> str:
    """Resolve env defaults and variables in ``template``; escape values when ``shell``."""
    environ: Mapping[str, str] = os.environ if env is None else env

    def replace(match: re.Match[str]) -> str:
        name = match.group("env")
        if name is not None:
            value = environ.get(name) or match.group("default")
        else:
            key = match.group("var")
            if key not in context:
                return match.group(0)
            value = context[key]
        return escape_shell(value) if shell else value

    return _PLACEHOLDER.sub(replace, template)


def interpolate_shell(
    template: str, context: Mapping[str, str], *, env: Mapping[str, str] | None = None
) -> str:
    """:func:`interpolate` for shell text: no value can leave its double quotes."""
    return interpolate(template, context, env=env, shell=True)


def build_context(
    vars: Mapping[str, str],
    *,
    pipeline_id: str,
    name: str,
    workspace: str | None = None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The uniform template context of SPEC §4.7 (see the module docstring for the convention)."""
    context: dict[str, str] = {}
    for key, value in vars.items():
        context[f"var.{key}"] = value
    for key, value in vars.items():
        if key.startswith(TOP_LEVEL_NAMESPACES):
            context[key] = value
    context["pipeline_id"] = pipeline_id
    context["name"] = name
    if workspace is not None:
        context["workspace"] = workspace
    if extra:
        context.update(extra)
    return context


def template_references(template: str) -> list[str]:
    """The variable names (``args.x``, ``var.y``…) a template refers to, in order."""
    return [m.group("var") for m in VARIABLE_REFERENCE.finditer(template)]
