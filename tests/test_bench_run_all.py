"""bench/run_all's plumbing: discovery, rendering, and a tiny real run. No timing is asserted
(benchmarks report figures, they are never tests); this only keeps the report machinery working."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RUN_ALL = ROOT / "bench" / "run_all"


def load_run_all() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("bench_run_all", str(RUN_ALL))
    spec = importlib.util.spec_from_loader("bench_run_all", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def figure(key: str, value: float, ok: bool | None, target: str = "", unit: str = "/s") -> Any:
    return {
        "key": key,
        "label": f"figure {key}",
        "value": value,
        "unit": unit,
        "target": target,
        "ok": ok,
        "ratio": None,
        "spec": bool(target),
        "note": "",
    }


def test_every_reporting_bench_is_discovered_with_its_settings() -> None:
    run_all = load_run_all()
    benches, without = run_all.discover()
    names = [b["name"] for b in benches]
    assert {"limits", "wal", "client", "runtime", "queue"} <= set(names)
    assert names[0] == "limits"  # the yardsticks first
    for bench in benches:
        assert bench["timeout"] > 0 and isinstance(bench["args"], list)
    assert all(name.endswith("_bench.py") for name in without)


def test_render_lists_misses_skips_failures_and_unmeasured_figures() -> None:
    run_all = load_run_all()
    reports = [
        {
            "bench": "limits",
            "title": "Machine limits",
            "command": "bench/limits_bench.py",
            "seconds": 1,
            "skipped": None,
            "figures": [figure("fsync_rate", 5000.0, None)],
            "tables": [],
            "notes": [],
        },
        {
            "bench": "wal",
            "title": "WAL",
            "command": "bench/wal_bench.py --quick",
            "seconds": 3,
            "skipped": None,
            "figures": [
                figure("wal_appends_32", 40000.0, False, "≥ 50,000/s"),
                figure("restart_10k", 300.0, True, "< 1 s", "ms"),
            ],
            "tables": ["| a |\n|---|\n| 1 |"],
            "notes": ["a note"],
        },
        {
            "bench": "pg",
            "title": "pg",
            "command": "x",
            "seconds": 0,
            "skipped": "no postgres",
            "figures": [],
            "tables": [],
            "notes": [],
        },
        {
            "bench": "agent",
            "title": "agent",
            "command": "y",
            "seconds": 0,
            "skipped": None,
            "failed": "exited with status 1",
            "figures": [],
            "tables": [],
            "notes": [],
        },
    ]
    meta = {
        "date": "today",
        "seconds": 5.0,
        "kernel": "Linux",
        "load_before": "1.0",
        "load_after": "1.0",
    }
    text = run_all.render(reports, meta, ["spawn_bench.py: has no `--report` mode"])
    misses = text.split("## Targets missed in this run")[1].split("##")[0]
    assert "figure wal_appends_32: 40,000 /s (target ≥ 50,000/s)" in misses
    assert "restart_10k" not in misses
    assert "| figure fsync_rate | 5,000 /s |" in text
    assert "| figure wal_appends_32 | 40,000 /s | ≥ 50,000/s | ✘ |" in text
    assert "| figure restart_10k | 300 ms | < 1 s | ✔ |" in text
    assert "not measured" in text  # SPEC figures no bench reported
    assert "pg: skipped: no postgres" in text
    assert "agent: FAILED: exited with status 1" in text
    assert "spawn_bench.py: has no `--report` mode" in text
    assert "* a note" in text and "| a |" in text


def test_a_tiny_run_writes_a_report(tmp_path: Path) -> None:
    out = tmp_path / "RESULTS.md"
    proc = subprocess.run(
        [sys.executable, str(RUN_ALL), "--smoke", "--only", "limits,wal", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = out.read_text()
    assert "## Machine limits" in text and "fdatasync" in text
    assert "durable WAL appends/s, 32 concurrent appenders" in text
    assert "queue_bench.py: left out by --only/--skip" in text
    assert "wrote" in proc.stdout


def test_each_bench_writes_json_a_report_reader_understands(tmp_path: Path) -> None:
    out = tmp_path / "limits.json"
    subprocess.run(
        [sys.executable, str(ROOT / "bench" / "limits_bench.py"), "--tiny", "--report", str(out)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    report = json.loads(out.read_text())
    assert report["bench"] == "limits" and report["skipped"] is None
    keys = {f["key"] for f in report["figures"]}
    assert {"fsync_rate", "spawn_sh_c1", "python_startup", "socket_rt_connect"} <= keys
