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

_PARSED = {}


def codex_source():
    """codex.py's text (read once per test run)."""
    if "src" not in _PARSED:
        _PARSED["src"] = (REPO / "codex.py").read_text(encoding="utf-8")
    return _PARSED["src"]


def codex_tree():
    """codex.py's syntax tree, parsed once per test run (a parse costs seconds on a busy
    machine); the tests that read it must not change it."""
    import ast

    if "tree" not in _PARSED:
        _PARSED["tree"] = ast.parse(codex_source())
    return _PARSED["tree"]

#: Test files whose tests are slow as a class: real REPL sessions in a pty, builds and the
#: zipapp, the sandbox escape suites through both helpers, SDK/npm MCP servers, the proxy under
#: load, whole front ends over several processes, a real local model.  Their tests are marked
#: `slow` here, in one place (single slow tests elsewhere carry @pytest.mark.slow);
#: `python3 build.py test -m "not slow"` is the fast tier and does not even import these files.
SLOW_FILES = frozenset((
    "test_build.py", "test_compaction.py", "test_completion.py", "test_exec_ci.py", "test_local_model_e2e.py",
    "test_mcp_client.py", "test_mcp_e2e.py", "test_mcp_http.py", "test_mcp_images.py", "test_mcp_server.py",
    "test_mcp_zipapp.py", "test_mcp_config_edit.py", "test_policy.py", "test_proxy.py", "test_py39.py",
    "test_qa_hostile.py", "test_repl_e2e.py", "test_repl_history.py", "test_repl_keys.py", "test_repl_screen.py",
    "test_repl_search.py", "test_repl_composer.py", "test_review.py", "test_sandbox_attack_pass.py", "test_sandbox_attack_pass2.py", "test_sandbox_attacks.py", "test_sandbox_escapes.py", "test_sandbox_helper.py",
    "test_sandbox_isolation.py", "test_sandbox_redteam.py", "test_startup.py", "test_zipapp.py",
    "test_zipapp_trust.py",
))


def _fast_tier_only(config):
    return (config.getoption("markexpr", "") or "").split() == ["not", "slow"]


def pytest_ignore_collect(collection_path, config):
    """With -m "not slow", skip importing the slow files altogether (their imports are heavy)."""
    if collection_path.name in SLOW_FILES and _fast_tier_only(config):
        return True
    return None


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.name in SLOW_FILES:
            item.add_marker(pytest.mark.slow)


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


#: `python3 codex.py` as a process, but from cached byte code: a script is compiled on every
#: run (~0.3 s of CPU for codex.py), an imported module is not.  sys.path[0] and sys.argv[0]
#: are what running the script gives.
_BOOT = ("import sys; sys.path[0] = %r; sys.argv[0] = %r; import codex; sys.exit(codex.main(sys.argv[1:]))"
         % (str(REPO), str(REPO / "codex.py")))


def codex_py_argv():
    """argv running codex.py (as `python3 codex.py` would, but without recompiling it)."""
    return [sys.executable, "-c", _BOOT]


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
            codex_py_argv() + [str(a) for a in args],
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
def exec_codex(run_codex, server, repo):
    """Run `codex.py exec` in `repo` against `server` (a real process): exec_codex(*args,
    wire=, env=, input=, cwd=, **config_keys).  Commands run without a sandbox unless the
    arguments choose one (-s / --full-auto): the sandbox has its own tests."""
    from support.agent_env import MOCK_KEY_ENV, mock_cli_args

    def run(*args, wire="responses", env=None, input=None, cwd=None, **cfg):
        base_env = {MOCK_KEY_ENV: "test-key", "NO_COLOR": ""}
        base_env.update(env or {})
        sandbox = [] if any(a in ("-s", "--full-auto") for a in args) else ["-s", "danger-full-access"]
        argv = ["exec", "-C", str(cwd or repo), "-m", "gpt-5"] + sandbox + mock_cli_args(server, wire, **cfg) + list(args)
        return run_codex(*argv, env=base_env, input=input)

    return run


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


@pytest.fixture(autouse=True)
def _writable_roots_of_this_test_only():
    """codex remembers process-wide every root a loaded configuration can grant and every root a
    command got (_GRANTABLE_ROOTS, _WRITABLE_ROOTS_SEEN): it never runs its own programs (git,
    hooks, MCP servers, notify) from them.  One codex process is one user's session; one pytest
    process is hundreds of them, and a test whose workspace was this repository (the default cwd)
    must not make the venv's python, which later tests start MCP servers with, "writable"."""
    import codex

    saved = [(s, set(s)) for s in (codex._GRANTABLE_ROOTS, codex._WRITABLE_ROOTS_SEEN)]
    yield
    for live, before in saved:
        live.clear()
        live.update(before)
