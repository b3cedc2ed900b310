"""The one file runs on its own code only: isolated from the host's packages, and never
trusting an unpacked directory that something else could have written or renamed.

Each test plants something (a host package, a .pth file, a changed or extra file in the
unpacked directory, a directory other users can write) and runs the real dist/codex.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from support.agent_env import MOCK_KEY_ENV, mock_cli_args
from support.model_server import Turn

PLANTED = ("httpx", "httpcore", "rich", "trio", "click", "h11", "anyio")


def plant(site, marker_dir):
    """Host packages that record being imported; a .pth that imports one at startup."""
    site.mkdir(parents=True, exist_ok=True)
    for name in PLANTED:
        (site / name).mkdir()
        (site / name / "__init__.py").write_text(
            "open(%r, 'w').close()\nPLANTED = True\n" % str(marker_dir / name) if name != "rich" else "PLANTED = True\n")
    # a .pth runs before codex's own code can do anything: what it imports must not be used
    (site / "zz_planted.pth").write_text("import rich\n")


def run(cmd, env, cwd, timeout=120):
    return subprocess.run(cmd, env=env, cwd=str(cwd), capture_output=True, text=True, timeout=timeout)


def base_env(tmp_path, **extra):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path / "home"),
           "CODEX_HOME": str(tmp_path / "codex-home"), "SHIV_ROOT": str(tmp_path / "shiv"), MOCK_KEY_ENV: "k"}
    (tmp_path / "home").mkdir(exist_ok=True)
    (tmp_path / "codex-home").mkdir(exist_ok=True)
    env.update(extra)
    return env


CHECK = (
    "import sys, httpx, rich, codex\n"
    "paths = codex.zipapp_paths()\n"
    "site = str(paths['unpacked'] / 'site-packages')\n"
    "assert httpx.__file__.startswith(site) and rich.__file__.startswith(site), (httpx.__file__, rich.__file__)\n"
    "assert not hasattr(rich, 'PLANTED')\n"
    "assert not [p for p in sys.path if 'site-packages' in p or 'dist-packages' in p], sys.path\n"
    "assert paths['archive'] == __import__('pathlib').Path(sys.argv[1]).resolve()\n"
    "print('isolated')\n"
)


@pytest.mark.parametrize("where", ["venv", "user-site"])
def test_host_packages_neither_shadow_nor_load(dist_codex, server, tmp_path, where):
    markers = tmp_path / "markers"
    markers.mkdir()
    env = base_env(tmp_path)
    if where == "venv":  # the interpreter's own site-packages
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "v")], check=True, timeout=120)
        python = str(tmp_path / "v" / "bin" / "python")
        site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                   capture_output=True, text=True, check=True).stdout.strip())
    else:  # ~/.local/lib/pythonX.Y/site-packages, which python3 puts on sys.path by itself
        python = getattr(sys, "_base_executable", None) or sys.executable  # a venv has no user site
        site = Path(subprocess.run([python, "-c", "import site; print(site.getusersitepackages())"], env=env,
                                   capture_output=True, text=True, check=True).stdout.strip())
    plant(site, markers)
    # the planted .pth really runs in this interpreter (so the test can fail)
    probe = run([python, "-c", "import rich, sys; print(getattr(rich, 'PLANTED', False))"], env, tmp_path)
    assert probe.stdout.strip() == "True", probe.stderr
    script = tmp_path / "check.py"
    script.write_text(CHECK)
    proc = run([python, str(dist_codex), str(script), str(dist_codex)], dict(env, SHIV_INTERPRETER="1"), tmp_path)
    assert proc.returncode == 0 and "isolated" in proc.stdout, proc.stdout + proc.stderr
    # a whole exec turn: nothing planted is imported (httpcore would import trio, httpx click)
    server.enqueue(Turn().text("hello from the model"))
    proc = run([python, str(dist_codex), "exec", "--skip-git-repo-check"] + mock_cli_args(server) + ["hi"],
               env, tmp_path)
    assert proc.returncode == 0 and "hello from the model" in proc.stdout, proc.stderr
    assert sorted(p.name for p in markers.iterdir()) == [], "host packages were imported"


def test_executed_directly_no_pth_file_runs(dist_codex, tmp_path):
    """Run as a program, dist/codex starts python3 -S: the host's site-packages are not even
    scanned, so a .pth file there (which would run before any code of codex) does not run."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "v")], check=True, timeout=120)
    python = tmp_path / "v" / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    marker = tmp_path / "pth-ran"
    (site / "zz_marker.pth").write_text("import os; open(%r, 'w').close()\n" % str(marker))
    subprocess.run([str(python), "-c", "pass"], check=True, timeout=60)
    assert marker.exists()  # the .pth really runs in this interpreter (so the test can fail)
    marker.unlink()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(python)
    env = base_env(tmp_path, PATH="%s:%s" % (bin_dir, os.environ.get("PATH", "/usr/bin:/bin")), SHIV_INTERPRETER="1")
    script = tmp_path / "flags.py"
    script.write_text("import sys; print('no_site=%d' % sys.flags.no_site, sys.executable)\n")
    proc = run([str(dist_codex), str(script)], env, tmp_path)
    assert proc.returncode == 0 and "no_site=1" in proc.stdout, proc.stdout + proc.stderr
    assert str(bin_dir) in proc.stdout or str(tmp_path / "v") in proc.stdout  # python3 from PATH
    assert not marker.exists()


