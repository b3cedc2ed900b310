"""build.py: clear errors for a missing package index or compiler, usage."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def copy_tree(dst):
    for name in ("codex.py", "build.py"):
        shutil.copy2(REPO / name, dst / name)
    shutil.copytree(REPO / "requirements", dst / "requirements")
    if (REPO / "sandbox_helpers").is_dir():
        shutil.copytree(REPO / "sandbox_helpers", dst / "sandbox_helpers")


def run_build(cwd, *args, env=None, timeout=300):
    return subprocess.run([sys.executable, "build.py"] + list(args), cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ, **(env or {})))


def test_unreachable_package_index_is_one_clear_error(tmp_path):
    copy_tree(tmp_path)
    env = {"PIP_INDEX_URL": "http://127.0.0.1:9/simple", "PIP_EXTRA_INDEX_URL": "", "PIP_FIND_LINKS": "",
           "PIP_NO_CACHE_DIR": "1", "PIP_RETRIES": "0", "PIP_TIMEOUT": "2", "PIP_CONFIG_FILE": os.devnull}
    proc = run_build(tmp_path, env=env)
    assert proc.returncode == 1
    assert "build.py: error:" in proc.stderr and "package index reachable" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "dist" / "codex").exists()


def test_missing_compiler_is_reported_and_the_build_goes_on(tmp_path):
    copy_tree(tmp_path)
    (tmp_path / "sandbox_helpers").mkdir(exist_ok=True)
    if not list((tmp_path / "sandbox_helpers").glob("*.c")):
        (tmp_path / "sandbox_helpers" / "probe.c").write_text("int main(void) { return 0; }\n")
    env = {"CC": "no-such-cc", "CC_x86_64": "no-such-cc", "CC_aarch64": "no-such-cc"}
    proc = run_build(tmp_path, "helpers", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "no C compiler for x86_64" in proc.stdout and "apt-get install gcc" in proc.stdout


def test_compile_error_names_the_file(tmp_path):
    copy_tree(tmp_path)
    shutil.rmtree(tmp_path / "sandbox_helpers", ignore_errors=True)
    (tmp_path / "sandbox_helpers").mkdir()
    (tmp_path / "sandbox_helpers" / "broken.c").write_text("int main(void) { return nope; }\n")
    proc = run_build(tmp_path, "helpers")
    assert proc.returncode == 1 and "compiling broken.c" in proc.stderr


def test_unknown_command(tmp_path):
    copy_tree(tmp_path)
    proc = run_build(tmp_path, "frobnicate")
    assert proc.returncode == 2 and "unknown command" in proc.stderr
    assert "python3 build.py test" in run_build(tmp_path, "--help").stdout
