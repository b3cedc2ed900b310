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


@pytest.mark.slow
def test_an_unchanged_build_and_its_dependencies_are_reused(tmp_path):
    """`build.py test` builds with reuse: the same inputs keep dist/codex; a changed codex.py
    rebuilds it without reinstalling the (unchanged) runtime dependencies."""
    copy_tree(tmp_path)
    build = [sys.executable, "-c", "import sys, build; sys.exit(build.main(['build-if-changed']))"]

    def run(env=None):
        return subprocess.run(build, cwd=tmp_path, capture_output=True, text=True, timeout=600,
                              env=dict(os.environ, SOURCE_DATE_EPOCH="315532800", **(env or {})))

    first = run()
    assert first.returncode == 0, first.stdout + first.stderr
    assert "installing the runtime dependencies" in first.stdout and "wrote dist/codex" in first.stdout
    digest = (tmp_path / "dist" / "codex.sha256").read_text()
    again = run()
    assert again.returncode == 0 and "dist/codex is up to date" in again.stdout and "wrote" not in again.stdout
    with open(tmp_path / "codex.py", "a") as fh:
        fh.write("\n# changed\n")
    changed = run()
    assert changed.returncode == 0 and "wrote dist/codex" in changed.stdout, changed.stdout + changed.stderr
    assert "installing the runtime dependencies" not in changed.stdout
    assert (tmp_path / "dist" / "codex.sha256").read_text() != digest
    (tmp_path / "dist" / "codex").write_bytes(b"tampered")  # a changed output is rebuilt too
    assert "wrote dist/codex" in run().stdout


def test_lock_files_name_no_machine_local_index_or_paths():
    """The locks install anywhere: pip's index settings come from the machine, not the file."""
    for lock in sorted((REPO / "requirements").glob("*.lock")):
        text = lock.read_text()
        options = [line for line in text.splitlines() if line.startswith("-")]
        assert options == [], (lock.name, options)
        assert "file://" not in text and "/opt/" not in text, lock.name
        # every pinned requirement carries hashes (pip --require-hashes)
        pins = [line for line in text.splitlines() if "==" in line and not line.startswith(("#", " "))]
        assert all(line.endswith("\\") for line in pins), lock.name


def test_build_py_test_runs_only_the_named_test_files(monkeypatch):
    """`build.py test tests/test_x.py -k foo` runs that file, not the whole suite as well."""
    sys.path.insert(0, str(REPO))
    try:
        import build
    finally:
        sys.path.remove(str(REPO))
    monkeypatch.chdir(REPO)
    whole = build.pytest_command("py", ["-q", "-m", "not slow"])
    assert whole[-4:] == [str(REPO / "tests"), "-q", "-m", "not slow"]
    named = build.pytest_command("py", ["-q", "tests/test_build.py::test_unknown_command", "-k", "unknown"])
    assert str(REPO / "tests") not in named and "tests/test_build.py::test_unknown_command" in named
