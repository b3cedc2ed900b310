"""Python 3.9 compatibility: vermin's static check, a real python3.9, and older Pythons' refusal.

Interpreters are looked up on PATH and under pyenv ($PYENV_ROOT or ~/.pyenv); a test whose
interpreter is not installed skips with the reason.
"""
import glob
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import DIST, REPO

#: modules that codex.py imports only behind `try: ... except ImportError:` with a fallback
GUARDED_IMPORTS = {"tomllib": "tomli"}


def find_python(version):
    """Path of a `pythonX.Y` interpreter (PATH first, then pyenv's versions), or None."""
    name = "python" + version
    roots = [os.environ.get("PYENV_ROOT"), os.path.expanduser("~/.pyenv")]
    for root in filter(None, roots):
        for cand in sorted(glob.glob(os.path.join(root, "versions", version + ".*", "bin", name)), reverse=True):
            if os.access(cand, os.X_OK):
                return cand
    found = shutil.which(name)
    if found and os.sep + "shims" + os.sep not in found:  # a pyenv shim may point nowhere
        return found
    return None


def need_python(version):
    path = find_python(version)
    if path is None:
        pytest.skip("python%s not found on PATH or under pyenv" % version)
    return path


def vermin():
    """The vermin script installed next to the test interpreter (requirements/test.lock)."""
    path = Path(sys.executable).parent / "vermin"
    if not path.exists():
        path = shutil.which("vermin")
    assert path, "vermin is not installed; it is in requirements/test.lock (python3 build.py test)"
    return str(path)


def run_vermin(*paths):
    cmd = [vermin(), "-t=3.9-", "--no-tips", "--violations", "--no-make-paths-absolute"]
    for module in GUARDED_IMPORTS:
        cmd += ["--exclude", module]
    return subprocess.run(cmd + [str(p) for p in paths], capture_output=True, text=True, timeout=120, cwd=str(REPO))


# -- the static check ------------------------------------------------------------------------


def test_vermin_finds_no_violation_for_39():
    proc = run_vermin(REPO / "codex.py", REPO / "build.py")
    assert proc.returncode == 0, "vermin: code that needs a Python newer than 3.9:\n" + proc.stdout + proc.stderr


def test_vermin_catches_newer_code(tmp_path):
    # the check above can fail: 3.10 syntax and a 3.11 module in a scratch file are reported
    bad = tmp_path / "bad.py"
    bad.write_text("import tomllib\nimport zoneinfo\n\ndef f(x):\n    match x:\n        case 1:\n"
                   "            return 'a'.removeprefix('b')\n    return int | None\n")
    proc = run_vermin(bad)
    assert proc.returncode != 0
    assert "pattern matching" in proc.stdout and "3.10" in proc.stdout


def test_guarded_imports_have_their_fallback():
    # vermin is told to ignore these modules; make sure each use is a guarded import
    text = (REPO / "codex.py").read_text(encoding="utf-8")
    for module, fallback in GUARDED_IMPORTS.items():
        uses = re.findall(r"^\s*(?:import %s\b|from %s\b)" % (module, module), text, re.M)
        guarded = re.findall(r"^( *)try:\n\1    import %s\b.*\n\1except ImportError:.*\n\1    import %s as %s\b"
                             % (module, fallback, module), text, re.M)
        assert len(uses) == len(guarded), "every `import %s` needs `except ImportError: import %s as %s`" % (
            module, fallback, module)


# -- a real Python 3.9 -----------------------------------------------------------------------


def test_python39_compiles_and_runs_codex(tmp_path):
    py = need_python("3.9")
    env = dict(os.environ, CODEX_HOME=str(tmp_path), PYTHONDONTWRITEBYTECODE="1")
    for script in ("codex.py", "build.py"):
        proc = subprocess.run([py, "-c", "import sys; compile(open(sys.argv[1], encoding='utf-8').read(), sys.argv[1], 'exec')",
                               str(REPO / script)], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
    proc = subprocess.run([py, str(REPO / "codex.py"), "--version"], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 0 and proc.stdout.startswith("codex "), proc.stderr
    proc = subprocess.run([py, str(REPO / "codex.py"), "--help"], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "usage: codex" in proc.stdout and "completion" in proc.stdout
    proc = subprocess.run([py, str(REPO / "codex.py"), "completion", "zsh"], capture_output=True, text=True,
                          timeout=60, env=env)
    assert proc.returncode == 0 and proc.stdout.startswith("#compdef codex"), proc.stderr


# -- older Pythons get one sentence ----------------------------------------------------------


def assert_refused(proc):
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    err = proc.stderr.strip()
    assert err.startswith("codex needs Python 3.9 or newer"), err
    assert "\n" not in err and "Traceback" not in err and "Error" not in err, err
    assert proc.stdout == ""


@pytest.mark.parametrize("version", ["3.8", "2.7"])
def test_old_python_running_the_zipapp_gets_one_sentence(version, tmp_path):
    py = need_python(version)
    if not DIST.exists():
        pytest.skip("dist/codex not built; run `python3 build.py test`")
    for args in (["--version"], ["--help"], ["exec", "hi"]):
        proc = subprocess.run([py, str(DIST)] + args, capture_output=True, text=True, timeout=60,
                              env=dict(os.environ, HOME=str(tmp_path)))
        assert_refused(proc)


def test_python38_running_codex_py_gets_one_sentence(tmp_path):
    # the whole module must still *compile* on 3.8 for the version check at its top to run
    py = need_python("3.8")
    proc = subprocess.run([py, str(REPO / "codex.py"), "--version"], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, CODEX_HOME=str(tmp_path), PYTHONDONTWRITEBYTECODE="1"))
    assert_refused(proc)
