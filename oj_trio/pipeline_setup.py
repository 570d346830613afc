"""Creating a pipeline: everything that happens before ``pipeline:created`` is committed.

Kept apart from the runtime's task loop because it is (nearly) pure: the only side effect is
running a ``$(…)`` local through bash (:mod:`oj_trio.adapters.bash_eval`). Also home to the one
template context all pipeline templates share (SPEC §4.7).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from . import events as ev
from .adapters.bash_eval import SnippetError, capture_bash
from .errors import OjError
from .runbook import templates
from .runbook.model import Pipeline as PipelineDef
from .runbook.model import Runbook, RunShell, Step
from .runbook.names import display_name, nonce_of, workspace_id
from .state import Pipeline


def template_context(
    values: Mapping[str, str],
    *,
    pipeline_id: str,
    name: str,
    workspace: str | None = None,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """The one template context every pipeline template sees (SPEC §4.7).

    Pipeline vars keep the reference's flat shape (command args and item fields bare, plus
    ``invoke.dir``, ``workspace.*``, ``local.*``, ``item.*``). On top of
    :func:`templates.build_context` (``var.<k>``, namespaced keys at the top level, system
    values), bare vars are also visible as ``args.<k>`` / ``var.args.<k>`` and as ``<k>``
    (where that does not shadow a system value such as ``name``).
    """
    view = dict(values)
    for key, value in values.items():
        if "." not in key:
            view.setdefault(f"args.{key}", value)
    context = templates.build_context(
        view, pipeline_id=pipeline_id, name=name, workspace=workspace, extra=extra
    )
    for key, value in values.items():
        context.setdefault(key, value)
    return context


def pipeline_context(p: Pipeline, *, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The template context of a pipeline record (its vars, id, name and execution dir)."""
    return template_context(
        p.vars, pipeline_id=p.id, name=p.name, workspace=p.workspace_path or p.cwd, extra=extra
    )


def shell_command_runbook(runbook: Runbook, name: str, run: RunShell, *, cwd: str) -> Runbook:
    """A command with a shell ``run`` becomes a one-step pipeline (step ``run``, cwd = project
    root). It gets a runbook of its own, holding only that pipeline, so every pipeline — however
    it was created — is ``runbooks[hash].pipelines[kind]`` after a restart, and a pipeline def
    that happens to share the command's name can never hijack its transitions."""
    pipeline = PipelineDef(kind=name, cwd=cwd, steps=(Step(name="run", run=run),))
    return Runbook(path=runbook.path, pipelines={name: pipeline})


async def prepare_pipeline(
    runbook: Runbook,
    kind: str,
    *,
    pipeline_id: str,
    namespace: str,
    vars: dict[str, str],
    fallback_name: str,
    invoke_dir: str,
    workspaces_dir: Path,
    env: Mapping[str, str],
    runbook_hash: str,
    at_ms: int,
) -> list[ev.EventBase]:
    """The events that create a pipeline of ``kind``: vars (pipeline defaults under the given
    ones), display name, execution dir (workspace, ``cwd`` template or ``invoke.dir``) and
    locals, in declaration order. Raises :class:`OjError` when a local fails, so no pipeline
    record ever exists for a creation that could not finish.
    """
    definition = runbook.pipelines[kind]
    values = {**definition.defaults, **vars}
    name_context = template_context(
        values, pipeline_id=pipeline_id, name=values.get("name", pipeline_id)
    )
    rendered = (
        templates.interpolate(definition.name, name_context, env=env) if definition.name else None
    )
    name = display_name(rendered, pipeline_id, fallback_name)
    events: list[ev.EventBase] = []
    at = at_ms
    if definition.workspace:
        ws_id = workspace_id(name, pipeline_id)
        ws_path = workspaces_dir / ws_id
        values.update(
            {
                "workspace.id": ws_id,
                "workspace.root": str(ws_path),
                "workspace.nonce": nonce_of(pipeline_id),
            }
        )
        cwd = str(ws_path)
    elif definition.cwd:
        cwd_context = template_context(values, pipeline_id=pipeline_id, name=name)
        cwd = templates.interpolate(definition.cwd, cwd_context, env=env)
    else:
        cwd = invoke_dir
    for key, template in definition.locals.items():
        context = template_context(values, pipeline_id=pipeline_id, name=name, workspace=cwd)
        values[f"local.{key}"] = await eval_local(key, template, context, invoke_dir, env)
    steps = definition.steps
    initial = steps[0].name if steps else "done"
    events.append(
        ev.PipelineCreated(
            id=pipeline_id,
            kind=kind,
            name=name,
            runbook_hash=runbook_hash,
            cwd=cwd,
            vars=values,
            initial_step=initial,
            created_at_epoch_ms=at,
            namespace=namespace,
        )
    )
    if definition.workspace:
        events.append(
            ev.WorkspaceCreated(
                id=values["workspace.id"],
                path=values["workspace.root"],
                owner=pipeline_id,
                mode=definition.workspace,
                at_ms=at,
            )
        )
    if not steps:
        events.append(ev.PipelineAdvanced(id=pipeline_id, step="done", at_ms=at, terminal=True))
    return events


async def eval_local(
    key: str, template: str, context: Mapping[str, str], invoke_dir: str, env: Mapping[str, str]
) -> str:
    """A local is a template; one containing ``$(`` is run through bash in ``invoke.dir``.

    Substituted values are escaped for double quotes and the whole value is wrapped in
    double quotes, so data never runs as code and spaces survive.
    """
    if "$(" not in template:
        return templates.interpolate(template, context, env=env)
    # An assignment's status is its command substitution's, so `set -e` catches `$(false)`;
    # inherit_errexit makes a failure inside the substitution fail it too.
    value = templates.interpolate_shell(template, context, env=env)
    script = (
        "set -euo pipefail; shopt -s inherit_errexit; "
        f'__oj_local="{value}"; printf "%s" "$__oj_local"'
    )
    try:
        return await capture_bash(script, cwd=invoke_dir, env=env)
    except SnippetError as exc:
        raise OjError(f"local.{key} evaluation failed: {exc}") from None
