# Demo runbook: greetings and a throwaway workspace, using only bash and git.
# Say hello through a three-step pipeline.
#
# Try it from a project that has this file under .oj/runbooks/:
# Usage: oj run hello world --greeting Hi --shout
# Usage: oj run uptime
# Usage: oj run scratch "First note" some words

command "hello" {
  description = "Greet someone through a three-step pipeline"
  args        = "<name> [--greeting <greeting>] [--shout]"
  defaults = {
    greeting = "Hello"
    shout    = "false"
  }
  run = { pipeline = "greet" }
}

command "uptime" {
  description = "Print the machine's uptime (a plain shell command)"
  run         = "uptime || cat /proc/uptime"
}

command "scratch" {
  description = "Write a note into a fresh ephemeral workspace"
  args        = "<title> [words...]"
  defaults    = { words = "(no words)" }
  run         = { pipeline = "scratch" }
}

pipeline "greet" {
  name = "greet ${var.args.name}"
  vars = ["name", "greeting"]

  locals {
    who     = "${args.name}"
    message = "${args.greeting}, ${local.who}!"
  }

  step "prepare" {
    run     = "test -n \"${local.who}\" && echo \"preparing a greeting for ${local.who}\""
    on_done = { step = "greet" }
    on_fail = { step = "complain" }
  }

  step "greet" {
    run = <<-SHELL
      msg="${local.message}"
      if [ "${args.shout}" = "true" ]; then
        msg=$(printf '%s' "$msg" | tr '[:lower:]' '[:upper:]')
      fi
      printf '%s\n' "$msg"
    SHELL
    on_done = { step = "done" }
    on_fail = { step = "complain", attempts = 1 }
  }

  step "complain" {
    run     = "echo \"could not greet '${local.who}'\" >&2; exit 1"
  }

  step "done" {
    run = "echo \"greeted ${local.who} in pipeline ${pipeline_id}\""
  }
}

pipeline "scratch" {
  name      = "${var.args.title}"
  workspace = "ephemeral"

  locals {
    file = "${workspace.root}/NOTE.md"
  }

  step "init" {
    run     = "git init -q \"${workspace.root}\""
    on_done = { step = "write" }
  }

  step "write" {
    run = <<-SHELL
      printf '# %s\n\n%s\n' "${args.title}" "${args.words}" > "${local.file}"
      git -C "${workspace.root}" add NOTE.md
      git -C "${workspace.root}" -c user.name=oj -c user.email=oj@localhost commit -qm "note: ${args.title}"
    SHELL
    on_done = { step = "show" }
  }

  step "show" {
    run = "cat \"${local.file}\" && git -C \"${workspace.root}\" log --oneline"
  }
}
