"""§14c Hooks: loading from config.toml and hooks.json, running real hook programs, decisions,
and failing closed (crash, timeout, garbage, missing program)."""
import json
import os
import sys
import time

import pytest

import codex

pytestmark = pytest.mark.timeout(60)

PY = sys.executable


def script(tmp_path, name, body):
    """A Python hook program; returns its argv."""
    path = tmp_path / name
    path.write_text("import json, sys, os\n" + body)
    return [PY, str(path)]


def hook(event, argv, **kw):
    return codex.Hook(event, argv, source="test", **kw)


# -- loading ------------------------------------------------------------------------------------


def test_hooks_json_in_claude_code_shape(tmp_path):
    path = tmp_path / "hooks.json"
    path.write_text(json.dumps({"hooks": {
        "PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "/usr/bin/policy --strict", "timeout": 5}]}],
        "Stop": [{"hooks": [{"type": "command", "command": "echo done | tee /tmp/x"}]}],
    }}))
    pre, stop = codex.load_hooks_file(path)
    assert (pre.event, pre.argv, pre.matcher, pre.timeout, pre.fail_closed) == ("PreToolUse", ["/usr/bin/policy", "--strict"], "Bash", 5.0, True)
    assert stop.argv == ["/bin/sh", "-c", "echo done | tee /tmp/x"]
    assert codex.load_hooks_file(tmp_path / "absent.json") == []


def test_config_toml_hooks_table_with_argv_lists():
    hooks = codex.parse_hooks({"PreToolUse": [{"matcher": "Bash|apply_patch", "command": ["guard", "--x"], "fail_closed": False}],
                               "UserPromptSubmit": {"command": "check-prompt"}}, "config.toml")
    assert [(h.event, h.argv, h.fail_closed) for h in hooks] == [
        ("PreToolUse", ["guard", "--x"], False), ("UserPromptSubmit", ["check-prompt"], True)]
    assert hooks[0].matches("Bash") and hooks[0].matches("apply_patch") and not hooks[0].matches("BashX")
    assert hooks[1].matches("anything")


@pytest.mark.parametrize("table, message", [
    ({"PreToolUs": []}, "unknown hook event `PreToolUs`"),
    ({"PreToolUse": [{"command": []}]}, "hooks.PreToolUse[0]: `command` must be"),
    ({"PreToolUse": [{"command": "x", "matcher": "("}]}, "not a valid regular expression"),
    ({"PreToolUse": [{"command": "x", "timeout": 0}]}, "`timeout` must be a positive number"),
    ({"PreToolUse": [{"command": "x", "fail_closed": "no"}]}, "`fail_closed` must be true or false"),
    ({"PreToolUse": [{"command": "x", "comand": "y"}]}, "unknown key `comand`"),
    ({"PreToolUse": [{"hooks": [{"type": "prompt", "command": "x"}]}]}, "hook type `prompt` is not supported"),
])
def test_bad_hook_config_is_one_line_naming_the_place(table, message):
    with pytest.raises(codex.ConfigError, match=message.replace("(", r"\(").replace("[", r"\[").replace("]", r"\]")) as err:
        codex.parse_hooks(table, "/etc/codex/config.toml")
    assert str(err.value).startswith("/etc/codex/config.toml: ") and "\n" not in str(err.value)


def test_broken_hooks_json_names_the_file(tmp_path):
    path = tmp_path / "hooks.json"
    path.write_text("{not json")
    with pytest.raises(codex.ConfigError, match="hooks.json: not valid JSON"):
        codex.load_hooks_file(path)


# -- running ------------------------------------------------------------------------------------


def test_payload_reaches_the_hook_on_stdin_and_exit_0_allows(tmp_path):
    seen = tmp_path / "seen.json"
    argv = script(tmp_path, "h.py", "open(%r, 'w').write(sys.stdin.read())\n" % str(seen))
    payload = {"session_id": "s1", "tool_name": "Bash", "tool_input": {"command": "ls"}}
    out = codex.run_hooks([hook("PreToolUse", argv)], "PreToolUse", payload, tool_name="Bash", cwd=tmp_path)
    assert not out.blocked and out.permission is None
    assert json.loads(seen.read_text()) == dict(payload, hook_event_name="PreToolUse")


def test_exit_2_blocks_with_stderr_as_the_reason(tmp_path):
    argv = script(tmp_path, "h.py", "sys.stderr.write('rm is not allowed here\\n'); sys.exit(2)\n")
    out = codex.run_hooks([hook("PreToolUse", argv)], "PreToolUse", {}, tool_name="Bash")
    assert out.blocked and out.reason == "rm is not allowed here"