def unpacked_dir(dist_codex, env, tmp_path):
    proc = run([str(dist_codex), "login", "status"], env, tmp_path)
    assert "Not logged in" in proc.stdout, proc.stderr
    (unpacked,) = Path(env["SHIV_ROOT"]).glob("codex_*")
    return unpacked


def make_writable(path):
    for p in [path] + [q for q in path.rglob("*")]:
        p.chmod(0o700 if p.is_dir() or os.access(str(p), os.X_OK) else 0o600)


def test_changed_byte_code_stops_codex(dist_codex, tmp_path):
    env = base_env(tmp_path)
    unpacked = unpacked_dir(dist_codex, env, tmp_path)
    pyc = unpacked / "site-packages" / "__pycache__" / ("codex.%s.pyc" % sys.implementation.cache_tag)
    make_writable(unpacked)
    pyc.write_bytes(pyc.read_bytes() + b"\0")
    proc = run([str(dist_codex), "login", "status"], env, tmp_path)
    assert proc.returncode == 1 and "Not logged in" not in proc.stdout
    assert "differs from what this codex unpacked there" in proc.stderr and "Traceback" not in proc.stderr


def test_changed_helper_binary_stops_codex(dist_codex, tmp_path):
    env = base_env(tmp_path)
    unpacked = unpacked_dir(dist_codex, env, tmp_path)
    helpers = list((unpacked / "site-packages" / "codex_sandbox_helpers").glob("*"))
    if not helpers:
        pytest.skip("this build has no compiled helper")
    make_writable(unpacked)
    helpers[0].write_bytes(b"#!/bin/sh\nexec \"$@\"\n")
    proc = run([str(dist_codex), "login", "status"], env, tmp_path)
    assert proc.returncode == 1 and "differs from what this codex unpacked there" in proc.stderr


def test_renamed_and_recreated_directory_is_not_trusted(dist_codex, tmp_path):
    """The attack of issue 10: move the unpacked directory away, put other code in its place."""
    env = base_env(tmp_path)
    unpacked = unpacked_dir(dist_codex, env, tmp_path)
    marker = tmp_path / "ran"
    unpacked.rename(unpacked.with_name("moved-away"))
    site = unpacked / "site-packages"
    site.mkdir(parents=True)
    (site / "codex.py").write_text("open(%r, 'w').close()\ndef main(argv): return 0\n" % str(marker))
    (site / "planted.pth").write_text("import os; open(%r, 'w').close()\n" % str(marker))
    proc = run([str(dist_codex), "login", "status"], env, tmp_path)
    assert proc.returncode == 1 and not marker.exists(), proc.stdout + proc.stderr
    assert "is missing from" in proc.stderr and "Traceback" not in proc.stderr


def test_extra_files_and_pth_files_in_the_directory_are_ignored(dist_codex, server, tmp_path):
    env = base_env(tmp_path)
    unpacked = unpacked_dir(dist_codex, env, tmp_path)
    site = unpacked / "site-packages"
    marker = tmp_path / "ran"
    make_writable(unpacked)
    (site / "planted.pth").write_text("import os; open(%r, 'w').close()\n" % str(marker))
    for name in ("trio", "click", "socksio"):  # optional imports of httpcore / httpx
        (site / name).mkdir()
        (site / name / "__init__.py").write_text("open(%r, 'w').close()\n" % str(marker))
    (site / "json.py").write_text("open(%r, 'w').close()\n" % str(marker))
    server.enqueue(Turn().text("still fine"))
    proc = run([str(dist_codex), "exec", "--skip-git-repo-check"] + mock_cli_args(server) + ["hi"], env, tmp_path)
    assert proc.returncode == 0 and "still fine" in proc.stdout, proc.stderr
    assert not marker.exists()


@pytest.mark.parametrize("which", ["root", "ancestor"])
def test_unpack_root_others_can_write_is_refused(dist_codex, tmp_path, which):
    shared = tmp_path / "shared"
    shared.mkdir()
    root = shared / "shiv"
    root.mkdir(mode=0o700)
    (shared if which == "ancestor" else root).chmod(0o777)  # no sticky bit: anyone may rename
    env = base_env(tmp_path, SHIV_ROOT=str(root))
    proc = run([str(dist_codex), "login", "status"], env, tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "cannot unpack itself" in proc.stderr
    assert ("other users" if which == "ancestor" else "only you can write") in proc.stderr, proc.stderr
    assert list(root.iterdir()) == []


def test_unpacked_files_are_private_and_read_only(dist_codex, tmp_path):
    env = base_env(tmp_path)
    unpacked = unpacked_dir(dist_codex, env, tmp_path)
    assert (unpacked.stat().st_mode & 0o777) == 0o700 and (unpacked.parent.stat().st_mode & 0o077) == 0
    modes = {p.stat().st_mode & 0o777 for p in unpacked.rglob("*") if p.is_file()}
    assert modes <= {0o400, 0o500}, modes
