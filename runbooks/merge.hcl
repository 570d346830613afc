# A local merge queue: branches wait in a persisted queue and are merged into their base one
# at a time, each in a throwaway worktree, checked, then landed.
#
# Needs only bash and git (and `oj` on the daemon's PATH for the submit command). Submitting
# pushes to the queue; the first push starts the worker, so there is no `oj worker start`.
# Landing fast-forwards the base branch of this repository; when the base is checked out, its
# working tree is updated too, and a dirty one refuses the landing (the item is retried once).
# Usage: oj run submit feature/login "Login button"
# Usage: oj run submit fix/typo "Fix a typo" --base release
# Then:  oj queue items merges; oj worker list; oj pipeline list

command "submit" {
  description = "Queue a branch to be merged into its base"
  args        = "<branch> <title> [--base <base>]"
  defaults    = { base = "main" }
  run         = "oj queue push merges --var branch=\"${args.branch}\" --var title=\"${args.title}\" --var base=\"${args.base}\""
}

queue "merges" {
  type     = "persisted"
  vars     = ["branch", "title"]
  defaults = { base = "main" }

  # A landing refused because the base moved (or its checkout is dirty) is tried again once.
  retry = {
    attempts = 1
    cooldown = "10s"
  }
}

worker "merge" {
  source      = { queue = "merges" }
  handler     = { pipeline = "merge" }
  concurrency = 1
}

pipeline "merge" {
  name      = "merge ${var.mr.branch}"
  vars      = ["mr"]
  workspace = "ephemeral"
  on_fail   = { step = "abandon" }
  on_cancel = { step = "discard" }

  locals {
    repo = "$(git -C ${invoke.dir} rev-parse --show-toplevel)"
  }

  step "checkout" {
    run     = "git -C \"${local.repo}\" worktree add -q --detach \"${workspace.root}\" \"${var.mr.base}\""
    on_done = { step = "merge" }
  }

  step "merge" {
    run     = "git -c user.name=oj -c user.email=oj@localhost merge -q --no-ff -m \"Merge ${var.mr.branch}: ${var.mr.title}\" \"${var.mr.branch}\""
    on_done = { step = "check" }
  }

  # Put the project's own checks here (make check, the test suite…).
  step "check" {
    run     = "git diff --check HEAD^1 HEAD"
    on_done = { step = "land" }
  }

  # A fast-forward only: refused if the base moved since the checkout.
  step "land" {
    run     = "git push -q --receive-pack='git -c receive.denyCurrentBranch=updateInstead receive-pack' \"${local.repo}\" \"HEAD:refs/heads/${var.mr.base}\""
    on_done = { step = "tidy" }
  }

  # The failure handlers (reached only through on_fail / on_cancel).

  # Any failure: drop the worktree and fail, so the queue item is failed (retried, then dead).
  step "abandon" {
    run = <<-SHELL
      if [ -f .git ]; then git merge --abort >/dev/null 2>&1 || true; fi
      git -C "${local.repo}" worktree remove --force "${workspace.root}" || true
      echo "could not merge ${var.mr.branch} into ${var.mr.base}" >&2
      exit 1
    SHELL
  }

  step "discard" {
    run = "git -C \"${local.repo}\" worktree remove --force \"${workspace.root}\" || true"
  }

  # Last on success: the merged branch is deleted only if git agrees it is merged; the
  # ephemeral workspace (the worktree) is removed by oj.
  step "tidy" {
    run = "git -C \"${local.repo}\" branch -d \"${var.mr.branch}\" >/dev/null 2>&1 || true"
  }
}
