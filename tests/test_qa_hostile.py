"""QA: hostile input end to end (bad bytes, bad flags, bad homes); one line, right exit code, no traceback."""
import os
import subprocess
import sys

import pytest

from conftest import REPO
from support.agent_env import MOCK_KEY_ENV, mock_cli_args
from support.model_server import ModelServer, Turn
from support.wait import wait_until

pytestmark = pytest.mark.timeout(60)


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


@pytest.mark.parametrize("args, needle", [
    (["-i", "/nonexistent/shot.png"], "image /nonexistent/shot.png does not exist (check -i/--image)"),
    (["--output-last-message", "/nonexistent-dir/last.txt"], "directory /nonexistent-dir does not exist"),
    (["--output-last-message", "/tmp"], "--output-last-message /tmp is a directory"),
])
def test_exec_bad_paths_fail_before_the_model_is_asked(codex_home, server, repo, args, needle):
    server.enqueue(Turn().text("ok"))
    proc = run_raw(codex_home, ["exec", "-C", str(repo)] + mock_cli_args(server) + args + ["hi"])
    err = assert_clean_failure(proc, 2)
    assert needle in err and err.count("\n") == 1, err
    assert server.model_requests() == []


def _signal_during_command(codex_home, server, repo, tmp_path, sig):
    """`codex exec` running a long command gets `sig`; return (rc, stderr, command alive)."""
    return _signal_front_end(codex_home, server, repo, tmp_path, ["exec", "-s", "danger-full-access", "go"], [], sig)


@pytest.mark.parametrize("signame, code", [("SIGINT", 130), ("SIGTERM", 143), ("SIGHUP", 129)])
def test_exec_stopped_by_a_signal_kills_the_running_command(codex_home, server, repo, tmp_path, signame, code):
    import signal

    rc, err, alive = _signal_during_command(codex_home, server, repo, tmp_path, getattr(signal, signame))
    assert not alive, "the command outlived codex exec after %s" % signame
    assert rc == code, err
    assert "Traceback" not in err
    rollouts = list((codex_home / "sessions").rglob("rollout-*.jsonl"))
    assert len(rollouts) == 1 and '"function_call"' in rollouts[0].read_text()


@pytest.mark.parametrize("overrides, needle", [
    (['model_providers.x.wire_api="foo"', "model_provider=x"], "-c: `model_providers.x.wire_api` = 'foo' is not allowed"),
    (["model_providers.x={}", "model_provider=x"], "-c: `model_providers.x.base_url` is required"),
    (["sandbox_workspace_write.network_access=yes"], "-c: `sandbox_workspace_write.network_access` must be true or false"),
    (['history.persistence="x"'], "-c: `history.persistence` = 'x' is not allowed"),
    (['model_providers.x.base_url="ftp://h/v1"', "model_provider=x"],
     "-c: `model_providers.x.base_url` = 'ftp://h/v1' must start with http:// or https://"),
])
def test_bad_nested_override_is_blamed_on_dash_c_not_config_toml(codex_home, repo, overrides, needle):
    args = []
    for item in overrides:
        args += ["-c", item]
    proc = run_raw(codex_home, args + ["exec", "-C", str(repo), "hi"])
    err = assert_clean_failure(proc, 2)
    assert err == "codex: %s" % err[len("codex: "):] and needle in err and "config.toml" not in err, err


def test_base_url_without_a_scheme_is_a_config_error(codex_home, repo):
    (codex_home / "config.toml").write_text('model_provider = "x"\n[model_providers.x]\nbase_url = "localhost:8080/v1"\n')
    proc = run_raw(codex_home, ["exec", "-C", str(repo), "hi"])
    err = assert_clean_failure(proc, 2)
    assert "config.toml: `model_providers.x.base_url` = 'localhost:8080/v1' must start with http:// or https://" in err, err


def test_resume_a_rollout_with_damaged_lines_keeps_the_rest(codex_home, server, repo):
    server.enqueue(Turn().text("first answer"), Turn().text("second answer"))
    base = ["exec", "-C", str(repo)] + mock_cli_args(server)
    assert run_raw(codex_home, base + ["first question"]).returncode == 0
    [rollout] = list((codex_home / "sessions").rglob("rollout-*.jsonl"))
    with open(str(rollout), "ab") as fh:
        fh.write(b'garbage\n\xff\xfe\n{"type":"response_item","payload":"str"}\n[1]\n{"type":"response_item","pay')
    proc = run_raw(codex_home, base + ["resume", "--last", "next step"])
    assert proc.returncode == 0, proc.stderr.decode("utf-8", "replace")
    assert proc.stdout == b"second answer\n"
    texts = json_texts(server.model_requests()[1].body["input"])
    assert "first question" in texts and "first answer" in texts and "next step" in texts
    # what the resumed run appended starts on a line of its own (nothing glued to the torn line)
    tail = rollout.read_bytes().rsplit(b'{"type":"response_item","pay', 1)[1]
    assert tail.startswith(b"\n{")
    assert b"second answer" in tail


