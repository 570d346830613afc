"""Black-box: `oj run` (argument handling and errors), locals and templates in steps."""

from __future__ import annotations

import re

from blackbox import OjEnv

BUILD = """
command "build" {
  description = "Build a feature"
  args        = "<name> <prompt>"
  run         = { pipeline = "build" }
}
command "say" {
  args = "<a> <b> <c> <d> <e>"
  run  = { pipeline = "say" }
}
command "shsay" {
  args = "<msg>"
  run  = "printf '%s\\n' \\"${args.msg}\\" >> shsay.out"
}
pipeline "build" {
  step "execute" {
    run = "echo \\"${var.name}: ${var.prompt}\\" >> build.out"
  }
}
pipeline "say" {
  step "a" {
    run = <<-SHELL
      printf '%s\\n' "${var.a}" "${args.b}" "${var.c}" "${var.d}" "${var.e}" > say.out
    SHELL
  }
}
"""


def test_run_arguments_and_errors(ojenv: OjEnv) -> None:
    ojenv.runbook("build.hcl", BUILD)

    listing = ojenv.oj("run")
    assert listing.returncode == 2
    assert "Available Commands:" in listing.stderr
    assert "build <name> <prompt>" in listing.stderr

    helped = ojenv.oj("run", "build", "--help")
    assert helped.returncode == 0, helped.stderr
    assert "Usage: oj run build <name> <prompt>" in helped.stdout + helped.stderr

    missing = ojenv.oj("run", "build")
    assert missing.returncode != 0
    # reference: `missing required argument: <name>`; the angle brackets are optional here
    # (the reference text is ambiguous about whether they are a placeholder)
    assert re.search(r"missing required argument: <?name>?$", missing.stderr, re.M)
    missing2 = ojenv.oj("run", "build", "x")
    assert missing2.returncode != 0
    assert re.search(r"missing required argument: <?prompt>?$", missing2.stderr, re.M)

    unknown = ojenv.oj("run", "nonexistent", "arg")
    assert unknown.returncode != 0
    assert "unknown command: nonexistent" in unknown.stderr

    undeclared = ojenv.oj("run", "build", "x", "y", "-a", "key=value")
    assert undeclared.returncode != 0
    assert "unknown option: --key" in undeclared.stderr

    # none of the rejected invocations created a pipeline
    assert ojenv.ok("pipeline", "list") == "No pipelines\n"

    # `--` forces positionals: option-looking words become the args
    pid = ojenv.run_pipeline("build", "--", "--name-ish", "-p")
    assert ojenv.oj("pipeline", "wait", pid).returncode == 0
    assert (ojenv.project / "build.out").read_text() == "--name-ish: -p\n"
    assert ojenv.pipeline(pid)["vars"]["prompt"] == "-p"


def test_templates_keep_values_inert(ojenv: OjEnv) -> None:
    ojenv.runbook("build.hcl", BUILD)
    values = ["$(touch pwned)", "it's", 'say "hello"', "`touch pwned2` $HOME \\n", "a\\b $"]
    pid = ojenv.run_pipeline("say", *values)
    wait = ojenv.oj("pipeline", "wait", pid)
    assert wait.returncode == 0, wait.stderr
    assert (ojenv.project / "say.out").read_text().splitlines() == values

    shell_ids = [ojenv.run_pipeline("shsay", value) for value in values]
    for shell_id in shell_ids:
        assert ojenv.oj("pipeline", "wait", shell_id).returncode == 0
    assert sorted((ojenv.project / "shsay.out").read_text().splitlines()) == sorted(values)
    assert not (ojenv.project / "pwned").exists()
    assert not (ojenv.project / "pwned2").exists()
    # `oj pipeline show` keeps the var verbatim
    assert ojenv.pipeline(pid)["vars"]["b"] == "it's"


LOCALS = """
command "loc" {
  args = "<name> <x>"
  run  = { pipeline = "loc" }
}
command "badlocal" {
  args = "<name>"
  run  = { pipeline = "badlocal" }
}
pipeline "loc" {
  workspace = "ephemeral"
  locals {
    greeting = "hi ${var.x}"
    nonce    = "${workspace.nonce}"
    stamp    = "$(cat counter.txt)"
    both     = "${local.greeting}/${local.nonce}"
  }
  step "a" {
    run = <<-SHELL
      echo changed > "${invoke.dir}/counter.txt"
      printf '%s\\n' "${local.greeting}" "${local.stamp}" "${local.both}" > "${invoke.dir}/loc.out"
      printf '%s\\n' "${name}" "${pipeline_id}" "${workspace}" "${workspace.root}" >> "${invoke.dir}/loc.out"
    SHELL
    on_done = "b"
  }
  step "b" {
    run = "printf '%s\\n' \\"${local.stamp}\\" >> \\"${invoke.dir}/loc.out\\""
  }
}
pipeline "badlocal" {
  locals {
    bad = "$(echo boom >&2; false)"
  }
  step "a" {
    run = "touch ran"
  }
}
"""


