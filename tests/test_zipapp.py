"""The built dist/codex end to end: runs anywhere with only python3, reproducible builds."""
import hashlib
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PYENV = Path("/root/.pyenv/versions")


def bare_env(home, **extra):
    """What a fresh machine has: PATH with /usr/bin:/bin and a HOME, nothing else."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home)}
    env.update(extra)
    return env


def system_pythons():
    """Every CPython >= 3.9 on this machine (system and pyenv), one per minor version."""
    found = {}
    candidates = [Path("/usr/bin/python3")] + sorted(PYENV.glob("3.*/bin/python3"))
    for py in candidates:
        if not py.exists():
            continue
        out = subprocess.run([str(py), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True)
        ver = out.stdout.strip()
        if out.returncode == 0 and tuple(map(int, ver.split("."))) >= (3, 9):
            found.setdefault(ver, py)
    return sorted(found.items())


def test_version_with_empty_environment_and_fresh_home(dist_codex, tmp_path):
    proc = subprocess.run([str(dist_codex), "--version"], env=bare_env(tmp_path), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.startswith("codex ")
    assert list(tmp_path.iterdir()) == []  # the fast path unpacks nothing


def test_full_start_unpacks_into_home_and_runs(dist_codex, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = bare_env(home, CODEX_HOME=str(home))
    proc = subprocess.run([str(dist_codex), "login", "status"], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and proc.stdout.strip() == "Not logged in", proc.stderr
    assert (home / ".shiv").is_dir()


@pytest.mark.parametrize("ver,py", system_pythons())
def test_runs_on_every_python_with_its_dependencies(dist_codex, tmp_path, ver, py):
    script = tmp_path / "check.py"
    script.write_text(
        "import sys, httpx, rich, prompt_toolkit, tomli, pyseccomp, codex\n"
        "print('%d.%d' % sys.version_info[:2], codex.__version__)\n"
    )
    env = bare_env(tmp_path, SHIV_INTERPRETER="1")
    proc = subprocess.run([str(py), str(dist_codex), str(script)], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[0] == ver
    proc = subprocess.run([str(py), str(dist_codex), "--help"], env=bare_env(tmp_path), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "codex [OPTIONS] [PROMPT]" in proc.stdout


def test_shiv_root_is_honoured(dist_codex, tmp_path):
    root = tmp_path / "shivroot"
    env = bare_env(tmp_path / "nohome", SHIV_ROOT=str(root), CODEX_HOME=str(tmp_path))
    proc = subprocess.run([str(dist_codex), "logout"], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert any(p.name.startswith("codex_") for p in root.iterdir())


def test_unwritable_shiv_root_gives_one_clear_line(dist_codex, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    env = bare_env(tmp_path, SHIV_ROOT=str(blocker / "sub"))
    proc = subprocess.run([str(dist_codex), "logout"], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "set SHIV_ROOT to a writable directory" in proc.stderr and "Traceback" not in proc.stderr


def test_read_only_home_falls_back_to_a_temp_dir(dist_codex, tmp_path):
    if shutil.which("unshare") is None:
        pytest.skip("unshare(1) is not available")
    home = tmp_path / "rohome"
    home.mkdir()
    codex_home = tmp_path / "ch"
    codex_home.mkdir()
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("user+mount namespaces are not available here")
    script = (
        'mount --bind "$H" "$H" && mount -o remount,bind,ro "$H" && '
        'HOME="$H" CODEX_HOME="$C" PATH=/usr/bin:/bin "$D" login status; echo "rc=$?"'
    )
    proc = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, timeout=120,
                          env={"H": str(home), "C": str(codex_home), "D": str(dist_codex), "PATH": "/usr/bin:/bin"})
    assert "Not logged in" in proc.stdout and "rc=1" in proc.stdout, proc.stdout + proc.stderr
    assert list(home.iterdir()) == []


def test_sha256_file_matches(dist_codex):
    digest = hashlib.sha256(dist_codex.read_bytes()).hexdigest()
    assert (dist_codex.parent / "codex.sha256").read_text() == "%s  codex\n" % digest


def payload_names(dist_codex):
    with zipfile.ZipFile(dist_codex) as outer, outer.open("payload.zip") as member, zipfile.ZipFile(member) as zf:
        return set(zf.namelist()), zf.read("site-packages/codex.py")


def test_archive_layout(dist_codex):
    assert dist_codex.read_bytes().startswith(b"#!/bin/sh\n")  # then: exec python3 -S "$0" "$@"
    with zipfile.ZipFile(dist_codex) as zf:
        # three members: Python reads the whole zip directory at every start
        assert sorted(zf.namelist()) == ["__main__.py", "payload.sha256", "payload.zip"]
        manifest = dict(line.split(" ", 1)[::-1] for line in zf.read("payload.sha256").decode().splitlines())
    names, codex_py = payload_names(dist_codex)
    assert set(manifest) == names
    assert "site-packages/httpx/__init__.py" in names and "site-packages/tomli/__init__.py" in names
    # pure Python only: no compiled extension modules, so one file runs on every arch
    assert not [n for n in names if n.endswith((".so", ".pyd", ".dylib"))]
    assert codex_py == (REPO / "codex.py").read_bytes()
    # byte code for this interpreter is shipped (and hash-based: no timestamps to go stale)
    assert "site-packages/__pycache__/codex.%s.pyc" % sys.implementation.cache_tag in names
    helpers = [n for n in names if n.startswith("site-packages/codex_sandbox_helpers/")]
    if list((REPO / "sandbox_helpers").glob("*.c")):
        assert any(n.endswith("-x86_64") for n in helpers), helpers


@pytest.mark.slow
def test_two_builds_are_byte_identical(dist_codex, tmp_path):
    """A copy of the tree built elsewhere gives the very same bytes as dist/codex."""
    copy = tmp_path / "src"
    copy.mkdir()
    for name in ("codex.py", "build.py"):
        shutil.copy2(REPO / name, copy / name)
    shutil.copytree(REPO / "requirements", copy / "requirements")
    if (REPO / "sandbox_helpers").is_dir():
        shutil.copytree(REPO / "sandbox_helpers", copy / "sandbox_helpers")
    epoch = subprocess.run(["git", "log", "-1", "--format=%ct"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    env = dict(os.environ, SOURCE_DATE_EPOCH=os.environ.get("SOURCE_DATE_EPOCH") or epoch or "315532800")
    # the copy's helper is compiled in another directory; -ffile-prefix-map keeps paths out
    proc = subprocess.run([sys.executable, "build.py"], cwd=copy, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # digests, not the bytes: pytest's diff of two 3.6 MB byte strings runs into the timeout
    digest = lambda path: hashlib.sha256(path.read_bytes()).hexdigest()  # noqa: E731
    assert digest(copy / "dist" / "codex") == digest(dist_codex)
    assert (copy / "dist" / "codex.sha256").read_text() == (dist_codex.parent / "codex.sha256").read_text()


def test_help_from_the_archive_is_what_codex_prints(dist_codex, tmp_path):
    """The fast path's pre-rendered --help equals codex.py's own, at every width."""
    for columns in ("80", "90", "100", "150", None):
        env = bare_env(tmp_path)
        if columns:
            env["COLUMNS"] = columns
        fast = subprocess.run([str(dist_codex), "--help"], env=env, capture_output=True, text=True, timeout=60)
        live = subprocess.run([sys.executable, str(REPO / "codex.py"), "--help"], env=env, capture_output=True,
                              text=True, timeout=60)
        assert fast.returncode == live.returncode == 0
        assert fast.stdout == live.stdout, columns
    assert max(len(line) for line in live.stdout.splitlines() if not line.startswith(" ")) <= 100
