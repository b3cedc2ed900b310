"""Startup: --version / --help stay light (bench/bench_startup.py has the timings).

Timing on a shared CI machine is noise, so these tests check the causes instead: nothing
heavy is imported, and the zipapp's --help does not recompile codex.py from the archive once
codex has unpacked itself.
"""
import os
import re
import subprocess
import sys

import pytest

from conftest import REPO

#: modules --version/--help must not import (each costs milliseconds; see STYLE.md)
HEAVY = ("httpx", "rich", "prompt_toolkit", "asyncio", "ssl", "pyseccomp", "mcp", "tomllib", "tomli")


def imported_modules(cmd, env):
    proc = subprocess.run([sys.executable, "-X", "importtime"] + cmd, capture_output=True, text=True,
                          timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return {m.group(1).strip() for m in re.finditer(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)", proc.stderr, re.M)}


@pytest.fixture
def env(tmp_path):
    (tmp_path / "home").mkdir()
    e = dict(os.environ, CODEX_HOME=str(tmp_path / "home"), SHIV_ROOT=str(tmp_path / "shiv"))
    e.pop("PYTHONDONTWRITEBYTECODE", None)
    return e


@pytest.mark.parametrize("flag", ["--version", "--help"])
def test_codex_py_imports_nothing_heavy(flag, env):
    mods = imported_modules([str(REPO / "codex.py"), flag], env)
    assert not [m for m in mods if m.split(".")[0] in HEAVY]
    if flag == "--version":
        assert "argparse" not in mods


@pytest.mark.parametrize("flag", ["--version", "--help", "completion"])
def test_zipapp_imports_nothing_heavy(flag, env, dist_codex):
    mods = imported_modules([str(dist_codex), flag], env)
    assert not [m for m in mods if m.split(".")[0] in HEAVY]
    if flag == "--version":
        assert "codex" not in mods and "_bootstrap" not in mods


def test_zipapp_runs_shipped_byte_code_and_writes_nothing_after_unpacking(env, dist_codex, tmp_path):
    shiv = tmp_path / "shiv"
    # before anything unpacked it, --help works from the archive and unpacks nothing
    proc = subprocess.run([str(dist_codex), "--help"], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 0 and "usage: codex" in proc.stdout
    assert not shiv.exists()
    # a real command unpacks it, byte code for this interpreter included (no compileall at start)
    subprocess.run([str(dist_codex), "logout"], capture_output=True, timeout=120, env=env, check=True)
    (site,) = shiv.glob("codex_*/site-packages")
    before = sorted(p for p in site.rglob("*"))
    assert (site / "__pycache__" / ("codex.%s.pyc" % sys.implementation.cache_tag)) in before
    # `completion` and --help at a width not pre-rendered import codex from there: its byte
    # code is used as shipped (python -v names the .pyc) and nothing is written next to it
    proc = subprocess.run([sys.executable, "-v", str(dist_codex), "completion", "bash"], capture_output=True,
                          text=True, timeout=60, env=env)
    assert proc.returncode == 0 and "-F _codex codex" in proc.stdout
    assert re.search(r"code object from .*%s.*codex\.%s\.pyc" % (re.escape(str(site)), sys.implementation.cache_tag),
                     proc.stderr), proc.stderr[-3000:]
    proc = subprocess.run([str(dist_codex), "--help"], capture_output=True, text=True, timeout=60,
                          env=dict(env, COLUMNS="93"))
    assert proc.returncode == 0 and "usage: codex" in proc.stdout
    assert sorted(p for p in site.rglob("*")) == before


def test_bench_runs_and_reports_every_row(dist_codex, tmp_path):
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "bench_startup.py"), "-n", "1", "--dist", str(dist_codex)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    for row in ("python3 -c pass", "python3 codex.py --version", "python3 codex.py --help",
                "dist/codex --version", "dist/codex --help"):
        assert re.search(r"^%s\s+\d+\.\d" % re.escape(row), proc.stdout, re.M), (row, proc.stdout)