def json_texts(items):
    return " ".join(part.get("text", "") for it in items if it.get("type") == "message" for part in it.get("content") or ())


def test_codex_log_debug_records_requests_and_commands_without_secrets(codex_home, server, repo):
    server.enqueue(Turn().function_call("shell", {"command": ["echo", "hi"]}, call_id="c1"), Turn().text("done"))
    secret = "sk-mocksecret-999888777666"
    proc = run_raw(codex_home, ["exec", "-s", "danger-full-access", "-C", str(repo)] + mock_cli_args(server) + ["go"],
                   env={"CODEX_LOG": "debug", MOCK_KEY_ENV: secret})
    assert proc.returncode == 0, proc.stderr
    log = (codex_home / "log" / "codex.log").read_text()
    assert "POST %s/responses" % server.url in log and "-> HTTP 200" in log, log
    assert "exec ['echo', 'hi']" in log and "-> exit 0" in log, log
    assert secret not in log and secret.encode() not in proc.stderr


@pytest.mark.parametrize("args, needle", [
    ([b"-m", b"gpt\xff"], "--model: `model` is not valid UTF-8"),
    ([b"-c", b'model_providers.mock.http_headers={X-A="\xff"}'], "-c: `model_providers.mock.http_headers.X-A` is not valid UTF-8"),
    ([b"-c", 'model_providers.mock.http_headers={X-A="caf\u00e9"}'.encode()],
     "-c: `model_providers.mock.http_headers.X-A`: HTTP headers carry ASCII only"),
])
def test_undecodable_or_non_ascii_config_values_are_config_errors(codex_home, server, repo, args, needle):
    proc = run_raw(codex_home, ["exec", "-C", str(repo)] + mock_cli_args(server) + args + ["hi"])
    err = assert_clean_failure(proc, 2)
    assert needle in err and err.count("\n") == 1, err
    assert server.model_requests() == []


def test_an_api_key_with_a_pasted_quote_is_named_not_a_crash(codex_home, server, repo):
    server.enqueue(Turn().text("ok"))
    proc = run_raw(codex_home, ["exec", "-C", str(repo)] + mock_cli_args(server) + ["hi"],
                   env={MOCK_KEY_ENV: "sk-abc\u201d"})
    err = assert_clean_failure(proc, 1)
    assert "the API key for provider `mock` contains non-ASCII characters" in err and MOCK_KEY_ENV in err, err
    assert "internal error" not in err and "sk-abc" not in err


