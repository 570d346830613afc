"""Loading the three formats into the model: shapes, aliases, HCL specifics, JSON form, hash."""

from __future__ import annotations

from pathlib import Path

from oj_trio.runbook import (
    ActionConfig,
    ErrorMatcher,
    RunAgent,
    RunPipeline,
    RunShell,
    Transition,
    load_runbook,
    load_runbook_text,
    runbook_from_json,
    runbook_hash,
    runbook_to_json,
)
from oj_trio.runbook.loader import LoadedRunbook

HCL = """
# Short line one
# short line two
#
# Long text.
# Usage: oj run build x

command "build" {
  args = "<name> [--base <branch>]"
  defaults = { base = "main", n = 3, yes = true }
  run = { pipeline = "build" }
}

pipeline "build" {
  name = "${var.name}"
  input = ["name"]
  defaults = { x = "1" }
  cwd = "${invoke.dir}"
  locals {
    zeta  = "z"
    alpha = "${local.zeta}-a"
    home  = "${HOME:-/root}"
    lit   = "$${literal}"
  }
  notify {
    on_start = "start ${name}"
  }
  on_fail = "cleanup"
  step "init" {
    run = <<-SHELL
      echo "one \\"two\\"" \\
        && echo 'three'
    SHELL
    on_done = { step = "cleanup", attempts = 3 }
  }
  step "cleanup" {
    run = <<EOT
  raw "kept"
EOT
  }
}
"""


def load(text: str, fmt: str, *, check_shell: bool = False) -> LoadedRunbook:
    return load_runbook_text(text, f"rb.{fmt}", fmt, check_shell=check_shell)


def test_hcl_full_shape() -> None:
    loaded = load(HCL, "hcl", check_shell=True)
    assert loaded.errors == ()
    rb = loaded.runbook
    assert rb is not None
    command = rb.commands["build"]
    assert command.run == RunPipeline("build")
    assert command.defaults == {"base": "main", "n": "3", "yes": "true"}
    pipeline = rb.pipelines["build"]
    assert pipeline.vars == ("name",)
    assert pipeline.cwd == "${invoke.dir}"
    assert list(pipeline.locals) == ["zeta", "alpha", "home", "lit"]
    assert pipeline.locals["home"] == "${HOME:-/root}"
    assert pipeline.locals["lit"] == "${literal}"
    assert pipeline.notify.on_start == "start ${name}"
    assert pipeline.on_fail == Transition("cleanup")
    init, cleanup = pipeline.steps
    assert init.run == RunShell('echo "one \\"two\\"" \\\n  && echo \'three\'')
    assert init.on_done == Transition("cleanup", 3)
    assert cleanup.run == RunShell('  raw "kept"')
    assert rb.short_description == "Short line one\nshort line two"
    assert rb.long_description == "Long text.\nUsage: oj run build x"
    assert rb.command_description("build") == "short line two"


def test_env_default_in_hcl_quoted_string_parses() -> None:
    loaded = load('command "c" {\n  run = "echo ${USER:-nobody}"\n}\n', "hcl")
    assert loaded.errors == ()
    assert loaded.runbook is not None
    assert loaded.runbook.commands["c"].run == RunShell("echo ${USER:-nobody}")


TOML = """
[commands.c]
run = "echo hi"

[pipelines.p]
vars = ["a"]
workspace = "persistent"

[pipelines.p.locals]
b = "2"
a = "1"

[[pipelines.p.step]]
name = "one"
run = { agent = "ag" }
on_done = "two"

[[pipelines.p.step]]
name = "two"
run = "true"

[agents.ag]
run = "claude"
prompt = "do it"
on_idle = { action = "gate", run = "make check", attempts = "forever", cooldown = "30s" }
on_exit = "recover"
on_error = "fail"
prime = ["echo a", "echo b"]
env = { A = "1" }

[queues.q]
list = "echo []"
take = "echo ${item.id}"
poll = "1m"

[workers.w]
source = { queue = "q" }
handler = { pipeline = "p" }
concurrency = 0
"""


def test_toml_plural_keys_and_agent_fields() -> None:
    loaded = load(TOML, "toml", check_shell=True)
    assert loaded.errors == ()
    rb = loaded.runbook
    assert rb is not None
    assert list(rb.pipelines["p"].locals) == ["b", "a"]
    assert rb.pipelines["p"].workspace == "persistent"
    assert rb.pipelines["p"].steps[0].run == RunAgent("ag")
    agent = rb.agents["ag"]
    assert agent.on_idle == ActionConfig(
        "gate", run="make check", attempts=None, cooldown="30s", cooldown_seconds=30
    )
    assert agent.on_dead == ActionConfig("recover")
    assert agent.on_prompt == ActionConfig("escalate")
    assert agent.on_error == (ErrorMatcher(None, ActionConfig("fail")),)
    assert agent.prime == ("echo a", "echo b")
    assert agent.env == {"A": "1"}
    queue = rb.queues["q"]
    assert (queue.type, queue.poll_seconds) == ("external", 60)
    worker = rb.workers["w"]
    assert (worker.queue, worker.pipeline, worker.concurrency) == ("q", "p", 0)


