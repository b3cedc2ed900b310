"""Shared fixtures: a private CODEX_HOME, and runners for codex.py and the built dist/codex.

Section-specific fakes live in tests/support/ (the scripted model server, fixture trees).
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

#: the built zipapp; `python3 build.py test` sets CODEX_DIST
DIST = Path(os.environ.get("CODEX_DIST") or REPO / "dist" / "codex")


@pytest.fixture
def codex_home(tmp_path, monkeypatch):
    """A fresh $CODEX_HOME for the test (also exported to the test process)."""
    home = tmp_path / "codex-home"
    home.mkdir()
    monkeypatch.setenv("CODEX_HOME", str(home))
    monkeypatch.setenv("CODEX_SYSTEM_DIR", str(tmp_path / "etc-codex"))  # never the machine's /etc/codex
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "CODEX_LOG", "RUST_LOG", "CODEX_DEBUG"):
        monkeypatch.delenv(var, raising=False)
    return home


def _env(extra):
    env = dict(os.environ)
    env.update(extra or {})
    return env


@pytest.fixture
def run_codex(codex_home):
    """Run `python codex.py ARGS` as a real process; returns CompletedProcess (text)."""

    def run(*args, env=None, input=None, timeout=60, cwd=None):
        # No input: stdin is /dev/null, not whatever pytest was given (an open pipe there
        # would make exec wait EXEC_STDIN_GRACE_S for it).
        return subprocess.run(
            [sys.executable, str(REPO / "codex.py")] + [str(a) for a in args],
            capture_output=True, text=True, input=input, timeout=timeout,
            stdin=subprocess.DEVNULL if input is None else None,
            env=_env(dict({"CODEX_HOME": str(codex_home)}, **(env or {}))), cwd=cwd,
        )

    return run


@pytest.fixture(scope="session")
def dist_codex():
    """The built dist/codex (skipped with a reason when it has not been built)."""
    if not DIST.exists():
        pytest.skip("dist/codex not built; run `python3 build.py test`")
    return DIST


@pytest.fixture
def server():
    """A scripted model server on 127.0.0.1 (tests/support/model_server.py)."""
    from support.model_server import ModelServer

    with ModelServer() as s:
        yield s


@pytest.fixture
def repo(tmp_path):
    """A directory that looks like a git repository (a `.git` directory, nothing else)."""
    root = tmp_path / "repo"
    (root / ".git").mkdir(parents=True)
    return root


@pytest.fixture(params=["c", "python"])
def impl(request, monkeypatch):
    """Which sandbox helper runs the command: the compiled one or the Python one."""
    import codex

    built = REPO / "build" / "helpers" / ("codex-linux-sandbox-%s" % codex._machine_arch())
    if request.param == "c":
        if not built.exists():
            pytest.skip("compiled helper not built; run `python3 build.py helpers`")
        monkeypatch.setenv("CODEX_SANDBOX_HELPER", str(built))
    else:
        monkeypatch.setenv("CODEX_SANDBOX_HELPER", "python")
    codex._PROBE_CACHE.clear()
    codex._HELPER_CACHE.clear()
    codex._NESTED_CACHE.clear()
    yield request.param
    codex._PROBE_CACHE.clear()
    codex._HELPER_CACHE.clear()


@pytest.fixture(scope="session")
def local_model_server():
    """llama.cpp's server (the xllamacpp wheel) with Qwen2.5-Coder-1.5B-Instruct Q4_K_M and its stock
    chat template on 127.0.0.1 at temperature 0 (tests/support/local_model.py).  The model is fetched
    once into ~/.cache/codex-tests; if that fails, CI fails with one line (elsewhere: skip)."""
    from support.local_model import LlamaServer, ModelUnavailable, ensure_model

    def unavailable(why):
        if os.environ.get("CI") == "true":
            pytest.fail("local model unavailable (required under CI=true): %s" % why, pytrace=False)
        pytest.skip("local model unavailable: %s" % why)

    try:
        import xllamacpp  # noqa: F401  (requirements/test.lock)
    except ImportError as exc:
        unavailable("the xllamacpp wheel is not installed (%s)" % exc)
    try:
        model = ensure_model()
    except ModelUnavailable as exc:
        unavailable(str(exc))
    server = LlamaServer(model, n_ctx=LOCAL_MODEL_N_CTX)
    try:
        server.start()
    except ModelUnavailable as exc:
        unavailable(str(exc))
    yield server
    server.stop()


#: the server's window: the compact prompt (~0.6k tokens) plus a few tool results fit
LOCAL_MODEL_N_CTX = 4096
