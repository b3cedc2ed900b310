"""QA: hostile input end to end (bad bytes, bad flags, bad homes); one line, right exit code, no traceback."""
import os
import subprocess
import sys

import pytest

from conftest import REPO
from support.agent_env import MOCK_KEY_ENV, mock_cli_args
from support.model_server import ModelServer, Turn

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def server():
    with ModelServer() as s:
        yield s


@pytest.fixture
def repo(tmp_path):
    root = tmp_path / "repo"
    (root / ".git").mkdir(parents=True)
    return root


def run_raw(codex_home, args, input=None, env=None, timeout=30, cwd=None):
    """Run codex.py with bytes in and out (no decoding, so bad bytes reach codex as they are)."""
    full_env = dict(os.environ, CODEX_HOME=str(codex_home), **{MOCK_KEY_ENV: "test-key"})
    full_env.update(env or {})
    return subprocess.run([sys.executable, str(REPO / "codex.py")] + list(args), input=input,
                          capture_output=True, timeout=timeout, env=full_env, cwd=cwd)


def assert_clean_failure(proc, code):
    err = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == code, err
    assert "Traceback" not in err, err
    return err


def test_non_utf8_prompt_on_stdin_runs_the_turn(codex_home, server, repo):
    server.enqueue(Turn().text("ok"))
    proc = run_raw(codex_home, ["exec", "-C", str(repo)] + mock_cli_args(server) + ["-"], input=b"fix \xff\xfe this\n")
    assert proc.returncode == 0, proc.stderr.decode("utf-8", "replace")
    assert b"Traceback" not in proc.stderr
    assert proc.stdout == b"ok\n"
    text = server.model_requests()[0].body["input"][-1]["content"][0]["text"]
    assert text.startswith("fix ") and text.rstrip().endswith(" this") and "\udcff" not in text


def test_non_utf8_prompt_argument_runs_the_turn(codex_home, server, repo):
    server.enqueue(Turn().text("ok"))
    proc = run_raw(codex_home, ["exec", "-C", str(repo)] + mock_cli_args(server) + [b"fix \xff this"])
    assert proc.returncode == 0, proc.stderr.decode("utf-8", "replace")
    assert proc.stdout == b"ok\n"


@pytest.mark.parametrize("args, prog", [
    (["--bogus"], "codex"),
    (["exec", "--color", "purple", "x"], "codex exec"),
    (["completion", "tcsh"], "codex completion"),
    (["mcp", "call"], "codex mcp call"),
    (["-m"], "codex"),
])
def test_usage_errors_are_one_line_naming_the_command(codex_home, args, prog):
    proc = run_raw(codex_home, args)
    err = assert_clean_failure(proc, 2)
    assert err.count("\n") == 1, err
    assert err.startswith("%s: error: " % prog) and ("`%s --help`" % prog) in err, err


def _as_other_user(tmp_path):
    """argv prefix running codex.py as an unprivileged user (root ignores file modes), or skip."""
    import shutil

    if os.geteuid() != 0:
        return [sys.executable]
    python = shutil.which("python3", path="/usr/bin:/bin")
    if not (shutil.which("setpriv") and python):
        pytest.skip("running as root without setpriv and /usr/bin/python3: cannot drop privileges")
    os.chmod(str(tmp_path), 0o755)
    return ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", python]


def test_login_into_read_only_codex_home_says_which_file(tmp_path):
    import tempfile
    from pathlib import Path

    base = Path(tempfile.mkdtemp(prefix="codex-qa-", dir="/tmp"))  # every ancestor traversable by the other user
    home = base / "home"
    home.mkdir()
    os.chmod(str(home), 0o555)
    prefix = _as_other_user(base)
    env = dict(os.environ, CODEX_HOME=str(home), HOME=str(base))
    proc = subprocess.run(prefix + [str(REPO / "codex.py"), "login", "--api-key", "sk-test-123456789"],
                          capture_output=True, timeout=30, env=env)
    err = assert_clean_failure(proc, 1)
    assert err.startswith("codex: cannot write %s: " % (home / "auth.json")) and err.count("\n") == 1, err
    assert not (home / "auth.json").exists()
    import shutil

    shutil.rmtree(str(base), ignore_errors=True)



def test_exec_json_lines_are_compact_as_the_readme_shows(codex_home, server, repo):
    server.enqueue(Turn().text("Done."))
    proc = run_raw(codex_home, ["exec", "--json", "-C", str(repo)] + mock_cli_args(server) + ["hi"])
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.decode().splitlines()
    assert lines[0].startswith('{"type":"thread.started","thread_id":"'), lines[0]
    assert lines[1] == '{"type":"turn.started"}'
    assert '{"type":"item.completed","item":{"id":"item_0","type":"agent_message","text":"Done."}}' in lines
