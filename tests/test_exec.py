"""§13 Exec: running a command, its environment, the model's envelope, execute_with_policy."""
import json
import os
import sys
import threading
import time

import pytest

import codex

pytestmark = pytest.mark.timeout(60)


def make_cfg(tmp_path, approval="on-request", sandbox="danger-full-access", overrides=(), environ=None):
    """A real Config rooted in tmp_path/ws."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    ws = tmp_path / "ws"
    ws.mkdir(exist_ok=True)
    return codex.load_config(codex.ConfigOverrides(approval_policy=approval, sandbox_mode=sandbox, cwd=str(ws)),
                             list(overrides), home=home, environ=environ or {"HOME": str(tmp_path)})


def run(cfg, argv, **kw):
    return codex.run_command(argv, None, cfg, codex.build_command_env(cfg), **kw)


# -- run_command ----------------------------------------------------------------------------


def test_argv_runs_directly_without_shell(tmp_path):
    cfg = make_cfg(tmp_path)
    r = run(cfg, ["echo", "$HOME", "a;b", "`x`"])
    assert r.exit_code == 0 and r.stdout == "$HOME a;b `x`\n"
    assert r.sandbox_type is None and not r.timed_out


def test_exit_code_stdout_stderr_and_aggregate(tmp_path):
    cfg = make_cfg(tmp_path)
    r = run(cfg, [sys.executable, "-c", "import sys,time; print('out', flush=True); time.sleep(0.05);"
                  "sys.stderr.write('err\\n'); sys.exit(7)"])
    assert r.exit_code == 7
    assert r.stdout == "out\n" and r.stderr == "err\n"
    assert r.aggregated_output == "out\nerr\n"


def test_stdin_is_dev_null_and_cwd_is_used(tmp_path):
    cfg = make_cfg(tmp_path)
    r = run(cfg, ["bash", "-c", "cat; pwd; readlink /proc/self/fd/0"])
    assert r.stdout.splitlines() == [str(cfg.cwd), "/dev/null"]


def test_own_session_and_process_group(tmp_path):
    cfg = make_cfg(tmp_path)
    r = run(cfg, [sys.executable, "-c", "import os; print(os.getsid(0) == os.getpid(), os.getpgrp() == os.getpid())"])
    assert r.stdout.strip() == "True True"


def test_missing_program_is_127(tmp_path):
    cfg = make_cfg(tmp_path)
    r = run(cfg, ["no-such-program-xyz"])
    assert r.exit_code == 127 and "no-such-program-xyz" in r.stderr


def test_signal_death_is_128_plus_n(tmp_path):
    cfg = make_cfg(tmp_path)
    r = run(cfg, ["bash", "-c", "kill -TERM $$"])
    assert r.exit_code == 128 + 15


def _proc_state(pid):
    try:
        with open("/proc/%d/stat" % pid) as fh:
            return fh.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def test_timeout_kills_whole_group_exit_124(tmp_path):
    cfg = make_cfg(tmp_path)
    marker = tmp_path / "grandchild-alive"
    pidfile = tmp_path / "grandchild.pid"
    t0 = time.monotonic()
    r = run(cfg, ["bash", "-c", "(echo $BASHPID > %s; sleep 1.5; touch %s) & sleep 30; wait" % (pidfile, marker)],
            timeout_ms=300)
    assert time.monotonic() - t0 < 5
    assert r.timed_out and r.exit_code == 124
    # wait for the grandchild to be gone (not a fixed sleep): it must die with the group
    pid = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and os.path.exists("/proc/%d" % pid) and "Z" not in _proc_state(pid):
        time.sleep(0.01)
    assert not os.path.exists("/proc/%d" % pid) or "Z" in _proc_state(pid), "a grandchild outlived the timeout"
    assert not marker.exists()
    assert "command timed out after 300 milliseconds" in json.loads(codex.format_exec_output(r))["output"]


def test_default_timeout_is_10s():
    assert codex.DEFAULT_EXEC_TIMEOUT_MS == 10000


def test_background_child_does_not_hold_the_call(tmp_path):
    cfg = make_cfg(tmp_path)
    t0 = time.monotonic()
    r = run(cfg, ["bash", "-c", "sleep 30 & echo started"], timeout_ms=20000)
    assert r.exit_code == 0 and r.stdout == "started\n"
    assert time.monotonic() - t0 < 5


def test_cancel_kills_the_group(tmp_path):
    cfg = make_cfg(tmp_path)
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    t0 = time.monotonic()
    r = run(cfg, ["sleep", "30"], cancel=cancel, timeout_ms=20000)
    assert r.cancelled and r.exit_code == 130 and time.monotonic() - t0 < 5


def test_streaming_deltas(tmp_path):
    cfg = make_cfg(tmp_path)
    got = []
    r = run(cfg, ["bash", "-c", "echo one; sleep 0.1; echo two >&2"], on_output=lambda s, b: got.append((s, b)))
    assert ("stdout", b"one\n") in got and ("stderr", b"two\n") in got
    assert r.exit_code == 0


def test_capture_is_capped_but_keeps_head_and_tail(tmp_path):
    cfg = make_cfg(tmp_path)
    r = run(cfg, [sys.executable, "-c", "import sys; sys.stdout.write('A'*10 + 'x'*(4*1024*1024) + 'Z'*10)"])
    assert r.exit_code == 0
    assert len(r.stdout) < codex.CAPTURE_LIMIT_BYTES + 200
    assert r.stdout.startswith("A" * 10) and r.stdout.endswith("Z" * 10) and "bytes not captured" in r.stdout


def test_seq_300_fully_captured(tmp_path):
    cfg = make_cfg(tmp_path)
    r = run(cfg, ["seq", "300"])
    assert r.stdout.splitlines() == [str(i) for i in range(1, 301)]


# -- the model's envelope -------------------------------------------------------------------


def test_envelope_shape():
    r = codex.ExecResult(3, "o", "e", "o\ne\n", 1.234)
    data = json.loads(codex.format_exec_output(r))
    assert data == {"output": "o\ne\n", "metadata": {"exit_code": 3, "duration_seconds": 1.2}}


def test_envelope_head_tail_truncation():
    text = "".join("line %d\n" % i for i in range(1, 1001))
    out = json.loads(codex.format_exec_output(codex.ExecResult(0, text, "", text, 0.0)))["output"]
    assert out.startswith("line 1\n") and out.endswith("line 1000\n")
    assert "[... omitted" in out and "of 1000 lines ...]" in out
    assert len(out.encode()) <= codex.MODEL_OUTPUT_MAX_BYTES + 100
    assert out.count("\n") <= codex.MODEL_OUTPUT_MAX_LINES + 3


def test_envelope_byte_cap_on_long_lines_keeps_utf8():
    text = ("é" * 3000 + "\n") * 15
    out = json.loads(codex.format_exec_output(codex.ExecResult(0, text, "", text, 0.0)))["output"]
    assert len(out.encode("utf-8")) <= codex.MODEL_OUTPUT_MAX_BYTES + 100
    out.encode("utf-8")  # no broken characters
    assert "omitted" in out


def test_short_output_untouched():
    assert codex._truncate_for_model("a\nb\n") == "a\nb\n"


# -- build_command_env ----------------------------------------------------------------------

BASE_ENV = {"HOME": "/h", "PATH": "/usr/bin", "OPENAI_API_KEY": "sk-1", "GITHUB_TOKEN": "t", "MY_SECRET_X": "s",
            "AWS_ACCESS_KEY_ID": "a", "LANG": "C", "EDITOR": "vi", "MYCRED": "c", "SHELL": "/bin/bash"}


def test_env_default_drops_secrets_and_sets_network_flag(tmp_path):
    cfg = make_cfg(tmp_path, sandbox="read-only")
    env = codex.build_command_env(cfg, BASE_ENV)
    assert set(env) == {"HOME", "PATH", "LANG", "EDITOR", "MYCRED", "SHELL", "CODEX_SANDBOX_NETWORK_DISABLED"}
    assert env["CODEX_SANDBOX_NETWORK_DISABLED"] == "1"


def test_env_network_on_has_no_flag(tmp_path):
    cfg = make_cfg(tmp_path, sandbox="workspace-write", overrides=["sandbox_workspace_write.network_access=true"])
    assert "CODEX_SANDBOX_NETWORK_DISABLED" not in codex.build_command_env(cfg, BASE_ENV)
    cfg = make_cfg(tmp_path, sandbox="danger-full-access")
    assert "CODEX_SANDBOX_NETWORK_DISABLED" not in codex.build_command_env(cfg, BASE_ENV)


def test_env_provider_key_never_leaks_by_default(tmp_path):
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "config.toml").write_text(
        '[model_providers.corp]\nbase_url = "http://x"\nenv_key = "MYCRED"\n')
    cfg = make_cfg(tmp_path)
    assert "MYCRED" not in codex.build_command_env(cfg, BASE_ENV)


def test_env_inherit_core_none_set_exclude_include_only(tmp_path):
    cfg = make_cfg(tmp_path, overrides=['shell_environment_policy.inherit="core"'])
    assert set(codex.build_command_env(cfg, BASE_ENV)) == {"HOME", "PATH", "SHELL"}
    cfg = make_cfg(tmp_path, overrides=['shell_environment_policy.inherit="none"',
                                        'shell_environment_policy.set={FOO="1", BAR="2"}'])
    assert codex.build_command_env(cfg, BASE_ENV) == {"FOO": "1", "BAR": "2"}
    cfg = make_cfg(tmp_path, overrides=['shell_environment_policy.exclude=["ed*", "LANG"]'])
    env = codex.build_command_env(cfg, BASE_ENV)
    assert "EDITOR" not in env and "LANG" not in env and "HOME" in env
    cfg = make_cfg(tmp_path, overrides=['shell_environment_policy.include_only=["PATH", "X*"]',
                                        'shell_environment_policy.set={XY="1", ZZ="2"}'])
    assert codex.build_command_env(cfg, BASE_ENV) == {"PATH": "/usr/bin", "XY": "1"}
    cfg = make_cfg(tmp_path, overrides=["shell_environment_policy.ignore_default_excludes=true"])
    assert codex.build_command_env(cfg, BASE_ENV)["GITHUB_TOKEN"] == "t"


def test_secrets_absent_in_the_running_command(tmp_path, monkeypatch):
    monkeypatch.setenv("SUPER_SECRET_TOKEN_VALUE", "hunter2")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-should-not-leak")
    cfg = make_cfg(tmp_path, sandbox="workspace-write")
    r = run(cfg, ["env"])
    assert r.exit_code == 0
    assert "hunter2" not in r.stdout and "sk-should-not-leak" not in r.stdout
    assert "CODEX_SANDBOX_NETWORK_DISABLED=1" in r.stdout


# -- execute_with_policy ----------------------------------------------------------------------


class Asker(object):
    """Scripted user answers; records every question."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.questions = []

    def __call__(self, kind, argv, cwd, reason=None):
        self.questions.append((kind, list(argv), cwd, reason))
        return self.answers.pop(0)


