"""Validation (reference §1.13): every error and warning message, located."""

from __future__ import annotations

import pytest

from oj_trio.runbook import load_runbook_text


def problems(text: str, fmt: str = "hcl", *, check_shell: bool = False) -> list[str]:
    loaded = load_runbook_text(text, f"rb.{fmt}", fmt, check_shell=check_shell)
    return [str(e) for e in loaded.errors]


def warnings(text: str, fmt: str = "hcl") -> list[str]:
    loaded = load_runbook_text(text, f"rb.{fmt}", fmt, check_shell=False)
    assert loaded.errors == ()
    return [str(w) for w in loaded.warnings]


def only(text: str, fmt: str = "hcl", *, check_shell: bool = False) -> str:
    found = problems(text, fmt, check_shell=check_shell)
    assert len(found) == 1, found
    return found[0]


# --- syntax errors -------------------------------------------------------------------------


def test_hcl_syntax_error_is_located() -> None:
    assert only('command "x" {\n  run = \n}\n') == (
        "rb.hcl:2:9: HCL parse error: unexpected end of line"
    )
    assert only('command "x" {\n  run = "a" b\n}\n') == (
        "rb.hcl:3:1: HCL parse error: unexpected token '}'"
    )


def test_hcl_unterminated_block() -> None:
    assert only('command "x" {\n  run = "a"\n').startswith(
        "rb.hcl:3:1: HCL parse error: unexpected"
    )


def test_toml_syntax_error_is_located() -> None:
    message = only("[command.x]\nrun = \n", "toml")
    assert message.startswith("rb.toml:2:7: TOML parse error: ")


def test_json_syntax_error_is_located() -> None:
    assert only('{\n  "command": {,}\n}', "json") == (
        "rb.json:2:15: JSON parse error: Expecting property name enclosed in double quotes"
    )


# --- structure -----------------------------------------------------------------------------


def test_missing_run_fields() -> None:
    assert only('command "c" {}\n') == "rb.hcl:1:1: command.c: missing field `run`"
    text = 'pipeline "p" {\n  step "s" {\n  }\n}\n'
    assert only(text) == "rb.hcl:2:3: pipeline.p.step[0](s): missing field `run`"
    assert only('agent "a" {\n  prompt = "x"\n}\n') == "rb.hcl:1:1: agent.a: missing field `run`"


def test_invalid_run_directive() -> None:
    assert only('command "c" {\n  run = { nope = "x" }\n}\n') == (
        "rb.hcl:2:3: command.c.run: invalid run directive: expected a shell command, "
        '{ pipeline = "<name>" } or { agent = "<name>" }'
    )


def test_step_name_required_in_toml() -> None:
    text = '[pipeline.p]\n[[pipeline.p.step]]\nrun = "true"\n'
    assert only(text, "toml") == "rb.toml:2:1: pipeline.p.step[0]: step name is required"


def test_bad_workspace() -> None:
    assert only('pipeline "p" {\n  workspace = "temp"\n}\n') == (
        "rb.hcl:2:3: pipeline.p.workspace: invalid workspace 'temp'; "
        'expected "ephemeral" or "persistent"'
    )


def test_bad_arg_spec() -> None:
    text = 'command "c" {\n  args = "<a> [b] <c>"\n  run = "true"\n}\n'
    assert only(text) == (
        "rb.hcl:2:3: command.c.args: optional positional cannot precede required: c"
    )


def test_wrong_types() -> None:
    assert only('command "c" {\n  run = "true"\n  description = 3\n}\n') == (
        "rb.hcl:3:3: command.c.description: expected a string, got integer"
    )
    assert only('pipeline "p" {\n  vars = "x"\n}\n') == (
        "rb.hcl:2:3: pipeline.p.vars: expected a list of strings"
    )


def test_duplicate_labels() -> None:
    text = 'pipeline "a" {}\ncommand "a" {\n  run = "true"\n}\npipeline "a" {}\n'
    assert only(text) == "rb.hcl:5:1: pipeline.a: duplicate pipeline name 'a'"


def test_duplicate_across_singular_and_plural_json() -> None:
    text = '{"command": {"c": {"run": "true"}}, "commands": {"c": {"run": "true"}}}'
    assert only(text, "json").endswith("command.c: duplicate command name 'c'")


def test_duplicate_json_keys() -> None:
    text = '{"queue": {"q": {"type": "persisted", "vars": ["a"]}, "q": {}}}'
    assert only(text, "json").endswith("queue.q: duplicate queue name 'q'")


