# Plan, implement and submit a feature with an AI coding agent (Claude Code), in a worktree.
#
# plan: an agent writes PLAN.md on a fresh branch feature/<name>; implement: another agent
# (same CLI, new session) implements the plan; commit; submit: the branch goes to the merge
# queue of merge.hcl, whose worker merges it into main. Each agent must finish by running
# `oj emit agent:signal --agent <its id> '{"kind": "complete"}'` (the prompt says so, and the
# Stop hook insists); an agent that idles is nudged once, then the pipeline waits for a human
# (`oj status` lists it under "needs attention"; `oj pipeline resume <id> -m "..."` answers).
# Needs git, tmux and `claude` on the daemon's PATH (log in to Claude Code once by hand).
# Usage: oj run feature login "Add a login button"
# Then:  oj pipeline peek <id>; oj pipeline attach <id>; oj agent logs <id>; oj queue items merges

command "feature" {
  description = "Plan and implement a feature with Claude Code, then queue it for merging"
  args        = "<name> <description>"
  run         = { pipeline = "feature" }
}

pipeline "feature" {
  name      = "feature ${var.name}"
  workspace = "ephemeral"
  on_fail   = { step = "abandon" }
  on_cancel = { step = "abandon" }

  locals {
    repo   = "$(git -C ${invoke.dir} rev-parse --show-toplevel)"
    branch = "feature/${var.name}"
  }

  step "checkout" {
    run     = "git -C \"${local.repo}\" worktree add -q -b \"${local.branch}\" \"${workspace.root}\" HEAD"
    on_done = { step = "plan" }
  }

  step "plan" {
    run     = { agent = "planner" }
    on_done = { step = "implement" }
  }

  step "implement" {
    run     = { agent = "implementer" }
    on_done = { step = "commit" }
  }

  step "commit" {
    run     = "git add -A && git -c user.name=oj -c user.email=oj@localhost commit -q -m \"${var.description}\""
    on_done = { step = "submit" }
  }

  # Reached only through on_fail / on_cancel: drop the worktree, keep the branch, end failed.
  step "abandon" {
    run = "git -C \"${local.repo}\" worktree remove --force \"${workspace.root}\" || true; exit 1"
  }

  # Last: the branch stays; its worktree goes (the merge worker checks the branch out elsewhere).
  step "submit" {
    run = <<-SHELL
      cd "${local.repo}"
      git worktree remove --force "${workspace.root}"
      oj queue push merges --var branch="${local.branch}" --var title="${var.description}"
    SHELL
  }
}

agent "planner" {
  run     = "claude --dangerously-skip-permissions"
  prompt  = <<-PROMPT
    Write a short implementation plan for this feature: ${var.description}.
    Save it as PLAN.md in the current directory. Do not change any other file.
    When PLAN.md is written, run: oj emit agent:signal --agent ${agent_id} '{"kind": "complete"}'
    If you cannot do it, run: oj emit agent:signal --agent ${agent_id} '{"kind": "escalate", "message": "<why>"}'
  PROMPT
  on_idle = { action = "nudge", message = "Write PLAN.md, then signal completion as instructed." }
  on_dead = { action = "gate", run = "test -s PLAN.md" }
  on_error = [
    { match = "rate_limited", action = "escalate" },
    { action = "fail" },
  ]
}

agent "implementer" {
  run     = "claude --dangerously-skip-permissions"
  prompt  = <<-PROMPT
    Implement the plan in PLAN.md (feature: ${var.description}). Keep the change small and make
    the project's checks pass. Do not commit; oj commits for you.
    When you are done, run: oj emit agent:signal --agent ${agent_id} '{"kind": "complete"}'
    If you are stuck, run: oj emit agent:signal --agent ${agent_id} '{"kind": "escalate", "message": "<why>"}'
  PROMPT
  on_idle = { action = "nudge", message = "Carry on with the plan; signal completion when done." }
  on_dead = "escalate"
  on_error = [
    { match = "rate_limited", action = "escalate" },
    { action = "fail" },
  ]
}
