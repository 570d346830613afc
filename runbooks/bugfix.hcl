# A bugfix worker pool: bugs are filed into a persisted queue and three workers fix them side
# by side, each on its own branch in a throwaway worktree, then submit the fix to the merge
# queue of merge.hcl (which must be in the same project).
#
# Needs only bash and git (and `oj` on the daemon's PATH). Filing a bug pushes to the queue;
# the first push starts the pool, so there is no `oj worker start`. The "fix" step stands in
# for real work (an agent step, see examples/review.hcl): it records the bug in bugs/<id>.md.
# Usage: oj run bug "Login button does nothing" --details "Clicking it shows no error"
# Then:  oj queue items bugs; oj queue items merges; oj worker list

command "bug" {
  description = "File a bug for the fix workers"
  args        = "<title> [--details <details>]"
  defaults    = { details = "(none)" }
  run         = "oj queue push bugs --var title=\"${args.title}\" --var details=\"${args.details}\""
}

queue "bugs" {
  type     = "persisted"
  vars     = ["title"]
  defaults = { details = "(none)" }

  # A failed fix is reopened once, a minute later; after that it is dead (oj queue retry).
  retry = {
    attempts = 1
    cooldown = "1m"
  }
}

worker "fix" {
  source      = { queue = "bugs" }
  handler     = { pipeline = "fix" }
  concurrency = 3
}

pipeline "fix" {
  name      = "fix ${var.bug.title}"
  vars      = ["bug"]
  workspace = "ephemeral"
  on_fail   = { step = "reopen" }
  on_cancel = { step = "shelve" }

  locals {
    repo   = "$(git -C ${invoke.dir} rev-parse --show-toplevel)"
    base   = "$(git -C ${invoke.dir} symbolic-ref --short HEAD)"
    branch = "fix/${workspace.nonce}"
  }

  step "branch" {
    run     = "git -C \"${local.repo}\" worktree add -q -b \"${local.branch}\" \"${workspace.root}\" \"${local.base}\""
    on_done = { step = "fix" }
  }

  step "fix" {
    run = <<-SHELL
      mkdir -p bugs
      printf '# %s\n\n%s\n\nFixed by pipeline %s.\n' "${var.bug.title}" "${var.bug.details}" "${pipeline_id}" > "bugs/${var.bug.id}.md"
      git add bugs
      git -c user.name=oj -c user.email=oj@localhost commit -qm "fix: ${var.bug.title}"
    SHELL
    on_done = { step = "submit" }
  }

  # The failure handlers (reached only through on_fail / on_cancel).

  # A failed fix: drop the worktree and its branch, and fail, so the bug is failed (reopened
  # after the cooldown, then dead).
  step "reopen" {
    run = <<-SHELL
      git -C "${local.repo}" worktree remove --force "${workspace.root}" || true
      git -C "${local.repo}" branch -D "${local.branch}" >/dev/null 2>&1 || true
      echo "could not fix: ${var.bug.title}" >&2
      exit 1
    SHELL
  }

  # A cancelled fix: drop the worktree, keep the branch with whatever was committed.
  step "shelve" {
    run = "git -C \"${local.repo}\" worktree remove --force \"${workspace.root}\" || true"
  }

  # Last on success, from the project root so the push lands in this project's merge queue.
  step "submit" {
    run = "cd \"${invoke.dir}\" && oj queue push merges --var branch=\"${local.branch}\" --var title=\"fix: ${var.bug.title}\" --var base=\"${local.base}\""
  }
}
