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
    """A Python hook program, kept in a $CODEX_HOME (tmp_path/codex-home: read-only for commands,
    so codex runs it; tmp_path itself lies in /tmp, where commands may write); returns its argv."""
    home = tmp_path / "codex-home"
    home.mkdir(exist_ok=True)
    path = home / name
    path.write_text("import json, sys, os\n" + body)
    return [PY, str(path)]


def run_hooks(hooks, *args, **kw):
    """codex.run_hooks with $CODEX_HOME where script() keeps the hook programs."""
    kw.setdefault("home", os.path.dirname(hooks[0].argv[-1]))
    return codex.run_hooks(hooks, *args, **kw)


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
    out = run_hooks([hook("PreToolUse", argv)], "PreToolUse", payload, tool_name="Bash", cwd=tmp_path)
    assert not out.blocked and out.permission is None
    assert json.loads(seen.read_text()) == dict(payload, hook_event_name="PreToolUse")


def test_exit_2_blocks_with_stderr_as_the_reason(tmp_path):
    argv = script(tmp_path, "h.py", "sys.stderr.write('rm is not allowed here\\n'); sys.exit(2)\n")
    out = run_hooks([hook("PreToolUse", argv)], "PreToolUse", {}, tool_name="Bash")
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
    out = run_hooks([hook("PreToolUse", argv)], "PreToolUse", {}, tool_name="Bash")
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
    out = run_hooks([hook("PreToolUse", argv)], "PreToolUse", {}, tool_name="Bash")
    assert out.blocked and why in out.reason and "fail_closed" in out.reason and "h.py" in out.reason
    lenient = run_hooks([hook("PreToolUse", argv, fail_closed=False)], "PreToolUse", {}, tool_name="Bash")
    assert not lenient.blocked and why in lenient.warnings[0]


@pytest.mark.slow  # waits out the hook's timeout
def test_a_hanging_hook_is_killed_and_blocks(tmp_path):
    child_pid = tmp_path / "child.pid"
    argv = script(tmp_path, "h.py", "import subprocess, time\n"
                  "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
                  "open(%r, 'w').write(str(p.pid)); time.sleep(60)\n" % str(child_pid))
    start = time.monotonic()
    out = run_hooks([hook("PreToolUse", argv, timeout=1.0)], "PreToolUse", {}, tool_name="Bash")
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
    out = run_hooks([hook("PreToolUse", [str(tmp_path / "no-such-hook")])], "PreToolUse", {}, tool_name="Bash")
    assert out.blocked and "could not start" in out.reason


def test_matcher_selects_tools_and_plain_stdout_is_context_for_prompts(tmp_path):
    marker = tmp_path / "ran"
    argv = script(tmp_path, "h.py", "open(%r, 'a').write('x'); sys.exit(2)\n" % str(marker))
    out = run_hooks([hook("PreToolUse", argv, matcher="apply_patch")], "PreToolUse", {}, tool_name="Bash")
    assert not out.blocked and not marker.exists()
    ctx = script(tmp_path, "ctx.py", "print('Remember: the build uses make.')\n")
    structured = script(tmp_path, "ctx2.py", "print(json.dumps({'hookSpecificOutput': {'additionalContext': 'Ticket ABC-1'}}))\n")
    out = run_hooks([hook("UserPromptSubmit", ctx), hook("UserPromptSubmit", structured)], "UserPromptSubmit", {"prompt": "hi"})
    assert not out.blocked and out.context == ["Remember: the build uses make.", "Ticket ABC-1"]


def test_hook_gets_the_project_dir_and_runs_in_cwd(tmp_path):
    seen = tmp_path / "env.json"
    argv = script(tmp_path, "h.py", "json.dump([os.getcwd(), os.environ.get('CLAUDE_PROJECT_DIR'), os.environ.get('CODEX_PROJECT_DIR')], open(%r, 'w'))\n" % str(seen))
    work = tmp_path / "work"
    work.mkdir()
    run_hooks([hook("Stop", argv)], "Stop", {}, cwd=work)
    assert json.loads(seen.read_text()) == [str(work)] * 3


def test_big_output_does_not_wedge_the_hook(tmp_path):
    argv = script(tmp_path, "h.py", "sys.stdout.write('{' + ' ' * (4 * 1024 * 1024)); sys.stdout.flush(); sys.exit(2)\n")
    out = run_hooks([hook("PreToolUse", argv, timeout=20)], "PreToolUse", {}, tool_name="Bash")
    assert out.blocked and "timed out" not in out.reason


# -- end to end: codex exec with hook scripts and the scripted model --------------------------

import subprocess  # noqa: E402