@pytest.mark.parametrize("answer, blocked, permission", [
    ({"decision": "block", "reason": "no"}, True, None),
    ({"hookSpecificOutput": {"hookEventName": "PreToolUse", "permissionDecision": "deny", "permissionDecisionReason": "nope"}}, True, None),
    ({"hookSpecificOutput": {"hookEventName": "PreToolUse", "permissionDecision": "allow"}}, False, "allow"),
    ({"hookSpecificOutput": {"hookEventName": "PreToolUse", "permissionDecision": "ask"}}, False, "ask"),
    ({"decision": "approve"}, False, "allow"),
    ({"continue": False, "stopReason": "stop now"}, True, None),
    ({}, False, None),
])
def test_json_decisions(tmp_path, answer, blocked, permission):
    argv = script(tmp_path, "h.py", "print(json.dumps(%r))\n" % (answer,))
    out = codex.run_hooks([hook("PreToolUse", argv)], "PreToolUse", {}, tool_name="Bash")
    assert (out.blocked, out.permission) == (blocked, permission)
    if blocked:
        assert out.reason in ("no", "nope", "stop now")


@pytest.mark.parametrize("body, why", [
    ("raise SystemExit(1)\n", "exited 1"),
    ("import os, signal; os.kill(os.getpid(), signal.SIGKILL)\n", "killed by signal 9"),
    ("print('all good, probably')\n", "not a JSON object"),
    ("print('{broken json')\n", "invalid JSON"),
    ("print(json.dumps({'decision': 'maybe'}))\n", "unknown decision"),
])
def test_a_broken_hook_blocks_by_default(tmp_path, body, why):
    argv = script(tmp_path, "h.py", body)
    out = codex.run_hooks([hook("PreToolUse", argv)], "PreToolUse", {}, tool_name="Bash")
    assert out.blocked and why in out.reason and "fail_closed" in out.reason and "h.py" in out.reason
    lenient = codex.run_hooks([hook("PreToolUse", argv, fail_closed=False)], "PreToolUse", {}, tool_name="Bash")
    assert not lenient.blocked and why in lenient.warnings[0]


def test_a_hanging_hook_is_killed_and_blocks(tmp_path):
    child_pid = tmp_path / "child.pid"
    argv = script(tmp_path, "h.py", "import subprocess, time\n"
                  "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
                  "open(%r, 'w').write(str(p.pid)); time.sleep(60)\n" % str(child_pid))
    start = time.monotonic()
    out = codex.run_hooks([hook("PreToolUse", argv, timeout=1.0)], "PreToolUse", {}, tool_name="Bash")
    assert time.monotonic() - start < 10
    assert out.blocked and "timed out after 1 s" in out.reason
    pid = int(child_pid.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # the hook's whole process group is gone
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.05)
    else:
        pytest.fail("the hook's child outlived the timeout")


def test_a_missing_program_blocks(tmp_path):
    out = codex.run_hooks([hook("PreToolUse", [str(tmp_path / "no-such-hook")])], "PreToolUse", {}, tool_name="Bash")
    assert out.blocked and "could not start" in out.reason


def test_matcher_selects_tools_and_plain_stdout_is_context_for_prompts(tmp_path):
    marker = tmp_path / "ran"
    argv = script(tmp_path, "h.py", "open(%r, 'a').write('x'); sys.exit(2)\n" % str(marker))
    out = codex.run_hooks([hook("PreToolUse", argv, matcher="apply_patch")], "PreToolUse", {}, tool_name="Bash")
    assert not out.blocked and not marker.exists()
    ctx = script(tmp_path, "ctx.py", "print('Remember: the build uses make.')\n")
    structured = script(tmp_path, "ctx2.py", "print(json.dumps({'hookSpecificOutput': {'additionalContext': 'Ticket ABC-1'}}))\n")
    out = codex.run_hooks([hook("UserPromptSubmit", ctx), hook("UserPromptSubmit", structured)], "UserPromptSubmit", {"prompt": "hi"})
    assert not out.blocked and out.context == ["Remember: the build uses make.", "Ticket ABC-1"]


def test_hook_gets_the_project_dir_and_runs_in_cwd(tmp_path):
    seen = tmp_path / "env.json"
    argv = script(tmp_path, "h.py", "json.dump([os.getcwd(), os.environ.get('CLAUDE_PROJECT_DIR'), os.environ.get('CODEX_PROJECT_DIR')], open(%r, 'w'))\n" % str(seen))
    work = tmp_path / "work"
    work.mkdir()
    codex.run_hooks([hook("Stop", argv)], "Stop", {}, cwd=work)
    assert json.loads(seen.read_text()) == [str(work)] * 3


def test_big_output_does_not_wedge_the_hook(tmp_path):
    argv = script(tmp_path, "h.py", "sys.stdout.write('{' + ' ' * (4 * 1024 * 1024)); sys.stdout.flush(); sys.exit(2)\n")
    out = codex.run_hooks([hook("PreToolUse", argv, timeout=20)], "PreToolUse", {}, tool_name="Bash")
    assert out.blocked and "timed out" not in out.reason