def write_outside_cmd(target):
    return ["bash", "-c", "echo hi > %s" % target]


def test_on_failure_denial_asks_then_retries_unsandboxed(tmp_path):
    cfg = make_cfg(tmp_path, "on-failure", "workspace-write",
                   ["sandbox_workspace_write.exclude_slash_tmp=true", "sandbox_workspace_write.exclude_tmpdir_env_var=true"])
    target = tmp_path / "outside.txt"
    ask = Asker("approved")
    state = {}
    out = codex.execute_with_policy(write_outside_cmd(target), cfg.cwd, cfg, state, ask)
    assert out.decision == "retry-approved" and target.read_text() == "hi\n"
    assert ask.questions[0][3] == "command failed; retry without sandbox?"
    assert state["approved_commands"] == set()  # a plain yes approves one run only


def test_on_failure_denial_denied(tmp_path):
    cfg = make_cfg(tmp_path, "on-failure", "workspace-write",
                   ["sandbox_workspace_write.exclude_slash_tmp=true", "sandbox_workspace_write.exclude_tmpdir_env_var=true"])
    target = tmp_path / "outside.txt"
    out = codex.execute_with_policy(write_outside_cmd(target), cfg.cwd, cfg, {}, Asker("denied"))
    assert out.decision == "denied" and out.model_output == "exec command rejected by user"
    assert not target.exists()