from support.agent_env import MOCK_KEY_ENV, mock_cli_args  # noqa: E402
from support.model_server import Turn  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def exec_codex(server, codex_home, work, prompt, *args, timeout=90):
    env = dict(os.environ, CODEX_HOME=str(codex_home), **{MOCK_KEY_ENV: "test-key"})
    cmd = [sys.executable, os.path.join(REPO, "codex.py"), "exec", "--skip-git-repo-check", "-C", str(work),
           "-s", "workspace-write", "--json"] + mock_cli_args(server) + list(args) + [prompt]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    return r


def outputs(server):
    """function_call_output texts the model was sent, by call_id."""
    found = {}
    for req in server.model_requests():
        for item in req.body.get("input", []):
            if item.get("type") == "function_call_output":
                found[item["call_id"]] = item["output"]
    return found


def write_hooks(codex_home, table):
    (codex_home / "hooks.json").write_text(json.dumps({"hooks": table}))


@pytest.fixture
def work(tmp_path):
    w = tmp_path / "work"
    w.mkdir()
    return w


GUARD = """import json, sys
data = json.load(sys.stdin)
with open(%(log)r, "a") as f:
    f.write(json.dumps(data) + "\\n")
if data["hook_event_name"] == "PreToolUse" and data["tool_input"].get("command", "").startswith("rm "):
    sys.stderr.write("rm is not allowed by policy")
    sys.exit(2)
"""


def test_pre_tool_use_hook_blocks_rm_and_sees_upstreams_payload(server, codex_home, work, tmp_path):
    victim = work / "victim.txt"
    victim.write_text("keep me\n")
    log_file = tmp_path / "payloads.jsonl"
    guard = codex_home / "guard.py"
    guard.write_text(GUARD % {"log": str(log_file)})
    write_hooks(codex_home, {"PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "%s %s" % (sys.executable, guard)}]}],
                             "PostToolUse": [{"hooks": [{"type": "command", "command": [sys.executable, str(guard)]}]}]})
    server.enqueue(Turn().function_call("shell", {"command": ["rm", "victim.txt"]}, call_id="call_rm"),
                   Turn().function_call("shell", {"command": ["echo", "hi"]}, call_id="call_echo"),
                   Turn().text("done"))
    r = exec_codex(server, codex_home, work, "clean up")
    assert r.returncode == 0, r.stderr
    assert victim.read_text() == "keep me\n"  # the marker: rm never ran
    outs = outputs(server)
    assert outs["call_rm"] == "blocked by a PreToolUse hook: rm is not allowed by policy"
    declined = [json.loads(l)["item"] for l in r.stdout.splitlines() if '"declined"' in l]
    assert declined == [{"id": declined[0]["id"], "type": "command_execution", "command": "rm victim.txt",
                         "aggregated_output": "blocked by a PreToolUse hook: rm is not allowed by policy",
                         "exit_code": None, "status": "declined"}]  # exec --json shows what policy stopped
    assert "hi" in outs["call_echo"]
    payloads = [json.loads(l) for l in log_file.read_text().splitlines()]
    pre_rm = payloads[0]
    session_id = json.loads(r.stdout.splitlines()[0])["thread_id"]
    assert set(pre_rm) == {"session_id", "transcript_path", "cwd", "hook_event_name", "model", "permission_mode",
                           "turn_id", "tool_name", "tool_input", "tool_use_id"}
    assert pre_rm["session_id"] == session_id and pre_rm["hook_event_name"] == "PreToolUse"
    assert pre_rm["cwd"] == str(work) and pre_rm["tool_name"] == "Bash"
    assert pre_rm["tool_input"] == {"command": "rm victim.txt"} and pre_rm["tool_use_id"] == "call_rm"
    assert pre_rm["permission_mode"] == "acceptEdits" and os.path.isfile(pre_rm["transcript_path"])
    post_echo = [p for p in payloads if p["hook_event_name"] == "PostToolUse"]
    assert [p["tool_use_id"] for p in post_echo] == ["call_echo"]  # a blocked call has no PostToolUse
    assert "hi" in post_echo[0]["tool_response"]


@pytest.mark.parametrize("body", ["raise SystemExit(3)\n",
                                  pytest.param("import time; time.sleep(30)\n", marks=pytest.mark.slow)])  # waits out the timeout
def test_crashing_or_hanging_hook_blocks_the_tool(server, codex_home, work, tmp_path, body):
    hook_file = codex_home / "broken.py"
    hook_file.write_text(body)
    (codex_home / "config.toml").write_text(
        '[[hooks.PreToolUse]]\ncommand = ["%s", "%s"]\ntimeout = 2\n' % (sys.executable, hook_file))
    marker = work / "made.txt"
    server.enqueue(Turn().function_call("shell", {"command": ["touch", str(marker)]}, call_id="c1"), Turn().text("ok"))
    r = exec_codex(server, codex_home, work, "make it")
    assert r.returncode == 0, r.stderr
    assert not marker.exists()
    out = outputs(server)["c1"]
    assert out.startswith("blocked by a PreToolUse hook: hook ") and "broken.py" in out and "fail_closed" in out


