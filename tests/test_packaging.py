"""Packaging (issue 13): `python -m build` makes a wheel and an sdist that install cleanly into a
fresh venv; `oj --version` and `ojd --version` agree with the one version string; `man oj` and
`man ojd` find their pages after a plain `pip install`.

One test, one fresh venv (≈ 15-20 s: the wheel's dependencies come from pip's configured
index, then the sdist is built and installed over it with build isolation as a user's pip would).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from blackbox import BIN

from oj_trio._version import __version__

ROOT = Path(__file__).resolve().parent.parent


def _run(*argv: str | Path, **kw: object) -> str:
    result = subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, timeout=600, check=False, **kw
    )  # type: ignore[call-overload]
    assert result.returncode == 0, f"{argv}\n{result.stdout}\n{result.stderr}"
    out: str = result.stdout
    return out


def test_versions_agree_with_the_one_version_string() -> None:
    assert _run(BIN / "oj", "--version") == f"oj {__version__}\n"
    assert _run(BIN / "ojd", "--version") == f"ojd {__version__}\n"


def test_build_gives_a_wheel_and_sdist_that_install_into_a_fresh_venv(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    # --no-isolation: the test extra holds the build backend; the sdist install below does use
    # isolation, as `pip install oj_trio-*.tar.gz` would for a user.
    _run(sys.executable, "-m", "build", "--no-isolation", "--outdir", dist, ROOT, cwd=tmp_path)
    (wheel,) = dist.glob("oj_trio-*.whl")
    (sdist,) = dist.glob("oj_trio-*.tar.gz")
    assert wheel.name == f"oj_trio-{__version__}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
    assert "oj_trio/cli.py" in names and "oj_trio/py.typed" in names
    assert not [n for n in names if n.startswith("tests/")]
    with tarfile.open(sdist) as tf:
        members = {m.split("/", 1)[1] for m in tf.getnames() if "/" in m}
    assert {"pyproject.toml", "man/oj.1", "man/ojd.8", "oj_trio/_version.py"} <= members

    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", venv)
    pip = [venv / "bin" / "python", "-m", "pip", "install", "-q"]
    # A clean environment: no editable finder, no PYTHONPATH from the test run.
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "OJ_", "VIRTUAL_ENV"))
    }
    for artifact, extra in ((wheel, []), (sdist, ["--no-deps", "--force-reinstall"])):
        _run(*pip, *extra, artifact, env=env)
        assert _run(venv / "bin" / "oj", "--version", env=env) == f"oj {__version__}\n"
        assert _run(venv / "bin" / "ojd", "--version", env=env) == f"ojd {__version__}\n"
        for page in ("share/man/man1/oj.1", "share/man/man8/ojd.8"):
            assert (venv / page).read_text() == (ROOT / "man" / Path(page).name).read_text()
        where = _run(
            venv / "bin" / "python",
            "-c",
            "import oj_trio; print(oj_trio.__file__)",
            env=env,
            cwd=tmp_path,
        )
        assert where.startswith(str(venv)), where
    if shutil.which("man") is None:
        pytest.skip("man(1) is not installed here")
    man_env = {**env, "PATH": f"{venv / 'bin'}:{env.get('PATH', '')}", "MANPATH": ""}
    man_env.pop("MANPATH")
    for page, section in (("oj", "1"), ("ojd", "8")):
        found = _run("man", "-w", section, page, env=man_env)
        assert found.strip() == str(venv / "share" / "man" / f"man{section}" / f"{page}.{section}")