def test_on_failure_plain_failure_does_not_ask(tmp_path):
    cfg = make_cfg(tmp_path, "on-failure", "workspace-write")
    ask = Asker()
    for argv in (["bash", "-c", "false"], ["grep", "nomatch", "/dev/null"], ["no-such-cmd-xyz"], ["bash", "-c", "exit 2"]):
        out = codex.execute_with_policy(argv, cfg.cwd, cfg, {}, ask)
        assert out.decision == "auto-approve", argv
        assert json.loads(out.model_output)["metadata"]["exit_code"] != 0
    assert ask.questions == []


def test_never_denial_goes_to_model(tmp_path):
    cfg = make_cfg(tmp_path, "never", "read-only")
    target = tmp_path / "ws" / "x.txt"
    out = codex.execute_with_policy(write_outside_cmd(target), cfg.cwd, cfg, {}, Asker())
    assert out.decision == "sandbox-failed" and not target.exists()
    assert out.model_output.startswith("failed in sandbox LinuxSeccomp with execution error: sandbox denied exec error")
    assert "Permission denied" in out.model_output or "Read-only file system" in out.model_output


def test_untrusted_asks_first_and_runs_unsandboxed(tmp_path):
    cfg = make_cfg(tmp_path, "untrusted", "read-only")
    target = tmp_path / "ws" / "x.txt"
    ask = Asker("approved_for_session")
    state = {}
    argv = write_outside_cmd(target)
    out = codex.execute_with_policy(argv, cfg.cwd, cfg, state, ask)
    assert out.decision == "approved_for_session" and target.exists()
    assert state["approved_commands"] == {tuple(argv)}
    target.unlink()
    out = codex.execute_with_policy(argv, cfg.cwd, cfg, state, ask)  # no second question
    assert out.decision == "auto-approve" and target.exists() and len(ask.questions) == 1