def test_stop_and_prompt_hooks(server, codex_home, work, tmp_path):
    log_file = tmp_path / "stop.jsonl"
    stop = codex_home / "stop.py"
    stop.write_text("import json, sys\nd = json.load(sys.stdin)\nopen(%r, 'a').write(json.dumps(d) + '\\n')\n"
                    "if not d['stop_hook_active']:\n    print(json.dumps({'decision': 'block', 'reason': 'run the tests first'}))\n"
                    % str(log_file))
    prompt_hook = codex_home / "prompt.py"
    prompt_hook.write_text("import json, sys\nd = json.load(sys.stdin)\n"
                           "if 'secret' in d['prompt']:\n    print(json.dumps({'decision': 'block', 'reason': 'no secrets'}))\n"
                           "else:\n    print('Ticket: ABC-123')\n")
    write_hooks(codex_home, {"Stop": [{"hooks": [{"type": "command", "command": [sys.executable, str(stop)]}]}],
                             "UserPromptSubmit": [{"hooks": [{"type": "command", "command": [sys.executable, str(prompt_hook)]}]}]})
    server.enqueue(Turn().text("first answer"), Turn().text("tests pass"))
    r = exec_codex(server, codex_home, work, "do the thing")
    assert r.returncode == 0, r.stderr
    reqs = server.model_requests()
    assert len(reqs) == 2
    first_user = [i for i in reqs[0].body["input"] if i.get("role") == "user"][-1]
    assert "do the thing" in json.dumps(first_user) and "Ticket: ABC-123" in json.dumps(first_user)
    assert "run the tests first" in json.dumps(reqs[1].body["input"][-1])
    stops = [json.loads(l) for l in log_file.read_text().splitlines()]
    assert [(s["stop_hook_active"], s["last_assistant_message"]) for s in stops] == [(False, "first answer"), (True, "tests pass")]
    r = exec_codex(server, codex_home, work, "here is my secret")
    assert r.returncode == 1 and "blocked by a UserPromptSubmit hook: no secrets" in r.stdout
    assert len(server.model_requests()) == 2  # the blocked prompt never reached the model


def test_bad_hooks_config_is_a_one_line_error(run_codex, codex_home, tmp_path):
    (codex_home / "hooks.json").write_text('{"hooks": {"PreToolUse": [{"matcher": "(", "hooks": []}]}}')
    r = run_codex("exec", "--skip-git-repo-check", "hi")
    assert r.returncode == 2 and "hooks.json: hooks.PreToolUse[0]: `matcher`" in r.stderr and "Traceback" not in r.stderr


def test_system_hooks_run_first(server, codex_home, work, tmp_path, monkeypatch):
    system = tmp_path / "etc-codex"
    system.mkdir()
    order = tmp_path / "order.txt"
    for where, tag in ((system, "system"), (codex_home, "user")):
        (where / "hooks.json").write_text(json.dumps({"hooks": {"UserPromptSubmit": [{"hooks": [
            {"type": "command", "command": [sys.executable, "-c", "open(%r, 'a').write(%r)" % (str(order), tag + "\n")]}]}]}}))
    server.enqueue(Turn().text("ok"))
    r = exec_codex(server, codex_home, work, "hi")
    assert r.returncode == 0, r.stderr
    assert order.read_text().split() == ["system", "user"]


def test_config_show_attributes_hooks_to_their_files(run_codex, codex_home, tmp_path):
    """Hooks come from hooks.json files as well as [hooks] tables: config show names each place
    (it said `default` for hooks that only a hooks.json configured)."""
    (codex_home / "hooks.json").write_text(json.dumps(
        {"hooks": {"PreToolUse": [{"matcher": "", "hooks": [{"type": "command", "command": "true"}]}]}}))
    (codex_home / "config.toml").write_text('[hooks]\nStop = [{command = "echo done"}]\n')
    r = run_codex("config", "show", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    hooks = json.loads(r.stdout)["values"]["hooks"]
    assert hooks["layer"] == "hooks.json, config.toml"
    assert hooks["file"] == "%s, %s" % (codex_home / "hooks.json", codex_home / "config.toml")
    (codex_home / "config.toml").write_text("")
    text = run_codex("config", "show", cwd=tmp_path).stdout
    row = next(l for l in text.splitlines() if l.startswith("hooks "))
    assert "default" not in row and row.rstrip().endswith("hooks.json (%s)" % (codex_home / "hooks.json"))
    (codex_home / "hooks.json").unlink()
    row = next(l for l in run_codex("config", "show", cwd=tmp_path).stdout.splitlines() if l.startswith("hooks "))
    assert row.split()[-1] == "default"