def test_locals_resolved_once_at_creation(ojenv: OjEnv) -> None:
    ojenv.runbook("loc.hcl", LOCALS)
    sub = ojenv.project / "sub"
    sub.mkdir()
    (sub / "counter.txt").write_text("first\n")
    (ojenv.project / "counter.txt").write_text("wrong dir\n")

    out = ojenv.ok("run", "loc", "n1", "it's $x", cwd=sub)
    short = next(
        line.split()[-1] for line in out.splitlines() if line.strip().startswith("oj pipeline show")
    )
    pid = ojenv.pipeline(short)["id"]
    wait = ojenv.oj("pipeline", "wait", pid)
    assert wait.returncode == 0, wait.stderr
    detail = ojenv.pipeline(pid)
    nonce = pid[:8]
    ws_root = str(ojenv.state / "workspaces" / f"ws-n1-{nonce}")
    assert detail["vars"]["local.greeting"] == "hi it's $x"
    assert detail["vars"]["local.nonce"] == nonce
    assert detail["vars"]["local.stamp"] == "first"  # $(…) ran in invoke.dir
    assert detail["vars"]["local.both"] == f"hi it's $x/{nonce}"  # a later local sees earlier
    show = ojenv.ok("pipeline", "show", pid)
    assert "    local.stamp: first" in show.splitlines()
    # evaluated once: step b sees the creation-time value although step a changed the file
    assert (sub / "loc.out").read_text().splitlines() == [
        "hi it's $x",
        "first",
        f"hi it's $x/{nonce}",
        "n1",
        pid,
        ws_root,
        ws_root,
        "first",
    ]


def test_failing_local_aborts_creation(ojenv: OjEnv) -> None:
    ojenv.runbook("loc.hcl", LOCALS)
    ojenv.ok("daemon", "start")
    before = ojenv.json("pipeline", "list")
    bad = ojenv.oj("run", "badlocal", "x")
    assert bad.returncode != 0
    assert "local.bad evaluation failed" in bad.stderr
    assert "boom" in bad.stderr
    assert ojenv.json("pipeline", "list") == before
    assert not (ojenv.project / "ran").exists()


ENVRB = """
command "envy" {
  args = "<name>"
  run  = { pipeline = "envy" }
}
command "cwdy" {
  args = "<dir>"
  run  = { pipeline = "cwdy" }
}
pipeline "cwdy" {
  cwd = "${invoke.dir}/${var.dir}"
  step "a" {
    run = "pwd > here.txt"
  }
}
pipeline "envy" {
  step "show" {
    run = <<-SHELL
      printf '%s\\n' "$OJ_PIPELINE_ID" "$OJ_STEP" "$OJ_NAMESPACE" "$OJ_STATE_DIR" \\
        "${OJ_PIPELINE_TEST_UNSET:-fallback}" > "${var.name}.env"
    SHELL
  }
}
"""


def test_step_environment_and_namespace(ojenv: OjEnv) -> None:
    ojenv.runbook("envy.hcl", ENVRB)
    pid = ojenv.run_pipeline("envy", "one")
    assert ojenv.oj("pipeline", "wait", pid).returncode == 0
    assert (ojenv.project / "one.env").read_text().splitlines() == [
        pid,
        "show",
        ojenv.project.name,  # the namespace defaults to the project dir's basename
        str(ojenv.state),
        "fallback",  # ${NAME:-default} is resolved by oj from the daemon's environment
    ]
    assert ojenv.pipeline(pid)["namespace"] == ojenv.project.name

    # OJ_NAMESPACE / --project choose the namespace (SPEC 4.2)
    out = ojenv.ok("run", "envy", "two", env={"OJ_NAMESPACE": "other"})
    assert "Project: other" in out
    short = next(
        line.split()[-1] for line in out.splitlines() if line.strip().startswith("oj pipeline show")
    )
    assert ojenv.oj("pipeline", "wait", short).returncode == 0
    assert (ojenv.project / "two.env").read_text().splitlines()[2] == "other"
    assert ojenv.pipeline(short)["namespace"] == "other"
    out = ojenv.ok("--project", "third", "run", "envy", "three")
    assert "Project: third" in out
    listing = ojenv.ok("pipeline", "list").splitlines()
    assert listing[0].split()[:3] == ["ID", "PROJECT", "NAME"]

    # a pipeline `cwd` template sets the steps' working directory
    (ojenv.project / "sub").mkdir()
    cwd_id = ojenv.run_pipeline("cwdy", "sub")
    assert ojenv.oj("pipeline", "wait", cwd_id).returncode == 0
    assert (ojenv.project / "sub" / "here.txt").read_text().strip() == str(ojenv.project / "sub")