def test_untrusted_abort_and_deny(tmp_path):
    cfg = make_cfg(tmp_path, "untrusted", "read-only")
    out = codex.execute_with_policy(["python3", "-c", "1"], cfg.cwd, cfg, {}, Asker("abort"))
    assert out.decision == "abort" and out.result is None
    out = codex.execute_with_policy(["python3", "-c", "1"], cfg.cwd, cfg, {}, Asker("denied"))
    assert out.decision == "denied" and out.model_output == "exec command rejected by user"


def test_known_safe_runs_sandboxed_without_question(tmp_path):
    cfg = make_cfg(tmp_path, "untrusted", "read-only")
    out = codex.execute_with_policy(["ls"], cfg.cwd, cfg, {}, Asker())
    assert out.decision == "auto-approve" and out.result.sandbox_type is not None
    assert json.loads(out.model_output)["metadata"]["exit_code"] == 0


def test_on_request_escalation_asks_with_justification(tmp_path):
    cfg = make_cfg(tmp_path, "on-request", "workspace-write")
    ask = Asker("denied")
    out = codex.execute_with_policy(["python3", "-c", "1"], cfg.cwd, cfg, {}, ask, escalated=True,
                                    justification="needs network")
    assert out.decision == "denied" and ask.questions[0][3] == "needs network"


def test_never_without_sandbox_rejects(tmp_path, monkeypatch):
    cfg = make_cfg(tmp_path, "never", "workspace-write")
    monkeypatch.setattr(codex, "sandbox_available", lambda home=None: False)
    out = codex.execute_with_policy(["python3", "-c", "1"], cfg.cwd, cfg, {}, Asker())
    assert out.decision == "reject" and out.model_output.startswith("exec command rejected: ")


def test_timeout_is_not_a_denial(tmp_path):
    cfg = make_cfg(tmp_path, "on-failure", "workspace-write")
    ask = Asker()
    out = codex.execute_with_policy(["sleep", "5"], cfg.cwd, cfg, {}, ask, timeout_ms=200)
    assert ask.questions == [] and out.result.timed_out
    assert json.loads(out.model_output)["metadata"]["exit_code"] == 124


def test_model_workdir_does_not_widen_policy(tmp_path):
    """Upstream #3874: the command's cwd is not a writable root; the session cwd is."""
    cfg = make_cfg(tmp_path, "never", "workspace-write",
                   ["sandbox_workspace_write.exclude_slash_tmp=true", "sandbox_workspace_write.exclude_tmpdir_env_var=true"])
    other = tmp_path / "other"
    other.mkdir()
    out = codex.execute_with_policy(["bash", "-c", "echo x > forbidden.txt"], other, cfg, {}, Asker())
    assert out.decision == "sandbox-failed" and not (other / "forbidden.txt").exists()
    out = codex.execute_with_policy(["touch", str(cfg.cwd / "allowed.txt")], other, cfg, {}, Asker())
    assert out.decision == "auto-approve" and (cfg.cwd / "allowed.txt").exists()


