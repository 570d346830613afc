"""Turning the plain parsed shape (see :mod:`.formats`) into the typed model.

This is where structural problems are found: missing required fields, wrong types, unknown
action names, bad arg specs, bad durations. Every problem is recorded and building carries on
with a harmless stand-in, so one mistake does not hide the next. Unknown fields are ignored
(reference §1.1).
"""

from __future__ import annotations

from typing import Any

from .argspec import ArgSpec, ArgSpecError, parse_arg_spec
from .diagnostics import Diagnostics
from .durations import parse_duration
from .formats import Entries, step_list
from .locations import Where
from .model import (
    ACTIONS,
    ActionConfig,
    Agent,
    Command,
    Cron,
    ErrorMatcher,
    Notify,
    Pipeline,
    Queue,
    Retry,
    Run,
    RunAgent,
    Runbook,
    RunPipeline,
    RunShell,
    Step,
    Transition,
    Worker,
)

_STAND_IN_RUN = RunShell("true")


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "map"
    if value is None:
        return "null"
    return "string"


def _scalar_text(value: Any) -> str | None:
    """Strings as they are; numbers and booleans as their TOML/JSON text."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return None


class Builder:
    def __init__(self, diag: Diagnostics) -> None:
        self.diag = diag

    # --- primitives ------------------------------------------------------------------------

    def string(self, body: dict[str, Any], key: str, where: Where) -> str | None:
        value = body.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            self.diag.error(where.field(key), f"expected a string, got {_type_name(value)}")
            return None
        return value

    def required_string(self, body: dict[str, Any], key: str, where: Where) -> str | None:
        if body.get(key) is None:
            self.diag.error(where, f"missing field `{key}`")
            return None
        return self.string(body, key, where)

    def string_map(self, body: dict[str, Any], key: str, where: Where) -> dict[str, str]:
        value = body.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.diag.error(where.field(key), f"expected a map, got {_type_name(value)}")
            return {}
        out: dict[str, str] = {}
        for k, v in value.items():
            text = _scalar_text(v)
            if text is None:
                self.diag.error(where.field(key, str(k)), f"expected a string, got {_type_name(v)}")
                continue
            out[str(k)] = text
        return out

    def string_list(self, body: dict[str, Any], key: str, where: Where) -> tuple[str, ...]:
        value = body.get(key)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.diag.error(where.field(key), "expected a list of strings")
            return ()
        return tuple(value)

    def table(self, value: Any, where: Where) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.diag.error(where, f"expected a block or map, got {_type_name(value)}")
            return {}
        return value

    def attempts(self, value: Any, where: Where) -> int | None:
        """Positive int, or ``"forever"`` (``None``)."""
        if isinstance(value, bool) or not isinstance(value, int | str):
            self.diag.error(
                where,
                f"invalid attempts value '{value}'; expected a positive integer or \"forever\"",
            )
            return 1
        if isinstance(value, str):
            if value == "forever":
                return None
            self.diag.error(
                where,
                f"invalid attempts value '{value}'; expected a positive integer or \"forever\"",
            )
            return 1
        if value < 1:
            self.diag.error(where, "attempts must be >= 1")
            return 1
        return value

    def duration(self, value: Any, where: Where) -> int:
        if not isinstance(value, str | int) or isinstance(value, bool):
            self.diag.error(where, f"expected a duration string, got {_type_name(value)}")
            return 0
        try:
            return parse_duration(str(value))
        except ValueError as exc:
            self.diag.error(where, str(exc))
            return 0

    def transition(self, body: dict[str, Any], key: str, where: Where) -> Transition | None:
        value = body.get(key)
        if value is None:
            return None
        here = where.field(key)
        if isinstance(value, str):
            return Transition(value)
        if isinstance(value, dict) and isinstance(value.get("step"), str):
            attempts = None
            if value.get("attempts") is not None:
                raw = value["attempts"]
                if isinstance(raw, bool) or not isinstance(raw, int):
                    self.diag.error(here.field("attempts"), "attempts must be a positive integer")
                elif raw < 1:
                    self.diag.error(here.field("attempts"), "attempts must be >= 1")
                else:
                    attempts = raw
            return Transition(value["step"], attempts)
        self.diag.error(here, 'invalid transition: expected "<step>" or { step = "<step>" }')
        return None

    def run(self, body: dict[str, Any], where: Where) -> Run:
        value = body.get("run")
        if value is None:
            self.diag.error(where, "missing field `run`")
            return _STAND_IN_RUN
        if isinstance(value, str):
            return RunShell(value)
        if isinstance(value, dict) and len(value) == 1:
            ((key, target),) = value.items()
            if key == "pipeline" and isinstance(target, str):
                return RunPipeline(target)
            if key == "agent" and isinstance(target, str):
                return RunAgent(target)
        self.diag.error(
            where.field("run"),
            'invalid run directive: expected a shell command, { pipeline = "<name>" } '
            'or { agent = "<name>" }',
        )
        return _STAND_IN_RUN

    def notify(self, body: dict[str, Any], where: Where) -> Notify:
        value = body.get("notify")
        if value is None:
            return Notify()
        here = where.field("notify")
        table = self.table(value, here)
        return Notify(
            on_start=self.string(table, "on_start", here),
            on_done=self.string(table, "on_done", here),
            on_fail=self.string(table, "on_fail", here),
        )

    # --- entities --------------------------------------------------------------------------

    def command(self, name: str, body: dict[str, Any]) -> Command:
        where = Where("command", name)
        args_text = self.string(body, "args", where) or ""
        spec = ArgSpec()
        try:
            spec = parse_arg_spec(args_text)
        except ArgSpecError as exc:
            self.diag.error(where.field("args"), str(exc))
        return Command(
            name=name,
            run=self.run(body, where),
            args=spec,
            args_text=args_text,
            defaults=self.string_map(body, "defaults", where),
            description=self.string(body, "description", where),
        )

    def pipeline(self, kind: str, body: dict[str, Any]) -> Pipeline:
        where = Where("pipeline", kind)
        workspace = body.get("workspace")
        if workspace is not None and workspace not in ("ephemeral", "persistent"):
            self.diag.error(
                where.field("workspace"),
                f'invalid workspace \'{workspace}\'; expected "ephemeral" or "persistent"',
            )
            workspace = None
        vars_key = "vars" if "vars" in body else "input"
        steps: list[Step] = []
        raw_steps = body.get("step", body.get("steps"))
        for index, raw in enumerate(step_list(raw_steps)):
            steps.append(self.step(where, index, raw))
        return Pipeline(
            kind=kind,
            name=self.string(body, "name", where),
            vars=self.string_list(body, vars_key, where),
            defaults=self.string_map(body, "defaults", where),
            cwd=self.string(body, "cwd", where),
            workspace=workspace,
            locals=self.string_map(body, "locals", where),
            notify=self.notify(body, where),
            on_done=self.transition(body, "on_done", where),
            on_fail=self.transition(body, "on_fail", where),
            on_cancel=self.transition(body, "on_cancel", where),
            steps=tuple(steps),
        )

    def step(self, pipeline: Where, index: int, raw: Any) -> Step:
        name = raw.get("name") if isinstance(raw, dict) else None
        where = pipeline.at_step(index, name if isinstance(name, str) and name else None)
        if not isinstance(raw, dict):
            self.diag.error(where, f"expected a step block, got {_type_name(raw)}")
            return Step(name=f"<step {index}>", run=_STAND_IN_RUN)
        if not isinstance(name, str) or not name:
            self.diag.error(where, "step name is required")
            name = ""
        return Step(
            name=name,
            run=self.run(raw, where),
            on_done=self.transition(raw, "on_done", where),
            on_fail=self.transition(raw, "on_fail", where),
            on_cancel=self.transition(raw, "on_cancel", where),
        )

    def action(self, value: Any, where: Where, default: str) -> ActionConfig:
        if value is None:
            return ActionConfig(default)  # type: ignore[arg-type]
        if isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict):
            value = value[0]
        if isinstance(value, str):
            return ActionConfig(self.action_name(value, where))  # type: ignore[arg-type]
        if not isinstance(value, dict):
            self.diag.error(where, f"expected an action, got {_type_name(value)}")
            return ActionConfig(default)  # type: ignore[arg-type]
        action = value.get("action")
        if action is None:
            self.diag.error(where, "missing field `action`")
            action = default
        elif not isinstance(action, str):
            self.diag.error(where.field("action"), f"expected a string, got {_type_name(action)}")
            action = default
        else:
            action = self.action_name(action, where)
        append = value.get("append", False)
        if not isinstance(append, bool):
            self.diag.error(where.field("append"), f"expected a boolean, got {_type_name(append)}")
            append = False
        attempts: int | None = 1
        if value.get("attempts") is not None:
            attempts = self.attempts(value["attempts"], where.field("attempts"))
        cooldown = value.get("cooldown")
        seconds = 0
        if cooldown is not None:
            seconds = self.duration(cooldown, where.field("cooldown"))
            cooldown = str(cooldown)
        return ActionConfig(
            action=action,  # type: ignore[arg-type]
            message=self.string(value, "message", where),
            append=append,
            run=self.string(value, "run", where),
            attempts=attempts,
            cooldown=cooldown,
            cooldown_seconds=seconds,
        )

    def action_name(self, name: str, where: Where) -> str:
        if name in ACTIONS:
            return name
        self.diag.error(where, f"unknown action '{name}'; expected one of: {', '.join(ACTIONS)}")
        return "escalate"

    def on_error(self, value: Any, where: Where) -> tuple[ErrorMatcher, ...]:
        if value is None:
            return (ErrorMatcher(None, ActionConfig("escalate")),)
        if not isinstance(value, list):
            return (ErrorMatcher(None, self.action(value, where, "escalate")),)
        rules: list[ErrorMatcher] = []
        for index, item in enumerate(value):
            here = where.field(index)
            match = item.get("match") if isinstance(item, dict) else None
            if match is not None and match not in (
                "unauthorized",
                "out_of_credits",
                "no_internet",
                "rate_limited",
            ):
                self.diag.error(
                    here.field("match"),
                    f"unknown error type '{match}'; expected one of: unauthorized, "
                    "out_of_credits, no_internet, rate_limited",
                )
                match = None
            rules.append(ErrorMatcher(match, self.action(item, here, "escalate")))
        return tuple(rules)

    def agent(self, name: str, body: dict[str, Any]) -> Agent:
        where = Where("agent", name)
        run = self.required_string(body, "run", where) or "claude"
        prime_raw = body.get("prime")
        prime: tuple[str, ...] = ()
        if isinstance(prime_raw, str):
            prime = (prime_raw,)
        elif isinstance(prime_raw, list) and all(isinstance(p, str) for p in prime_raw):
            prime = tuple(prime_raw)
        elif prime_raw is not None:
            self.diag.error(where.field("prime"), "expected a string or a list of strings")
        on_dead = body.get("on_dead", body.get("on_exit"))
        adapter = body.get("adapter")
        if adapter is not None and adapter not in ("claude", "generic"):
            self.diag.error(
                where.field("adapter"),
                f'unknown adapter \'{adapter}\'; expected "claude" or "generic"',
            )
            adapter = None
        if adapter == "generic":
            for key in ("prime", "on_prompt"):
                if body.get(key) is not None:
                    self.diag.error(
                        where.field(key),
                        f'{key} is a Claude Code feature; not available with adapter = "generic"',
                    )
        return Agent(
            name=name,
            run=run,
            adapter=adapter,
            prompt=self.string(body, "prompt", where),
            prompt_file=self.string(body, "prompt_file", where),
            env=self.string_map(body, "env", where),
            cwd=self.string(body, "cwd", where),
            prime=prime,
            on_idle=self.action(body.get("on_idle"), where.field("on_idle"), "nudge"),
            on_dead=self.action(on_dead, where.field("on_dead"), "escalate"),
            on_prompt=self.action(body.get("on_prompt"), where.field("on_prompt"), "escalate"),
            on_error=self.on_error(body.get("on_error"), where.field("on_error")),
            notify=self.notify(body, where),
        )

    def queue(self, name: str, body: dict[str, Any]) -> Queue:
        where = Where("queue", name)
        kind = body.get("type", "external")
        if kind not in ("external", "persisted"):
            self.diag.error(
                where.field("type"),
                f'unknown queue type \'{kind}\'; expected "external" or "persisted"',
            )
            kind = "external"
        retry: Retry | None = None
        if body.get("retry") is not None:
            here = where.field("retry")
            table = self.table(body["retry"], here)
            attempts = table.get("attempts", 0)
            if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 0:
                self.diag.error(here.field("attempts"), "attempts must be a non-negative integer")
                attempts = 0
            cooldown = table.get("cooldown", "0s")
            seconds = self.duration(cooldown, here.field("cooldown"))
            retry = Retry(attempts=attempts, cooldown=str(cooldown), cooldown_seconds=seconds)
        poll = body.get("poll")
        poll_seconds = None
        if poll is not None:
            poll_seconds = self.duration(poll, where.field("poll"))
            poll = str(poll)
        return Queue(
            name=name,
            type=kind,
            list=self.string(body, "list", where),
            take=self.string(body, "take", where),
            vars=self.string_list(body, "vars", where),
            defaults=self.string_map(body, "defaults", where),
            retry=retry,
            poll=poll,
            poll_seconds=poll_seconds,
        )

    def worker(self, name: str, body: dict[str, Any]) -> Worker:
        where = Where("worker", name)
        refs: dict[str, str] = {}
        for block, key in (("source", "queue"), ("handler", "pipeline")):
            value = body.get(block)
            if value is None:
                self.diag.error(where, f"missing field `{block}`")
                continue
            table = self.table(value, where.field(block))
            target = self.required_string(table, key, where.field(block))
            if target is not None:
                refs[key] = target
        concurrency = body.get("concurrency", 1)
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 0:
            self.diag.error(
                where.field("concurrency"), "concurrency must be a non-negative integer"
            )
            concurrency = 1
        return Worker(
            name=name,
            queue=refs.get("queue", ""),
            pipeline=refs.get("pipeline", ""),
            concurrency=concurrency,
        )

    def cron(self, name: str, body: dict[str, Any]) -> Cron:
        """Structure and values (expression, zone, durations); the pipeline is checked later."""
        from ..schedules.spec import ScheduleError, parse_expression, parse_zone

        where = Where("cron", name)
        pipeline = ""
        run = body.get("run")
        if run is None:
            self.diag.error(where, "missing field `run`")
        elif (
            isinstance(run, dict) and list(run) == ["pipeline"] and isinstance(run["pipeline"], str)
        ):
            pipeline = run["pipeline"]
        else:
            self.diag.error(where.field("run"), 'invalid run: expected { pipeline = "<name>" }')
        schedule = self.string(body, "schedule", where)
        has_interval = body.get("interval") is not None
        if (schedule is None) == (not has_interval):
            both = "both" if has_interval else "neither"
            self.diag.error(
                where, f"a cron needs exactly one of `schedule` and `interval` (got {both})"
            )
        if schedule is not None:
            try:
                schedule = parse_expression(schedule)
            except ScheduleError as exc:
                self.diag.error(where.field("schedule"), str(exc))
        interval = interval_seconds = None
        if has_interval:
            interval = str(body["interval"])
            errors = len(self.diag.errors)
            interval_seconds = self.duration(body["interval"], where.field("interval"))
            if interval_seconds <= 0 and len(self.diag.errors) == errors:
                self.diag.error(where.field("interval"), "interval must be greater than zero")
        timezone = self.string(body, "timezone", where)
        if timezone is not None:
            try:
                parse_zone(timezone)
            except ScheduleError as exc:
                self.diag.error(where.field("timezone"), str(exc))
        concurrency = body.get("concurrency", 1)
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            self.diag.error(
                where.field("concurrency"),
                f"concurrency must be an integer of at least 1, got {concurrency!r}",
            )
            concurrency = 1
        catch_up = catch_up_seconds = None
        if body.get("catch_up") is not None:
            catch_up = str(body["catch_up"])
            catch_up_seconds = self.duration(body["catch_up"], where.field("catch_up"))
        return Cron(
            name=name,
            pipeline=pipeline,
            schedule=schedule,
            interval=interval,
            interval_seconds=interval_seconds,
            timezone=timezone,
            concurrency=concurrency,
            catch_up=catch_up,
            catch_up_seconds=catch_up_seconds,
        )


_BUILDERS = {
    "command": Builder.command,
    "pipeline": Builder.pipeline,
    "agent": Builder.agent,
    "queue": Builder.queue,
    "worker": Builder.worker,
    "cron": Builder.cron,
}


def build_runbook(
    path: str, entries: Entries, diag: Diagnostics, short: str = "", long: str = ""
) -> Runbook:
    """The model of one file; problems go to ``diag``. The first definition of a name wins."""
    builder = Builder(diag)
    maps: dict[str, dict[str, Any]] = {}
    for kind, build in _BUILDERS.items():
        built: dict[str, Any] = {}
        seen: dict[str, int] = {}
        for name, body in entries.get(kind, []):
            seen[name] = seen.get(name, 0) + 1
            if seen[name] > 1:
                diag.error(
                    Where(kind, name, occurrence=seen[name]), f"duplicate {kind} name '{name}'"
                )
                continue
            where = Where(kind, name)
            if not isinstance(body, dict):
                diag.error(where, f"expected a block or map, got {_type_name(body)}")
                continue
            built[name] = build(builder, name, body)
        maps[kind] = built
    return Runbook(
        path=path,
        commands=maps["command"],
        pipelines=maps["pipeline"],
        agents=maps["agent"],
        queues=maps["queue"],
        workers=maps["worker"],
        crons=maps["cron"],
        short_description=short,
        long_description=long,
    )
