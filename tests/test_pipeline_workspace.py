"""Black-box: ephemeral workspaces and `oj workspace list|show|drop|prune`."""

from __future__ import annotations

from blackbox import OjEnv, wait_for

RUNBOOK = """
command "ws" {
  args     = "<name> [--fail <fail>]"
  defaults = { fail = "no" }
  run      = { pipeline = "ws" }
}
command "keep" {
  args = "<title>"
  run  = { pipeline = "keep" }
}
pipeline "keep" {
  name      = "${var.title}"
  workspace = "persistent"
  step "write" {
    run = "echo kept > \\"${workspace.root}/f\\""
  }
}
pipeline "ws" {
  workspace = "ephemeral"
  step "write" {
    run = <<-SHELL
      echo data > "${workspace.root}/f"
      pwd > "${invoke.dir}/${var.name}.pwd"
      while [ ! -f "${invoke.dir}/${var.name}.go" ]; do sleep 0.05; done
      test "${var.fail}" = no
    SHELL
  }
}
"""


def test_ephemeral_workspaces(ojenv: OjEnv) -> None:
    ojenv.runbook("ws.hcl", RUNBOOK)
    for name in ("bad1", "bad2", "bad3"):
        (ojenv.project / f"{name}.go").touch()
    held = ojenv.run_pipeline("ws", "ok1")
    bad = {
        name: ojenv.run_pipeline("ws", name, "--fail", "yes") for name in ("bad1", "bad2", "bad3")
    }
    ws_dir = ojenv.state / "workspaces"

    def ws_id(name: str, pid: str) -> str:
        return f"ws-{name}-{pid[:8]}"

    held_ws = ws_id("ok1", held)
    held_path = ws_dir / held_ws
    ojenv.wait_status(held, "Running")
    wait_for(lambda: (held_path / "f").exists(), what="the step to write into its workspace")
    assert (held_path / "f").read_text() == "data\n"
    wait_for(lambda: (ojenv.project / "ok1.pwd").exists(), what="the step's pwd")
    assert (ojenv.project / "ok1.pwd").read_text().strip() == str(held_path)
    detail = ojenv.pipeline(held)
    assert detail["workspace_path"] == str(held_path)
    assert detail["vars"]["workspace.root"] == str(held_path)

    listed = {w["id"]: w for w in ojenv.json("workspace", "list")}
    assert held_ws in listed
    assert listed[held_ws]["path"] == str(held_path)
    assert held_ws[:12] in ojenv.ok("workspace", "list")
    show = ojenv.ok("workspace", "show", held_ws).splitlines()
    assert show[0] == f"Workspace: {held_ws}"
    assert f"  Path: {held_path}" in show
    assert f"  Owner: {held}" in show
    missing = ojenv.oj("workspace", "show", "ws-nope")
    assert (missing.returncode, missing.stdout) == (0, "Workspace not found: ws-nope\n")

    # a workspace whose pipeline runs cannot be dropped
    refused = ojenv.oj("workspace", "drop", held_ws)
    assert refused.returncode != 0
    assert refused.stderr.strip()
    assert held_path.is_dir()

    # failed pipelines keep their workspace
    for name, pid in bad.items():
        assert ojenv.oj("pipeline", "wait", pid).returncode == 1
        assert (ws_dir / ws_id(name, pid) / "f").exists()

    dropped = ojenv.ok("workspace", "drop", ws_id("bad1", bad["bad1"]))
    assert "Deleted 1 workspace(s)" in dropped
    assert not (ws_dir / ws_id("bad1", bad["bad1"])).exists()
    assert ws_id("bad1", bad["bad1"]) not in {w["id"] for w in ojenv.json("workspace", "list")}

    usage = ojenv.oj("workspace", "drop")
    assert usage.returncode != 0
    assert "specify a workspace ID, --failed, or --all" in usage.stderr

    # prune --all: only workspaces of ended pipelines; dry run removes nothing
    dry = ojenv.ok("workspace", "prune", "--all", "--dry-run")
    assert f"Would prune {ws_id('bad2', bad['bad2'])[:12]}" in dry
    assert held_ws[:12] not in dry
    assert (ws_dir / ws_id("bad2", bad["bad2"])).is_dir()
    pruned = ojenv.ok("workspace", "prune", "--all")
    assert "2 workspace(s) pruned, 1 active workspace(s) skipped" in pruned
    assert not (ws_dir / ws_id("bad2", bad["bad2"])).exists()
    assert not (ws_dir / ws_id("bad3", bad["bad3"])).exists()
    assert held_path.is_dir()

    # drop --all skips the running pipeline's workspace
    nothing = ojenv.ok("workspace", "drop", "--all")
    assert "No workspaces deleted" in nothing
    assert held_path.is_dir()

    # a persistent workspace survives success; a name template names it (slug + nonce)
    kept = ojenv.run_pipeline("keep", "Fix the login button")
    assert ojenv.oj("pipeline", "wait", kept).returncode == 0
    detail = ojenv.pipeline(kept)
    assert detail["name"] == f"fix-login-button-{kept[:8]}"
    kept_path = ws_dir / f"ws-fix-login-button-{kept[:8]}"
    assert detail["workspace_path"] == str(kept_path)
    assert (kept_path / "f").read_text() == "kept\n"

    # success deletes the ephemeral workspace
    (ojenv.project / "ok1.go").touch()
    assert ojenv.oj("pipeline", "wait", held).returncode == 0
    wait_for(lambda: not held_path.exists(), what="the workspace to be deleted after success")
    assert [w["id"] for w in ojenv.json("workspace", "list")] == [kept_path.name]
    assert kept_path.is_dir()


def test_workspace_creation_failure_and_drop_failed(ojenv: OjEnv) -> None:
    """A workspace that cannot be created fails its pipeline with a readable error (SPEC
    4.10); `oj workspace drop --failed` removes such failed workspaces."""
    ojenv.runbook("ws.hcl", RUNBOOK)
    ojenv.ok("daemon", "start")
    ws_dir = ojenv.state / "workspaces"
    if ws_dir.is_dir():
        ws_dir.rmdir()
    ws_dir.write_text("not a directory\n")  # mkdir of any workspace under it fails
    pid = ojenv.run_pipeline("ws", "broken")
    assert ojenv.oj("pipeline", "wait", pid).returncode == 1
    detail = ojenv.pipeline(pid)
    assert detail["step"] == "failed"
    assert f"ws-broken-{pid[:8]}" in (detail["error"] or "")
    assert not (ojenv.project / "broken.pwd").exists()  # the step never ran
    [ws] = ojenv.json("workspace", "list")
    assert ws["status"].startswith("failed")
    ws_dir.unlink()
    out = ojenv.ok("workspace", "drop", "--failed")
    assert "Deleted 1 workspace(s)" in out
    assert ojenv.json("workspace", "list") == []