# --- agent actions -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("trigger", "action", "reason"),
    [
        ("on_idle", "recover", "recover is for re-spawning after exit; agent is still running"),
        ("on_dead", "nudge", "nudge sends a message to a running agent; agent has exited"),
        ("on_error", "nudge", "nudge sends a message to a running agent; use escalate instead"),
        ("on_error", "recover", "recover is for clean exits; use escalate for error handling"),
        ("on_error", "done", "done marks success; API errors are not success states"),
        ("on_prompt", "nudge", "nudge sends a message; agent is at a prompt, not idle"),
        ("on_prompt", "recover", "recover is for re-spawning after exit; agent is still running"),
    ],
)
def test_action_trigger_compatibility(trigger: str, action: str, reason: str) -> None:
    text = f'agent "a" {{\n  run = "claude"\n  {trigger} = "{action}"\n}}\n'
    assert only(text) == (
        f"rb.hcl:3:3: agent.a.{trigger}: action '{action}' is not valid for {trigger}: {reason}"
    )


def test_action_on_exit_alias_and_list_entries_checked() -> None:
    text = 'agent "a" {\n  run = "claude"\n  on_exit = "nudge"\n}\n'
    assert only(text).endswith(
        "agent.a.on_dead: action 'nudge' is not valid for on_dead: "
        "nudge sends a message to a running agent; agent has exited"
    )
    text = 'agent "a" {\n  run = "claude"\n  on_error = [{ match = "unauthorized", action = "done" }]\n}\n'
    assert "agent.a.on_error: action 'done' is not valid for on_error" in only(text)


def test_action_field_errors() -> None:
    def agent(on_idle: str) -> str:
        return only(f'agent "a" {{\n  run = "claude"\n  on_idle = {on_idle}\n}}\n')

    assert agent('"sleep"') == (
        "rb.hcl:3:3: agent.a.on_idle: unknown action 'sleep'; "
        "expected one of: nudge, done, fail, recover, escalate, gate"
    )
    assert agent('{ action = "nudge", attempts = 0 }') == (
        "rb.hcl:3:33: agent.a.on_idle.attempts: attempts must be >= 1"
    )
    assert agent('{ action = "nudge", attempts = "often" }').endswith(
        "agent.a.on_idle.attempts: invalid attempts value 'often'; "
        'expected a positive integer or "forever"'
    )
    assert agent('{ action = "nudge", cooldown = "soon" }').endswith(
        "agent.a.on_idle.cooldown: invalid number in duration: soon"
    )
    assert agent('{ message = "x" }').endswith("agent.a.on_idle: missing field `action`")
    assert agent('{ action = "nudge", append = "yes" }').endswith(
        "agent.a.on_idle.append: expected a boolean, got string"
    )


def test_unknown_error_match() -> None:
    text = 'agent "a" {\n  run = "claude"\n  on_error = [{ match = "boom", action = "fail" }]\n}\n'
    assert only(text).endswith(
        "agent.a.on_error[0].match: unknown error type 'boom'; expected one of: unauthorized, "
        "out_of_credits, no_internet, rate_limited"
    )


# --- agent run line ------------------------------------------------------------------------


def test_agent_run_checks() -> None:
    def agent(run: str, prompt: bool = False) -> list[str]:
        extra = '  prompt = "p"\n' if prompt else ""
        return problems(
            f"[agent.a]\nrun = '{run}'\n{extra}".replace("[agent.a]\n", "[agent.a]\n"), "toml"
        )

    assert agent("claude --model opus") == []
    assert agent("/usr/local/bin/claudeless --scenario s.toml") == []
    assert agent("FOO=1 claude") == []
    assert agent("$CLAUDE --x") == []
    assert agent("codex run") == [
        "rb.toml:2:1: agent.a.run: agent command must be 'claude' or 'claudeless', got 'codex'"
    ]
    assert agent("claude --session-id=x") == [
        "rb.toml:2:1: agent.a.run: agent run must not set --session-id (oj assigns the session id)"
    ]
    positional = agent("claude --model opus hello", prompt=True)
    assert positional == [
        "rb.toml:2:1: agent.a.run: agent run must not contain positional arguments when prompt "
        "or prompt_file is set (found 'hello'); use ${prompt} to place the prompt inline"
    ]
    assert agent("claude --allowed-tools Read Write --model opus", prompt=True) == []
    assert agent('claude "${prompt}"', prompt=True) == []
    assert agent("claude hello") == []


# --- shell syntax --------------------------------------------------------------------------