def test_agent_defaults_and_error_rules() -> None:
    text = """
[agent.a]
run = "claude"
[[agent.a.on_error]]
match = "rate_limited"
action = "gate"
run = "sleep 1"
[[agent.a.on_error]]
action = "fail"
"""
    rb = load(text, "toml").runbook
    assert rb is not None
    agent = rb.agents["a"]
    assert agent.on_idle == ActionConfig("nudge")
    assert agent.on_dead == ActionConfig("escalate")
    assert agent.action_for_error("rate_limited") == ActionConfig("gate", run="sleep 1")
    assert agent.action_for_error("unauthorized") == ActionConfig("fail")


def test_json_step_map_and_list() -> None:
    as_map = '{"pipeline": {"p": {"steps": {"a": {"run": "true", "on_done": "b"}, "b": {"run": "true"}}}}}'
    as_list = '{"pipelines": {"p": {"step": [{"name": "a", "run": "true", "on_done": "b"}, {"name": "b", "run": "true"}]}}}'
    one, two = load(as_map, "json").runbook, load(as_list, "json").runbook
    assert one is not None and two is not None
    assert [s.name for s in one.pipelines["p"].steps] == ["a", "b"]
    assert one.pipelines == two.pipelines


def test_steps_may_be_named_after_step_fields() -> None:
    """``step "run" { run = … }``: a label that is also a field name is still a label."""
    text = 'pipeline "p" {\n  step "run" {\n    run = "true"\n    on_done = "on_fail"\n  }\n  step "on_fail" {\n    run = "true"\n  }\n}\n'
    loaded = load(text, "hcl")
    assert loaded.ok, loaded.errors
    assert loaded.runbook is not None
    assert [s.name for s in loaded.runbook.pipelines["p"].steps] == ["run", "on_fail"]
    as_json = '{"pipeline": {"p": {"step": [{"run": {"run": "true"}}, {"name": "b", "run": {"pipeline": "p"}}]}}}'
    steps = load(as_json, "json").runbook.pipelines["p"].steps  # type: ignore[union-attr]
    assert [s.name for s in steps] == ["run", "b"]


def test_unknown_fields_ignored_and_empty_files() -> None:
    assert load('command "c" {\n  run = "true"\n  bogus = 1\n}\nwhatever = 2\n', "hcl").ok
    for text, fmt in (("", "hcl"), ("", "toml"), ("{}", "json"), ("", "json"), ("# c\n", "hcl")):
        loaded = load(text, fmt)
        assert loaded.ok and loaded.runbook is not None
        assert loaded.runbook.commands == {}


def test_steps_named_done_failed_cancelled_are_ordinary() -> None:
    text = """
pipeline "p" {
  step "done" {
    run = "true"
    on_done = { step = "failed" }
  }
  step "failed" {
    run = "true"
    on_done = { step = "cancelled" }
  }
  step "cancelled" { run = "true" }
}
"""
    loaded = load(text, "hcl")
    assert loaded.ok
    assert loaded.runbook is not None
    assert loaded.runbook.pipelines["p"].initial_step == "done"


def test_pipeline_without_steps_has_init() -> None:
    rb = load('pipeline "p" {}\n', "hcl").runbook
    assert rb is not None
    assert rb.pipelines["p"].initial_step == "init"


def test_json_form_round_trip_and_hash() -> None:
    rb = load(HCL, "hcl").runbook
    other = load(TOML, "toml").runbook
    assert rb is not None and other is not None
    data = runbook_to_json(rb)
    assert "path" not in data
    assert data["pipelines"]["build"]["locals"][0] == ["zeta", "z"]
    assert runbook_from_json(data, rb.path) == rb
    assert runbook_from_json(runbook_to_json(other), other.path) == other
    digest = runbook_hash(rb)
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert digest == runbook_hash(load(HCL, "hcl").runbook)  # type: ignore[arg-type]
    assert digest != runbook_hash(other)
    moved = load(HCL.replace('zeta  = "z"', 'zeta  = "y"'), "hcl").runbook
    assert moved is not None and runbook_hash(moved) != digest


def test_load_runbook_file_is_memoised_and_refreshed(tmp_path: Path) -> None:
    file = tmp_path / "a.hcl"
    file.write_text('command "c" {\n  run = "true"\n}\n')
    first = load_runbook(file, "a.hcl")
    assert load_runbook(file, "a.hcl") is first
    file.write_text('command "dd" {\n  run = "true"\n}\n')
    refreshed = load_runbook(file, "a.hcl")
    assert refreshed.runbook is not None and "dd" in refreshed.runbook.commands


def test_unreadable_file(tmp_path: Path) -> None:
    loaded = load_runbook(tmp_path / "missing.hcl", "missing.hcl")
    assert not loaded.ok
    assert str(loaded.errors[0]).startswith("missing.hcl: cannot read")
