# Code review with an agent, fed by a persisted queue and drained by a worker.
# Queue a branch for an AI review.
#
# Needs Claude Code (`claude`) on PATH when the daemon runs agents.
# Usage: oj run review feature/login "Login button"

command "review" {
  args = "<branch> <title> [--base <base>]"
  run  = "oj queue push reviews --var branch=\"${args.branch}\" --var title=\"${args.title}\" --var base=\"${args.base}\""
  defaults = {
    base = "main"
  }
}

queue "reviews" {
  type     = "persisted"
  vars     = ["branch", "title", "base"]
  defaults = { base = "main" }
  retry = {
    attempts = 2
    cooldown = "30s"
  }
}

worker "review" {
  source      = { queue = "reviews" }
  handler     = { pipeline = "review" }
  concurrency = 2
}

pipeline "review" {
  name      = "review ${var.item.title}"
  vars      = ["item"]
  workspace = "ephemeral"

  locals {
    repo = "$(git -C ${invoke.dir} rev-parse --show-toplevel)"
  }

  notify {
    on_done = "Review of ${var.item.branch} finished"
    on_fail = "Review of ${var.item.branch} failed: ${error}"
  }

  step "checkout" {
    run     = "git -C \"${local.repo}\" worktree add --detach \"${workspace.root}\" \"${item.branch}\""
    on_done = { step = "review" }
    on_fail = { step = "cleanup" }
  }

  step "review" {
    run     = { agent = "reviewer" }
    on_done = { step = "cleanup" }
    on_fail = { step = "cleanup" }
  }

  step "cleanup" {
    run = "git -C \"${local.repo}\" worktree remove --force \"${workspace.root}\" || true"
  }
}

agent "reviewer" {
  run    = "claude --model opus --dangerously-skip-permissions"
  prompt = <<-PROMPT
    Review the changes of branch ${var.item.branch} ("${var.item.title}") against
    ${var.item.base}. Write your findings to REVIEW.md in the working directory.
  PROMPT

  on_idle = {
    action   = "nudge"
    message  = "Keep going: finish REVIEW.md, then stop."
    attempts = 3
    cooldown = "1m"
  }
  on_dead = {
    action = "gate"
    run    = "test -s REVIEW.md"
  }
  on_prompt = "escalate"
  on_error = [
    { match = "rate_limited", action = "gate", run = "sleep 60" },
    { action = "escalate" },
  ]
}