def test_shell_syntax_every_field() -> None:
    text = """
command "c" { run = "echo 'unterminated" }
pipeline "p" {
  step "ok" {
    run = "echo \\"${var.x.y}\\" ${HOME:-x}"
    on_done = { step = "bad" }
  }
  step "bad" { run = "if true; then" }
}
agent "a" {
  run = "claude ("
  prime = ["echo ok", "echo )"]
  on_dead = { action = "gate", run = "test -f x &&" }
}
queue "q" {
  list = "echo []"
  take = "echo ${item.id} |"
}
"""
    found = problems(text, check_shell=True)
    entities = [line.split(": ")[1] for line in found]
    assert entities == [
        "command.c.run",
        "pipeline.p.step[1](bad).run",
        "agent.a.run",
        "agent.a.prime[1]",
        "agent.a.on_dead.run",
        "queue.q.take",
    ]
    assert all(": invalid shell command: " in line for line in found)
    assert found[1].startswith("rb.hcl:8:")


def test_empty_shell_command() -> None:
    assert only('command "c" {\n  run = "  "\n}\n', check_shell=True) == (
        "rb.hcl:2:3: command.c.run: invalid shell command: empty command"
    )


@pytest.mark.parametrize(
    ("ref", "hint"),
    [
        ("var.x", "use ${args.<name>} to reference command arguments"),
        ("input.x", "use ${args.<name>} to reference command arguments"),
        ("local.x", "${local.*} is only available in pipeline steps"),
        ("step.x", "${step.*} is only available in pipeline steps"),
        ("workspace.root", "commands have ${workspace} (the execution path), not ${workspace.*}"),
    ],
)
def test_command_run_template_namespace(ref: str, hint: str) -> None:
    text = f'command "c" {{\n  run = "echo ${{{ref}}}"\n}}\n'
    assert only(text) == (
        f"rb.hcl:2:3: command.c.run: template reference ${{{ref}}} is not available in "
        f"command.run; {hint}"
    )


def test_command_run_allowed_namespaces() -> None:
    text = 'command "c" {\n  run = "echo ${args.x} ${invoke.dir} ${workspace} ${name} ${pipeline_id}"\n}\n'
    assert problems(text) == []


# --- queues and workers --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('take = "t"', "queue.q: external queue requires 'list' field"),
        ('list = "l"', "queue.q: external queue requires 'take' field"),
        (
            'list = "l"\n  take = "t"\n  retry = { attempts = 1 }',
            "queue.q.retry: external queue must not have 'retry' field",
        ),
        ('type = "persisted"', "queue.q: persisted queue requires 'vars' field"),
        (
            'type = "persisted"\n  vars = ["a"]\n  list = "l"',
            "queue.q.list: persisted queue must not have 'list' field",
        ),
        (
            'type = "persisted"\n  vars = ["a"]\n  take = "t"',
            "queue.q.take: persisted queue must not have 'take' field",
        ),
        (
            'type = "persisted"\n  vars = ["a"]\n  poll = "1m"',
            "queue.q.poll: persisted queue must not have 'poll' field",
        ),
        (
            'type = "persisted"\n  vars = ["a"]\n  retry = { cooldown = "1 fortnight" }',
            "queue.q.retry.cooldown: unknown duration suffix: fortnight",
        ),
        (
            'type = "persisted"\n  vars = ["a"]\n  retry = { attempts = -1 }',
            "queue.q.retry.attempts: attempts must be a non-negative integer",
        ),
        (
            'type = "stream"\n  list = "l"\n  take = "t"',
            "queue.q.type: unknown queue type 'stream'",
        ),
        ('list = "l"\n  take = "t"\n  poll = ""', "queue.q.poll: empty duration string"),
    ],
)
def test_queue_rules(body: str, message: str) -> None:
    found = only(f'queue "q" {{\n  {body}\n}}\n')
    assert message in found


def test_persisted_queue_retry_parsed() -> None:
    text = 'queue "q" {\n  type = "persisted"\n  vars = ["a"]\n  retry = { attempts = 2, cooldown = "5m" }\n}\n'
    loaded = load_runbook_text(text, "rb.hcl", check_shell=False)
    assert loaded.ok and loaded.runbook is not None
    retry = loaded.runbook.queues["q"].retry
    assert retry is not None and (retry.attempts, retry.cooldown_seconds) == (2, 300)