def test_eacces_on_a_writable_path_is_not_a_denial(tmp_path):
    """A read-only file inside the workspace fails for its own reasons, not the sandbox's."""
    cfg = make_cfg(tmp_path, "on-failure", "workspace-write")
    policy = codex.SandboxPolicy.from_config(cfg)
    r = codex.ExecResult(1, "", "bash: line 1: notes.txt: Permission denied\n", "", 0.0, sandbox_type="linux")
    assert not codex.looks_like_sandbox_denial(r, policy, cfg.cwd, None, cfg.cwd)
    r.stderr = "bash: line 1: .git/config: Read-only file system\n"
    (cfg.cwd / ".git").mkdir()
    codex._NESTED_CACHE.clear()
    assert codex.looks_like_sandbox_denial(r, policy, cfg.cwd, None, cfg.cwd)
    r.stderr = "touch: cannot touch '/etc/x': Permission denied\n"
    assert codex.looks_like_sandbox_denial(r, policy, cfg.cwd, None, cfg.cwd)
    r.stderr = "curl: (6) Could not resolve host: example.com\n"
    assert codex.looks_like_sandbox_denial(r, policy, cfg.cwd, None, cfg.cwd)
    r.stderr, r.exit_code = "error: tests failed\n", 101
    assert not codex.looks_like_sandbox_denial(r, policy, cfg.cwd, None, cfg.cwd)
    r.sandbox_type = None
    r.stderr = "Permission denied"
    assert not codex.looks_like_sandbox_denial(r, policy, cfg.cwd, None, cfg.cwd)  # unsandboxed runs never are


def test_timeout_and_cancel_after_the_command_closed_its_pipes(tmp_path):
    cfg = make_cfg(tmp_path)
    t0 = time.monotonic()
    r = run(cfg, ["bash", "-c", "exec >&- 2>&-; sleep 30"], timeout_ms=300)
    assert r.timed_out and r.exit_code == 124 and time.monotonic() - t0 < 5
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    r = run(cfg, ["bash", "-c", "exec >&- 2>&-; sleep 30"], cancel=cancel, timeout_ms=20000)
    assert r.cancelled and time.monotonic() - t0 < 10


# -- resolving once per command ---------------------------------------------------------------


def _tree(tmp_path):
    """Directories, files, absolute and relative symlinks, a link through `..`, a loop, a dangling link."""
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "f").write_text("x")
    (tmp_path / "abs").symlink_to(tmp_path / "a" / "b")
    (tmp_path / "a" / "rel").symlink_to("b")
    (tmp_path / "a" / "b" / "up").symlink_to("../../a")
    (tmp_path / "loop1").symlink_to("loop2")
    (tmp_path / "loop2").symlink_to("loop1")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere" / "x")
    names = ["a", "b", "f", "abs", "rel", "up", "loop1", "dangling", "nowhere", "..", "."]
    return names


def test_resolving_once_gives_realpaths_answers(tmp_path):
    """_realpath inside resolving_once() answers exactly as os.path.realpath, `..` after a symlink
    included (the kernel's answer, not the lexical one)."""
    import itertools

    names = _tree(tmp_path)
    paths = [str(tmp_path)] + ["%s/%s" % (tmp_path, "/".join(c)) for n in (1, 2, 3)
                               for c in itertools.product(names, repeat=n)]
    with codex.resolving_once():
        for p in paths:
            assert codex._realpath(p) == os.path.realpath(p), p
        assert codex._realpath(str(tmp_path) + "//a") == os.path.realpath(str(tmp_path) + "//a")
        assert codex._realpath("/") == "/"
    assert any(os.path.realpath(p) != os.path.normpath(p) for p in paths)  # the tree has links to follow


def test_resolving_once_forgets_at_the_end_of_the_block(tmp_path):
    """What a command renames between two commands is resolved afresh: nothing outlives the block."""
    (tmp_path / "ws").mkdir()
    (tmp_path / "elsewhere").mkdir()
    with codex.resolving_once():
        assert codex._realpath(str(tmp_path / "ws")) == str(tmp_path / "ws")
        with codex.resolving_once():  # nested: the outer block's memory is kept
            assert codex._realpath(str(tmp_path / "ws" / "x")) == str(tmp_path / "ws" / "x")
        assert codex._RESOLVED.memo
    assert codex._RESOLVED.memo is None
    (tmp_path / "ws").rename(tmp_path / "ws.old")
    (tmp_path / "ws").symlink_to(tmp_path / "elsewhere")
    with codex.resolving_once():
        assert codex._realpath(str(tmp_path / "ws" / "x")) == str(tmp_path / "elsewhere" / "x")


def test_resolving_once_handles_directories_thousands_deep(tmp_path):
    """A command can make a tree deeper than Python's recursion limit: resolved without recursion."""
    deep = str(tmp_path)
    for _ in range(1200):  # (os.makedirs and shutil.rmtree recurse: made and removed here, level by level)
        deep += "/d"
        os.mkdir(deep)
    try:
        with codex.resolving_once():
            assert codex._realpath(deep + "/x") == os.path.realpath(deep + "/x")
    finally:
        while deep != str(tmp_path):
            os.rmdir(deep)
            deep = os.path.dirname(deep)