def _signal_front_end(codex_home, server, repo, tmp_path, front_args, stdin_lines, sig):
    """Start a front end whose first turn runs a long command; signal codex; return (rc, stderr, command alive)."""
    import signal
    import time

    marker = tmp_path / "child.pid"
    script = "echo $$ > %s; exec sleep 30" % marker
    server.enqueue(Turn().function_call("shell", {"command": ["bash", "-c", script]}, call_id="c1"), Turn().text("x"))
    env = dict(os.environ, CODEX_HOME=str(codex_home), **{MOCK_KEY_ENV: "test-key"})
    proc = subprocess.Popen([sys.executable, str(REPO / "codex.py"), "-C", str(repo)] + mock_cli_args(server) + front_args,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        for line in stdin_lines:
            proc.stdin.write((line + "\n").encode())
        proc.stdin.flush()  # stdin stays open: the front end is still reading it when the signal comes
        end = time.monotonic() + 20
        while not (marker.exists() and marker.read_text().strip()) and time.monotonic() < end:
            time.sleep(0.05)
        child = int(marker.read_text())
        proc.send_signal(sig)
        _out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()

    def child_gone():
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return True
        return False
    wait_until(child_gone, timeout=5)  # killed with its group: reaped by init soon after
    try:
        os.kill(child, 0)
        alive = True
        os.kill(child, signal.SIGKILL)
    except ProcessLookupError:
        alive = False
    return proc.returncode, err.decode("utf-8", "replace"), alive


PROTO_GO = '{"id":"1","op":{"type":"user_input","items":[{"type":"text","text":"go"}]}}'
MCP_GO = [
    '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},'
    '"clientInfo":{"name":"qa","version":"1"}}}',
    '{"jsonrpc":"2.0","method":"notifications/initialized"}',
    '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"codex","arguments":{"prompt":"go",'
    '"approval-policy":"never","sandbox":"danger-full-access"}}}',
]


@pytest.mark.parametrize("front, lines", [(["-s", "danger-full-access", "-a", "never", "proto"], [PROTO_GO]),
                                          (["mcp"], MCP_GO)], ids=["proto", "mcp"])
def test_sigterm_stops_proto_and_mcp_server_with_their_commands(codex_home, server, repo, tmp_path, front, lines):
    import signal

    rc, err, alive = _signal_front_end(codex_home, server, repo, tmp_path, front, lines, signal.SIGTERM)
    assert not alive, "the command outlived codex after SIGTERM"
    assert rc == 143, err  # not 134: CPython aborts at exit while a thread still reads stdin
    assert "Traceback" not in err and "Fatal Python error" not in err, err


def test_proto_ends_when_stdin_closes_after_the_running_turn(codex_home, server, repo):
    server.enqueue(Turn().text("answer"))
    proc = run_raw(codex_home, ["-C", str(repo)] + mock_cli_args(server) + ["proto"], input=(PROTO_GO + "\n").encode())
    assert proc.returncode == 0, proc.stderr
    import json

    types = [json.loads(line)["msg"]["type"] for line in proc.stdout.decode().splitlines()]
    assert types.index("task_complete") < types.index("shutdown_complete") == len(types) - 1, types


def test_sandbox_helper_is_never_installed_below_a_directory_others_can_write(tmp_path, monkeypatch):
    """A world-writable, non-sticky ancestor (or a /tmp/codex-UID made by someone else) lets
    another user swap the helper between our checks and its exec: that place is skipped."""
    import hashlib

    import codex

    shared = tmp_path / "shared"
    (shared / "home").mkdir(parents=True)
    os.chmod(str(shared), 0o777)
    monkeypatch.setenv("HOME", str(tmp_path / "me"))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    data = b"#!/bin/sh\nexit 0\n"
    digest = hashlib.sha256(data).hexdigest()
    path = codex._install_helper(data, digest, shared / "home")
    assert path is not None and str(path).startswith(str(tmp_path / "me" / ".cache")), path
    assert not (shared / "home" / "bin").exists() or not list((shared / "home" / "bin").iterdir())
    os.chmod(str(shared), 0o1777)  # sticky, as /tmp: fine
    assert str(codex._install_helper(data, digest, shared / "home")).startswith(str(shared / "home" / "bin"))


def test_interactive_prompt_piped_with_bad_bytes_is_answered_and_recorded(codex_home, server, repo):
    server.enqueue(Turn().text("answered"))
    proc = run_raw(codex_home, ["-C", str(repo)] + mock_cli_args(server), input=b"hi \xff there\n")
    assert proc.returncode == 0, proc.stderr.decode("utf-8", "replace")
    assert b"Traceback" not in proc.stderr and b"answered" in proc.stdout
    assert '"text":"hi ? there"' in (codex_home / "history.jsonl").read_text()
    assert "hi ? there" in json_texts(server.model_requests()[0].body["input"])


@pytest.mark.parametrize("signame, code", [("SIGINT", 130), ("SIGTERM", 143)])
def test_idle_mcp_server_stopped_by_a_signal_exits_cleanly(codex_home, signame, code):
    import signal
    import time

    env = dict(os.environ, CODEX_HOME=str(codex_home))
    proc = subprocess.Popen([sys.executable, str(REPO / "codex.py"), "mcp"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        proc.stdin.write(MCP_GO[0].encode() + b"\n")
        proc.stdin.flush()
        assert b'"protocolVersion"' in proc.stdout.readline()  # serving, its reader thread blocked on stdin
        time.sleep(0.2)
        proc.send_signal(getattr(signal, signame))
        _out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, err
    assert b"Fatal Python error" not in err and b"Traceback" not in err, err


@pytest.mark.parametrize("args", [
    ["doctor", "-s", "workspace-write"],
    ["sandbox", "--check", "-c", "sandbox_mode=workspace-write"],
])
def test_global_options_after_config_using_subcommands(codex_home, args):
    proc = run_raw(codex_home, args)
    assert proc.returncode == 0, proc.stderr
    assert b"sandbox_mode=workspace-write" in proc.stdout


def test_mcp_list_takes_dash_c_after_the_subcommand(codex_home):
    proc = run_raw(codex_home, ["mcp", "list", "-c", 'mcp_servers.x.command="/nonexistent/server"'])
    assert proc.returncode == 1, proc.stderr  # x failed to start
    assert b"x" in proc.stdout and b"failed" in proc.stdout and b"/nonexistent/server" in proc.stdout


def test_exec_with_stdin_closed_and_no_prompt_is_a_usage_error(codex_home, repo):
    full_env = dict(os.environ, CODEX_HOME=str(codex_home))
    proc = subprocess.run([sys.executable, str(REPO / "codex.py"), "exec", "-C", str(repo)], stdin=None,
                          capture_output=True, timeout=30, env=full_env, preexec_fn=lambda: os.close(0))
    err = assert_clean_failure(proc, 2)
    assert "stdin is closed" in err, err


def test_a_full_stdout_is_one_line_without_a_misleading_hint(codex_home):
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, str(REPO / "codex.py"), "login", "status"], stdout=full,
                              stderr=subprocess.PIPE, timeout=30, env=dict(os.environ, CODEX_HOME=str(codex_home)))
    err = assert_clean_failure(proc, 1)
    assert err.strip() == "codex: No space left on device (CODEX_DEBUG=1 shows where)", err