def test_worker_references() -> None:
    text = """
queue "zq" {
  type = "persisted"
  vars = ["a"]
}
queue "aq" {
  type = "persisted"
  vars = ["a"]
}
pipeline "zp" {}
pipeline "ap" {}
worker "w" {
  source  = { queue = "nope" }
  handler = { pipeline = "gone" }
}
"""
    assert problems(text) == [
        "rb.hcl:13:15: worker.w.source.queue: references unknown queue 'nope'; "
        "available queues: zq, aq",
        "rb.hcl:14:15: worker.w.handler.pipeline: references unknown pipeline 'gone'; "
        "available pipelines: zp, ap",
    ]


def test_worker_structure() -> None:
    assert problems('worker "w" {}\n') == [
        "rb.hcl:1:1: worker.w: missing field `source`",
        "rb.hcl:1:1: worker.w: missing field `handler`",
    ]
    text = 'worker "w" {\n  source = {}\n  handler = { pipeline = "p" }\n  concurrency = -1\n}\npipeline "p" {}\n'
    assert problems(text) == [
        "rb.hcl:2:3: worker.w.source: missing field `queue`",
        "rb.hcl:4:3: worker.w.concurrency: concurrency must be a non-negative integer",
    ]


# --- steps and references ------------------------------------------------------------------


def test_duplicate_step_names() -> None:
    text = 'pipeline "p" {\n  step "a" {\n    run = "true"\n    on_done = "a"\n  }\n  step "a" { run = "true" }\n}\n'
    assert problems(text) == ["rb.hcl:6:3: pipeline.p.step[1](a): duplicate step name 'a'"]


def test_transition_targets() -> None:
    text = """
pipeline "p" {
  on_cancel = "nowhere"
  step "b" {
    run = "true"
    on_done = { step = "a" }
    on_fail = "missing"
  }
  step "a" {
    run = "true"
    on_done = "done"
  }
}
"""
    assert problems(text) == [
        "rb.hcl:3:3: pipeline.p.on_cancel: references unknown step 'nowhere'; "
        "available steps: a, b",
        "rb.hcl:7:5: pipeline.p.step[0](b).on_fail: references unknown step 'missing'; "
        "available steps: a, b",
    ]


def test_transition_attempts_must_be_positive() -> None:
    text = 'pipeline "p" {\n  step "a" {\n    run = "true"\n    on_fail = { step = "a", attempts = 0 }\n  }\n}\n'
    assert only(text).endswith("pipeline.p.step[0](a).on_fail.attempts: attempts must be >= 1")


def test_run_references() -> None:
    text = """
agent "b" { run = "claude" }
agent "a" { run = "claude" }
pipeline "p" {
  step "x" {
    run = { agent = "ghost" }
    on_done = "y"
  }
  step "y" { run = { pipeline = "p" } }
}
command "c1" { run = { pipeline = "nope" } }
command "c2" { run = { agent = "nope" } }
"""
    assert problems(text) == [
        "rb.hcl:6:5: pipeline.p.step[0](x).run: references unknown agent 'ghost'; "
        "available agents: a, b",
        "rb.hcl:9:14: pipeline.p.step[1](y).run: nested pipeline steps are not supported",
        "rb.hcl:11:16: command.c1.run: references unknown pipeline 'nope'; available pipelines: p",
        "rb.hcl:12:16: command.c2.run: references unknown agent 'nope'; available agents: a, b",
    ]


def test_all_problems_collected_in_one_pass() -> None:
    text = """
command "c" {}
pipeline "p" { workspace = "x" }
queue "q" { type = "persisted" }
agent "a" {
  run = "claude"
  on_idle = "recover"
}
"""
    assert len(problems(text)) == 4


# --- warnings ------------------------------------------------------------------------------


def test_warnings() -> None:
    text = """
pipeline "p" {
  step "first" { run = "true" }
  step "orphan" { run = "true" }
}
pipeline "q" {
  step "a" {
    run = "true"
    on_done = "b"
    on_fail = "handler"
  }
  step "handler" { run = "true" }
  step "b" { run = "true" }
}
pipeline "r" {
  on_done = "z"
  step "y" { run = "true" }
  step "z" { run = "true" }
}
"""
    # pipeline r has a pipeline-level on_done, handler is reached only via on_fail: no warnings
    assert warnings(text) == [
        "rb.hcl:3:3: pipeline.p.step[0](first): step 'first' has no on_done; it will complete "
        "the pipeline instead of advancing",
        "rb.hcl:4:3: pipeline.p.step[1](orphan): step 'orphan' is unreachable (no transition "
        "leads to it)",
    ]
