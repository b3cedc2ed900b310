"""Local models (issue 12): tool calls written as text, the string shell tool, argv with shell
operators, non-login shells, tool-call limits, the served context window and the compact
prompt, `--oss` discovery.  The scripted model server plays the model; the real one is in
tests/test_local_model_e2e.py.
"""
import json
import os
import socket
import subprocess
import sys
import time

import pytest

import codex
from support.agent_env import MOCK_KEY_ENV, drain_until, mock_cli_args, mock_config, user_input
from support.model_server import ModelServer, Turn

REPO = codex.Path(codex.__file__).resolve().parent

SHELL_CMD = "shell_command"


def offered(cfg=None):
    """name -> schema of the tools a Chat session offers (shell_command, update_plan)."""
    cfg = cfg or type("Cfg", (), {"approval_policy": "never", "sandbox_mode": "read-only"})()
    return {t["name"]: t["parameters"] for t in (codex.shell_command_tool(cfg), codex.update_plan_tool())}


def fenced(obj, lang="json"):
    return "```%s\n%s\n```" % (lang, json.dumps(obj))


CALL = {"name": SHELL_CMD, "arguments": {"command": "echo hi > out.txt"}}


# -- the parser --------------------------------------------------------------------------------

@pytest.mark.parametrize("text,fmt", [
    (fenced(CALL), "fenced_json"),
    (fenced(CALL, lang=""), "fenced_json"),
    ("I will create the file now.\n\n" + fenced(CALL) + "\n", "fenced_json"),
    ('```json {"name": "shell_command", "arguments": {"command": "ls"}} ```', "fenced_json"),
    ("<tool_call>\n%s\n</tool_call>" % json.dumps(CALL), "tool_call_tags"),
    ("<tool_call>\n%s" % json.dumps(CALL), "tool_call_tags"),  # stopped at the end tag
    ("<tool_call>\n%s\n</tool_call>" % fenced(CALL), "tool_call_tags"),
    ('<function=shell_command>{"command": "ls"}</function>', "function_tags"),
    ('<|python_tag|>{"name": "shell_command", "parameters": {"command": "ls"}}', "python_tag"),
    ('[TOOL_CALLS][{"name": "shell_command", "arguments": {"command": "ls"}}]', "mistral_tool_calls"),
    (json.dumps(CALL), "bare_json"),
    (json.dumps(CALL) + "\n" + json.dumps(CALL) + "\n", "bare_json"),  # several calls, one per line
    (fenced(CALL)[:-4] + "\n" + json.dumps(CALL) + "\n```", "fenced_json"),  # ... in one block
    (json.dumps({"type": "function", "function": {"name": SHELL_CMD, "arguments": '{"command": "ls"}'}}), "bare_json"),
])
def test_recovers_the_common_formats(text, fmt):
    found = codex.recover_tool_calls(text, offered())
    assert found is not None and found[0] == fmt
    assert {name for name, _ in found[2]} == {SHELL_CMD} and len(found[2]) == max(1, text.count("\"name\""))
    assert isinstance(json.loads(found[2][0][1])["command"], str)


def test_recovers_a_python_triple_quoted_string_as_the_json_string_it_stands_for():
    """Qwen2.5-Coder-1.5B wrote a file's content as a Python triple-quoted string inside the JSON."""
    tools = dict(offered(), write_file=codex.write_file_tool()["parameters"])
    text = ('```json\n{\n  "name": "write_file",\n  "arguments": {\n    "path": "f.py",\n    "content": """\n'
            '    for i in range(3):\n        print("x")\n    """\n  }\n}\n```')
    fmt, _, calls = codex.recover_tool_calls(text, tools)
    assert json.loads(calls[0][1])["content"] == 'for i in range(3):\n    print("x")\n'
    assert codex.recover_tool_calls('{"name": "write_file", "arguments": {"path": """a""" + 1}}', tools) is None


def test_recovers_several_calls_and_keeps_the_prose():
    text = "Two steps.\n<tool_call>\n%s\n</tool_call>\n<tool_call>\n%s\n</tool_call>" % (
        json.dumps(CALL), json.dumps({"name": SHELL_CMD, "arguments": {"command": "cat out.txt"}}))
    fmt, prose, calls = codex.recover_tool_calls(text, offered())
    assert prose.strip() == "Two steps."
    assert [json.loads(a)["command"] for _, a in calls] == ["echo hi > out.txt", "cat out.txt"]


@pytest.mark.parametrize("text", [
    "The answer is 42.",
    fenced({"a": 1}),  # JSON, but not a call
    fenced({"name": "rm_everything", "arguments": {"command": "ls"}}),  # a tool we did not offer
    fenced({"name": SHELL_CMD, "arguments": {"cmd": "ls"}}),  # arguments that fail the schema
    fenced({"name": SHELL_CMD, "arguments": {"command": ["ls"]}}),  # wrong type
    fenced({"name": SHELL_CMD, "arguments": {"command": "ls"}, "extra": 1}),  # not a call object
    # prose that quotes a call block: in the middle of the text, introduced as an example,
    # or next to another call-like block the model is discussing
    "A call looks like\n" + fenced(CALL) + "\nand the server runs it.",
    "For example:\n" + fenced(CALL),
    "Here is the format, like this:\n\n" + fenced(CALL),
    "Wrong:\n" + fenced({"name": SHELL_CMD, "arguments": {"command": 1}}) + "\nRight:\n" + fenced(CALL),
    "Write `<tool_call>` tags around %s when you call a tool." % json.dumps(CALL),
    "<tool_call>\n%s\n</tool_call>\nThen I will check it." % json.dumps(CALL),
    "```python\nprint('hi')\n```",
    '```json\n{"name": "shell_command", "arguments": {"command": "ls"}\n```',  # broken JSON
    json.dumps(CALL) + "\nThen I check it.",  # a call followed by prose
    json.dumps(CALL) + "\n" + json.dumps({"a": 1}),  # a call next to JSON that is not one
])
def test_leaves_text_that_is_not_a_call(text):
    assert codex.recover_tool_calls(text, offered()) is None


def test_validates_nested_arguments():
    plan_ok = {"name": "update_plan", "arguments": {"plan": [{"step": "a", "status": "pending"}]}}
    plan_bad = {"name": "update_plan", "arguments": {"plan": [{"step": "a"}]}}
    assert codex.recover_tool_calls(fenced(plan_ok), offered()) is not None
    assert codex.recover_tool_calls(fenced(plan_bad), offered()) is None
    assert codex.recover_tool_calls(fenced(CALL), {}) is None  # no tools offered, nothing recovered


# -- recovery in a session (Chat wire) ---------------------------------------------------------

def chat_session(server, codex_home, cwd, **extra):
    cfg = mock_config(server, codex_home, cwd, wire="chat", **extra)
    return codex.Session(cfg).start()


def test_chat_session_runs_a_call_written_as_fenced_json(server, codex_home, tmp_path):
    server.enqueue(Turn().text("Creating it.\n" + fenced(CALL)), Turn().text("Done."))
    session = chat_session(server, codex_home, tmp_path)
    session.submit(user_input("create out.txt"))
    events = drain_until(session, "task_complete", timeout=30)
    session.shutdown()
    assert (tmp_path / "out.txt").read_text() == "hi\n"
    recovered = [e for e in events if e["type"] == "tool_call_recovered"]
    assert [(e["name"], e["format"]) for e in recovered] == [(SHELL_CMD, "fenced_json")]
    begin = next(e for e in events if e["type"] == "exec_command_begin")
    assert begin["call_id"] == recovered[0]["call_id"]
    assert begin["command"] == [codex.script_shell(), "-c", "echo hi > out.txt"]
    # the next request carries the call as a real tool call, the prose as content, and its result
    messages = server.model_requests()[1].body["messages"]
    assistant = next(m for m in messages if m["role"] == "assistant")
    assert assistant["content"] == "Creating it."
    assert assistant["tool_calls"][0]["function"]["name"] == SHELL_CMD
    tool = next(m for m in messages if m["role"] == "tool")
    assert tool["tool_call_id"] == recovered[0]["call_id"]
    # the rollout says so too
    lines = [json.loads(l) for l in open(str(session.rollout_path))]
    assert any(l.get("type") == "event_msg" and l["payload"].get("type") == "tool_call_recovered" for l in lines)


def test_recovery_can_be_turned_off_per_provider(server, codex_home, tmp_path):
    server.enqueue(Turn().text(fenced(CALL)))
    session = chat_session(server, codex_home, tmp_path, **{"model_providers.mock.recover_tool_calls": False})
    session.submit(user_input("create out.txt"))
    events = drain_until(session, "task_complete", timeout=30)
    session.shutdown()
    assert not (tmp_path / "out.txt").exists()
    assert not [e for e in events if e["type"] in ("tool_call_recovered", "exec_command_begin")]
    assert events[-1]["last_agent_message"] == fenced(CALL)


def test_native_tool_calls_are_not_doubled(server, codex_home, tmp_path):
    """A response with real tool_calls keeps its text as text, even when it quotes a call."""
    server.enqueue(Turn().text(fenced(CALL)).function_call(SHELL_CMD, {"command": "echo native > n.txt"}),
                   Turn().text("ok"))
    session = chat_session(server, codex_home, tmp_path)
    session.submit(user_input("go"))
    events = drain_until(session, "task_complete", timeout=30)
    session.shutdown()
    assert (tmp_path / "n.txt").exists() and not (tmp_path / "out.txt").exists()
    assert not [e for e in events if e["type"] == "tool_call_recovered"]


def test_exec_json_marks_the_recovered_call(server, codex_home, tmp_path):
    server.enqueue(Turn().text("<tool_call>\n%s\n</tool_call>" % json.dumps(CALL)), Turn().text("Done."))
    env = dict(os.environ, CODEX_HOME=str(codex_home), **{MOCK_KEY_ENV: "k"})
    proc = subprocess.run(
        [sys.executable, str(REPO / "codex.py"), "exec", "--json", "--skip-git-repo-check", "-s", "workspace-write",
         "-C", str(tmp_path)] + mock_cli_args(server, "chat") + ["create out.txt"],
        capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    items = [json.loads(l)["item"] for l in proc.stdout.splitlines() if json.loads(l)["type"] == "item.completed"]
    command = next(i for i in items if i["type"] == "command_execution")
    assert command["recovered_from"] == "tool_call_tags"
    assert command["exit_code"] == 0
    assert (tmp_path / "out.txt").read_text() == "hi\n"


def test_responses_wire_never_recovers(server, codex_home, tmp_path):
    server.enqueue(Turn().text(fenced({"name": "shell", "arguments": {"command": ["touch", "x"]}})))
    cfg = mock_config(server, codex_home, tmp_path, wire="responses")
    session = codex.Session(cfg).start()
    session.submit(user_input("go"))
    events = drain_until(session, "task_complete", timeout=30)
    session.shutdown()
    assert not (tmp_path / "x").exists()
    assert not [e for e in events if e["type"] == "tool_call_recovered"]


# -- the shell tools ---------------------------------------------------------------------------

def tool_names(request):
    body = request.body
    if "messages" in body:
        return [t["function"]["name"] for t in body.get("tools") or ()]
    return [t["name"] for t in body.get("tools") or ()]


def test_chat_providers_get_the_string_shell_tool_and_responses_the_argv_one(server, codex_home, tmp_path):
    for wire, extra, want in (("chat", {}, SHELL_CMD), ("responses", {}, "shell"),
                              ("chat", {"model_providers.mock.shell_tool": "shell"}, "shell"),
                              ("responses", {"model_providers.mock.shell_tool": SHELL_CMD}, SHELL_CMD)):
        server.clear()
        server.enqueue(Turn().text("hi"))
        session = codex.Session(mock_config(server, codex_home, tmp_path, wire=wire, **extra)).start()
        session.submit(user_input("hi"))
        drain_until(session, "task_complete", timeout=30)
        session.shutdown()
        names = tool_names(server.model_requests()[0])
        assert names[0] == want and ("shell" if want == SHELL_CMD else SHELL_CMD) not in names, (wire, extra)
        instructions = (server.model_requests()[0].body.get("instructions")
                        or server.model_requests()[0].body["messages"][0]["content"])
        assert "`%s`" % want in instructions


def test_bad_shell_tool_setting_is_a_named_error(run_codex):
    proc = run_codex("exec", "-c", 'model_providers.x.base_url="http://127.0.0.1:9/v1"',
                     "-c", 'model_providers.x.shell_tool="sh"', "-c", 'model_provider="x"', "hi")
    assert proc.returncode != 0
    assert "model_providers.x.shell_tool" in proc.stderr and "shell_command" in proc.stderr
    assert "Traceback" not in proc.stderr


def run_calls(server, codex_home, cwd, calls, wire="responses", **extra):
    """Script `calls` (name, args) one per turn then "done"; return the session's events."""
    server.enqueue(*[Turn().function_call(name, args, call_id="c%d" % i) for i, (name, args) in enumerate(calls)])
    server.enqueue(Turn().text("done"))
    session = codex.Session(mock_config(server, codex_home, cwd, wire=wire, **extra)).start()
    session.submit(user_input("go"))
    events = drain_until(session, "task_complete", timeout=60)
    session.shutdown()
    return events


def test_argv_with_shell_operators_runs_as_the_script_it_is(server, codex_home, tmp_path):
    events = run_calls(server, codex_home, tmp_path, [("shell", {"command": ["echo", "hello world", ">", "hello.txt"]})])
    assert (tmp_path / "hello.txt").read_text() == "hello world\n"
    begin = next(e for e in events if e["type"] == "exec_command_begin")
    assert begin["command"] == [codex.script_shell(), "-c", "echo 'hello world' > hello.txt"]


def test_argv_without_operators_is_left_alone():
    assert codex.shell_argv_script(["grep", "a|b", "file"]) is None
    assert codex.shell_argv_script(["find", ".", "-name", "x", "-exec", "rm", "{}", ";"]) is None
    assert codex.shell_argv_script(["test", "a", "<", "b"]) is None
    assert codex.shell_argv_script(["ls", "*.py", "|", "wc", "-l"]) == "ls *.py | wc -l"


def test_approval_sees_the_script_that_runs(server, codex_home, tmp_path):
    server.enqueue(Turn().function_call("shell", {"command": ["echo", "x", ">", "f.txt"]}, call_id="c1"),
                   Turn().text("done"))
    session = codex.Session(mock_config(server, codex_home, tmp_path, approval="untrusted", sandbox="workspace-write")).start()
    session.submit(user_input("go"))
    events = drain_until(session, "exec_approval_request", timeout=30)
    assert events[-1]["command"] == [codex.script_shell(), "-c", "echo x > f.txt"]
    session.submit({"type": "exec_approval", "id": "0", "decision": "denied"})
    drain_until(session, "task_complete", timeout=30)
    session.shutdown()
    assert not (tmp_path / "f.txt").exists()


def write_profile(home):
    """A login profile that writes outside the sandbox and prints, as pyenv's rehash does."""
    (home / ".bash_profile").write_text("echo PROFILE-RAN; touch %s/profile-wrote\n" % home)


def test_login_scripts_run_without_the_login_profile(server, codex_home, tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    write_profile(home)
    monkeypatch.setenv("HOME", str(home))
    work = tmp_path / "w"
    work.mkdir()
    events = run_calls(server, codex_home, work, [("shell", {"command": ["bash", "-lc", "echo own-output"]})],
                       sandbox="workspace-write")
    end = next(e for e in events if e["type"] == "exec_command_end")
    assert end["aggregated_output"] == "own-output\n"
    begin = next(e for e in events if e["type"] == "exec_command_begin")
    assert begin["command"] == ["bash", "-c", "echo own-output"]
    assert not (home / "profile-wrote").exists()


def test_shell_login_true_keeps_the_login_shell(server, codex_home, tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    write_profile(home)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("SHELL", "/bin/bash")
    events = run_calls(server, codex_home, tmp_path, [(SHELL_CMD, {"command": "echo own-output"})],
                       wire="chat", shell_login=True)
    begin = next(e for e in events if e["type"] == "exec_command_begin")
    assert begin["command"] == ["bash", "-lc", "echo own-output"]
    end = next(e for e in events if e["type"] == "exec_command_end")
    assert "PROFILE-RAN" in end["aggregated_output"]


def test_shell_command_runs_a_script_with_workdir_and_timeout(server, codex_home, tmp_path):
    (tmp_path / "sub").mkdir()
    events = run_calls(server, codex_home, tmp_path, [
        (SHELL_CMD, {"command": "printf 'a\\nb\\n' | wc -l > n.txt && cat n.txt", "workdir": "sub"}),
        (SHELL_CMD, {"command": "sleep 5", "timeout_ms": 300}),
        (SHELL_CMD, {"command": ""}),
    ], wire="chat")
    assert (tmp_path / "sub" / "n.txt").read_text().strip() == "2"
    ends = [e for e in events if e["type"] == "exec_command_end"]
    assert ends[0]["exit_code"] == 0 and ends[1]["exit_code"] != 0
    outputs = [m for m in events if m["type"] == "exec_command_end"]
    assert len(outputs) == 2  # the empty command never ran


def test_shell_command_timeout_zero_means_the_default(server, codex_home, tmp_path):
    """Qwen2.5-Coder-1.5B sends "timeout_ms": 0; rejecting it made the model repeat the call."""
    events = run_calls(server, codex_home, tmp_path, [(SHELL_CMD, {"command": "echo hi > t.txt", "timeout_ms": 0}),
                                                      (SHELL_CMD, {"command": "true", "timeout_ms": -5})], wire="chat")
    assert (tmp_path / "t.txt").read_text() == "hi\n"
    outputs = [m["content"] for m in server.model_requests()[2].body["messages"] if m["role"] == "tool"]
    assert "`timeout_ms` must be a positive number" in outputs[-1]


def test_apply_patch_through_shell_command_heredoc(server, codex_home, tmp_path):
    patch = "*** Begin Patch\n*** Add File: a.txt\n+alpha\n*** End Patch"
    events = run_calls(server, codex_home, tmp_path, [(SHELL_CMD, {"command": "apply_patch <<'EOF'\n%s\nEOF" % patch})],
                       wire="chat")
    assert (tmp_path / "a.txt").read_text() == "alpha\n"
    assert any(e["type"] == "patch_apply_end" and e["success"] for e in events)


def tool_outputs(server, index=-1):
    """The tool messages of the Chat request `index` (their content, in order)."""
    return [m["content"] for m in server.model_requests()[index].body["messages"] if m["role"] == "tool"]


def test_shell_command_output_is_plain_text_with_the_exit_code_first(server, codex_home, tmp_path):
    """A small model reads a traceback better as text than inside an escaped JSON string."""
    run_calls(server, codex_home, tmp_path, [(SHELL_CMD, {"command": "printf 'line one\\nline two\\n'; exit 3"}),
                                             (SHELL_CMD, {"command": "echo fine"})], wire="chat")
    failed, fine = tool_outputs(server)
    assert failed.startswith("Exit code: 3\nWall time: ") and "\nOutput:\nline one\nline two\n" in failed
    assert "failed with exit code 3" in failed and "not done" in failed  # says what a failed check means
    assert fine.startswith("Exit code: 0\n") and fine.endswith("Output:\nfine") and "failed" not in fine
    # the argv `shell` tool keeps upstream's JSON envelope
    server.clear()
    run_calls(server, codex_home, tmp_path, [("shell", {"command": ["echo", "x"]})])
    out = [i["output"] for i in server.model_requests()[-1].body["input"] if i["type"] == "function_call_output"]
    assert json.loads(out[0])["metadata"]["exit_code"] == 0


def test_calls_chained_as_text_run_one_at_a_time(server, codex_home, tmp_path):
    """With no stop token after a call, a small model writes call after call, each guessing the
    result of the one before; codex stops reading after the first and runs only that one."""
    chain = "\n".join(json.dumps({"name": SHELL_CMD, "arguments": {"command": "echo %d >> log.txt" % i}})
                      for i in range(3)) + "\n"
    server.enqueue(Turn().text(chain), Turn().text("```json\n%s\n```\n```json\n%s\n```" % (
        json.dumps({"name": SHELL_CMD, "arguments": {"command": "echo fenced >> log.txt"}}),
        json.dumps({"name": SHELL_CMD, "arguments": {"command": "echo never >> log.txt"}}))), Turn().text("done"))
    session = chat_session(server, codex_home, tmp_path)
    session.submit(user_input("go"))
    events = drain_until(session, "task_complete", timeout=30)
    session.shutdown()
    assert (tmp_path / "log.txt").read_text() == "0\nfenced\n"
    assert [e["format"] for e in events if e["type"] == "tool_call_recovered"] == ["bare_json", "fenced_json"]
    assistant = [m for m in server.model_requests()[1].body["messages"] if m["role"] == "assistant"]
    assert len(assistant[0]["tool_calls"]) == 1 and not assistant[0].get("content")
    # steps explained in prose between the calls: the first call runs, the prose before it stays
    server.clear()
    step = lambda cmd: "```json\n%s\n```" % json.dumps({"name": SHELL_CMD, "arguments": {"command": cmd}})
    server.enqueue(Turn().text("I'll follow these steps:\n\n" + step("echo step1 >> log.txt") + "\n\nThen count.\n\n"
                               + step("echo step2 >> log.txt") + "\n"), Turn().text("done"))
    session = chat_session(server, codex_home, tmp_path)
    session.submit(user_input("go"))
    drain_until(session, "task_complete", timeout=30)
    session.shutdown()
    assert (tmp_path / "log.txt").read_text() == "0\nfenced\nstep1\n"
    assert codex.chained_text_call_end("For example:\n" + step("ls") + "\nor\n" + step("ls -l"), offered()) is None


def test_a_turn_that_ends_on_a_failed_command_gets_a_follow_up(server, codex_home, tmp_path):
    """Small models often say "fixed it" (or "I will now ...") right after a failing check."""
    server.enqueue(Turn().function_call(SHELL_CMD, {"command": "exit 3"}, call_id="a"), Turn().text("Fixed it."),
                   Turn().function_call(SHELL_CMD, {"command": "echo ok > fixed.txt"}, call_id="b"), Turn().text("Done."))
    session = chat_session(server, codex_home, tmp_path, compact_prompt=True)
    session.submit(user_input("fix it"))
    events = drain_until(session, "task_complete", timeout=30)
    session.shutdown()
    assert (tmp_path / "fixed.txt").exists() and events[-1]["last_agent_message"] == "Done."
    third = server.model_requests()[2].body["messages"]
    assert third[-1]["role"] == "user" and "failed (exit code 3)" in third[-1]["content"]
    assert third[-2]["role"] == "tool" and "Fixed it." not in json.dumps(third)  # its wrong answer is not read back
    assert any(e["type"] == "background_event" and "follow_up_nudges" in e["message"] for e in events)
    # a turn that ends after a command that worked, or with the nudges off, ends as it is
    for extra, script in (({"compact_prompt": True}, "true"), ({"compact_prompt": True, "follow_up_nudges": 0}, "exit 3"),
                          ({"compact_prompt": False}, "exit 3")):
        server.clear()
        server.enqueue(Turn().function_call(SHELL_CMD, {"command": script}, call_id="c"), Turn().text("Over."))
        session = chat_session(server, codex_home, tmp_path, **extra)
        session.submit(user_input("go"))
        drain_until(session, "task_complete", timeout=30)
        session.shutdown()
        assert len(server.model_requests()) == 2, extra


def test_a_failed_command_that_names_a_file_is_answered_with_the_next_step(server, codex_home, tmp_path):
    """Told "look at the code it runs" after a traceback, Qwen2.5-Coder-1.5B explained the fix in
    prose; told the file (cat stats.py), and once it was shown, to fix its wrong line with
    edit_file, it did (tests/test_local_model_e2e.py).  The nudge after an empty answer says the same."""
    (tmp_path / "stats.py").write_text("def average(numbers):\n    return sum(numbers) / len(number)\n")
    (tmp_path / "test_stats.py").write_text("from stats import average\n\nassert average([1, 2, 3]) == 2\n")
    test = (SHELL_CMD, {"command": "python3 test_stats.py"})
    server.enqueue(Turn().function_call(*test, call_id="a"),
                   Turn().function_call(SHELL_CMD, {"command": "cat stats.py"}, call_id="b"),
                   Turn().function_call(*test, call_id="c"), Turn().text(""),
                   Turn().function_call("edit_file", {"path": "stats.py", "old_text": "len(number)",
                                                      "new_text": "len(numbers)"}, call_id="d"),
                   Turn().function_call(*test, call_id="e"), Turn().text("Done."))
    session = chat_session(server, codex_home, tmp_path, compact_prompt=True)
    session.submit(user_input("fix it"))
    events = drain_until(session, "task_complete", timeout=60)
    session.shutdown()
    assert events[-1]["last_agent_message"] == "Done."
    outputs = tool_outputs(server)
    assert outputs[0].startswith("Exit code: 1\n") and "NameError" in outputs[0]
    assert outputs[0].endswith("\n\nThe task is not done. Next: cat stats.py")  # not the general advice
    assert outputs[2].endswith("Next: fix the wrong line of stats.py with edit_file (old_text: the line as it is now, "
                               "new_text: the corrected line).")
    assert "same output as the last time" not in outputs[2]  # the step says what to do instead
    assert outputs[-1].startswith("Exit code: 0\n") and "task is not done" not in outputs[-1]
    nudge = server.model_requests()[4].body["messages"][-1]
    assert nudge["role"] == "user" and nudge["content"] == ("Your last command failed (exit code 1). The task is not "
                                                            "done. Next: fix the wrong line of stats.py with edit_file "
                                                            "(old_text: the line as it is now, new_text: the corrected line).")


def test_an_assertion_failing_in_a_test_points_at_the_code_it_tests(server, codex_home, tmp_path):
    """fix-bug: the traceback names only test_calc.py; the step is calc.py, which it imports
    (the test itself is never to be "fixed")."""
    (tmp_path / "calc.py").write_text("def add(a, b):\n    return a - b\n")
    (tmp_path / "test_calc.py").write_text("import os\nfrom calc import add\n\nassert add(2, 3) == 5\n")
    test = (SHELL_CMD, {"command": "python3 test_calc.py"})
    run_calls(server, codex_home, tmp_path, [test, (SHELL_CMD, {"command": "cat calc.py"}), test,
                                             (SHELL_CMD, {"command": "mv calc.py lib.py"}), test],
              wire="chat", compact_prompt=True)
    outputs = tool_outputs(server)
    assert "AssertionError" in outputs[0] and outputs[0].endswith("Next: cat calc.py")
    assert outputs[2].endswith("Next: fix the wrong line of calc.py with edit_file (old_text: the line as it is now, "
                               "new_text: the corrected line).")
    assert "ModuleNotFoundError" in outputs[4] and outputs[4].endswith("Next: cat test_calc.py")
    assert codex._imported_modules(tmp_path, "test_calc.py") == []  # os is no workspace file, calc.py is gone


def test_the_imports_of_a_planted_fifo_or_a_link_out_of_the_workspace_are_not_read(tmp_path):
    """_imported_modules reads a model-named file in codex's own process: a FIFO must not block
    it, a link leaving the workspace must not be followed."""
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    (tmp_path / "outside.py").write_text("import calc\n")
    (ws / "test_out.py").symlink_to(tmp_path / "outside.py")
    os.mkfifo(str(ws / "test_fifo.py"))
    (ws / "test_in.py").write_text("import calc\n")
    started = time.monotonic()
    assert codex._imported_modules(ws, "test_fifo.py") == []
    assert time.monotonic() - started < 5
    assert codex._imported_modules(ws, "test_out.py") == []
    assert codex._imported_modules(ws, "test_in.py") == ["calc.py"]


def test_failure_location_picks_the_innermost_workspace_file(tmp_path):
    (tmp_path / "pkg").mkdir()
    for name in ("app.py", "test_app.py", "pkg/core.py", "main.c"):
        (tmp_path / name).write_text("x\n")
    frame = '  File "%s", line %d, in f\n    x\n'
    tb = "Traceback (most recent call last):\n" + frame % (tmp_path / "test_app.py", 3) + frame % ("pkg/core.py", 7) \
        + frame % ("/usr/lib/python3/json/__init__.py", 1) + "ValueError: x\n"
    assert codex.failure_location(tb, tmp_path) == os.path.join("pkg", "core.py")  # outside the workspace: skipped
    only_test = "Traceback (most recent call last):\n" + frame % (tmp_path / "test_app.py", 3) + "AssertionError\n"
    assert codex.failure_location(only_test, tmp_path) == "test_app.py"
    with_code = only_test.replace("AssertionError", frame % ("app.py", 2) + "TypeError")
    assert codex.failure_location(with_code, tmp_path) == "app.py"
    assert codex.failure_location("main.c:12:5: error: expected ';'\n", tmp_path) == "main.c"
    assert codex.failure_location("gone.py:1: error\nno file here\n", tmp_path) is None
    assert codex.failure_location('  File "../outside.py", line 1\n', tmp_path / "pkg") is None


def test_a_command_repeated_with_the_same_output_says_so(server, codex_home, tmp_path):
    run_calls(server, codex_home, tmp_path, [(SHELL_CMD, {"command": "echo same"}), (SHELL_CMD, {"command": "echo other"}),
                                             (SHELL_CMD, {"command": "echo same"}), (SHELL_CMD, {"command": "date +%N"}),
                                             (SHELL_CMD, {"command": "date +%N"})], wire="chat")
    outputs = tool_outputs(server)
    assert [("same output as the last time" in o) for o in outputs] == [False, False, True, False, False]


def test_a_change_claimed_after_only_reading_gets_a_follow_up(server, codex_home, tmp_path):
    (tmp_path / "expected.txt").write_text("Good morning\n")
    server.enqueue(Turn().function_call(SHELL_CMD, {"command": "cat expected.txt"}, call_id="a"),
                   Turn().text("I changed greet.py to print it."),
                   Turn().function_call(SHELL_CMD, {"command": "echo \"print('Good morning')\" > greet.py"}, call_id="b"),
                   Turn().text("I changed greet.py."))
    session = chat_session(server, codex_home, tmp_path, compact_prompt=True)
    session.submit(user_input("make greet.py print expected.txt"))
    drain_until(session, "task_complete", timeout=30)
    session.shutdown()
    assert (tmp_path / "greet.py").exists() and len(server.model_requests()) == 4  # no follow-up after a real write
    assert "only read files" in server.model_requests()[2].body["messages"][-1]["content"]
    # an answer after reading that claims nothing is an answer
    server.clear()
    server.enqueue(Turn().function_call(SHELL_CMD, {"command": "wc -l expected.txt"}, call_id="c"),
                   Turn().text("It has 1 line."))
    session = chat_session(server, codex_home, tmp_path, compact_prompt=True)
    session.submit(user_input("how many lines?"))
    drain_until(session, "task_complete", timeout=30)
    session.shutdown()
    assert len(server.model_requests()) == 2


def test_a_turn_that_ends_on_a_failed_file_tool_gets_a_follow_up(server, codex_home, tmp_path):
    (tmp_path / "greet.py").write_text("print('hi')\n")
    server.enqueue(Turn().function_call("write_file", {"path": "greet.py", "content": "x"}, call_id="a"),
                   Turn().text("You need to look at it first."), Turn().text("Done."))
    session = chat_session(server, codex_home, tmp_path, compact_prompt=True)
    session.submit(user_input("change greet.py"))
    drain_until(session, "task_complete", timeout=30)
    session.shutdown()
    third = server.model_requests()[2].body["messages"]
    assert "tool call failed" in third[-1]["content"] and "error message says" in third[-1]["content"]


def test_an_empty_answer_and_a_no_op_edit_get_a_follow_up(server, codex_home, tmp_path):
    """Qwen2.5-Coder-1.5B made an edit that changed nothing and then answered with nothing:
    `codex exec` ended with no message and no change to show."""
    (tmp_path / "stats.py").write_text("x = 1\n")
    server.enqueue(Turn().function_call(SHELL_CMD, {"command": "true"}, call_id="a"), Turn().text(""),
                   Turn().function_call("edit_file", {"path": "stats.py", "old_text": "x", "new_text": "x"}, call_id="b"),
                   Turn().text(""), Turn().text("Done."))
    session = chat_session(server, codex_home, tmp_path, compact_prompt=True, follow_up_nudges=2)
    session.submit(user_input("go"))
    events = drain_until(session, "task_complete", timeout=30)
    session.shutdown()
    assert events[-1]["last_agent_message"] == "Done." and len(server.model_requests()) == 5
    requests = server.model_requests()
    assert requests[2].body["messages"][-1]["content"] == codex.EMPTY_ANSWER_NUDGE
    assert "tool call failed" in requests[4].body["messages"][-1]["content"]  # "no change" is no fix
    assert [e["message"] for e in events if e["type"] == "background_event" and "follow_up" in e["message"]][0] \
        .startswith("the model gave an empty answer")


def test_the_follow_ups_are_bounded(server, codex_home, tmp_path):
    turns = []
    for i in range(4):
        turns += [Turn().function_call(SHELL_CMD, {"command": "exit 1"}, call_id="c%d" % i), Turn().text("Fixed.")]
    server.enqueue(*turns)
    session = chat_session(server, codex_home, tmp_path, compact_prompt=True)
    session.submit(user_input("go"))
    drain_until(session, "task_complete", timeout=30)
    session.shutdown()
    assert len(server.model_requests()) == 2 * (codex.FOLLOW_UP_NUDGES + 1)


# -- write_file and edit_file (small models) ---------------------------------------------------

FILE_TOOLS = ("write_file", "edit_file")


def test_file_tools_come_with_the_compact_prompt(server, codex_home, tmp_path):
    for extra, offered_tools in (({"compact_prompt": True}, True), ({"compact_prompt": False}, False),
                                 ({"compact_prompt": True, "file_tools": False}, False),
                                 ({"compact_prompt": False, "file_tools": True}, True)):
        server.clear()
        server.enqueue(Turn().text("hi"))
        session = codex.Session(mock_config(server, codex_home, tmp_path, wire="chat", **extra)).start()
        session.submit(user_input("hi"))
        drain_until(session, "task_complete", timeout=30)
        session.shutdown()
        request = server.model_requests()[0]
        names = tool_names(request)
        assert all((n in names) == offered_tools for n in FILE_TOOLS), (extra, names)
        system = request.body["messages"][0]["content"]
        if extra["compact_prompt"]:  # the compact prompt says how to change a file with what is offered
            assert ("edit_file" in system) == offered_tools and ("here-document" in system) != offered_tools


def test_write_file_and_edit_file_change_files_as_patches(server, codex_home, tmp_path):
    (tmp_path / "calc.py").write_text("def add(a, b):\n    return a - b\n\n\ndef mul(a, b):\n    return a * b\n")
    events = run_calls(server, codex_home, tmp_path, [
        ("write_file", {"path": "notes/hello.txt", "content": "hello\nworld"}),
        ("edit_file", {"path": "calc.py", "old_text": "return a - b", "new_text": "return a + b"}),
        ("write_file", {"path": "notes/hello.txt", "content": "hello again\n"}),  # never looked at: refused
        (SHELL_CMD, {"command": "cat notes/hello.txt"}),
        ("write_file", {"path": "notes/hello.txt", "content": "hello again\n"}),
        ("edit_file", {"path": "calc.py", "old_text": "return a / b", "new_text": "x"}),
        ("edit_file", {"path": "calc.py", "old_text": "    return a", "new_text": "x"}),
        ("edit_file", {"path": "nope.py", "old_text": "a", "new_text": "b"}),
        ("write_file", {"path": "notes/hello.txt", "content": "hello again\n"}),
        ("write_file", {"path": "x.txt"}),
    ], wire="chat", compact_prompt=True, sandbox="workspace-write")
    assert (tmp_path / "calc.py").read_text() == "def add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n    return a * b\n"
    assert (tmp_path / "notes" / "hello.txt").read_text() == "hello again\n"
    ends = [e for e in events if e["type"] == "patch_apply_end"]
    assert len(ends) == 3 and all(e["success"] for e in ends)
    begins = [e for e in events if e["type"] == "patch_apply_begin"]
    assert list(begins[0]["changes"].values())[0] == {"add": {"content": "hello\nworld\n"}}
    diff = list(begins[1]["changes"].values())[0]["update"]["unified_diff"]
    assert "-    return a - b\n+    return a + b\n" in diff and "mul" not in diff  # the real change, not the file
    outputs = tool_outputs(server)
    # plain text as shell_command's (no JSON envelope): the summary, or "error: ..."
    assert outputs[0].startswith("Success. Updated the following files:\nA ") and outputs[0].endswith("hello.txt")
    assert outputs[1].startswith("Success. Updated the following files:\nM ") and "metadata" not in outputs[1]
    assert "already exists and its current content has not been shown" in outputs[2] and "cat notes/hello.txt" in outputs[2]
    assert "not found in calc.py" in outputs[5] and "cat calc.py" in outputs[5]
    assert "occurs 2 times" in outputs[6] and "surrounding lines" in outputs[6]
    assert "nope.py does not exist" in outputs[7] and "write_file" in outputs[7]
    assert outputs[8].startswith("no change")
    assert "`content` must be a string" in outputs[9]
    assert not (tmp_path / "x.txt").exists()


def test_edit_file_takes_a_name_that_occurs_once_as_a_whole_word(server, codex_home, tmp_path):
    """Qwen2.5-Coder-1.5B fixed `len(number)` with old_text "number", which "numbers" holds four times."""
    (tmp_path / "stats.py").write_text("def average(numbers):\n    return sum(numbers) / len(number)\n")
    run_calls(server, codex_home, tmp_path, [("edit_file", {"path": "stats.py", "old_text": "number", "new_text": "numbers"}),
                                             ("edit_file", {"path": "stats.py", "old_text": "numbers", "new_text": "x"})],
              wire="chat", compact_prompt=True, sandbox="workspace-write")
    assert (tmp_path / "stats.py").read_text() == "def average(numbers):\n    return sum(numbers) / len(numbers)\n"
    assert "occurs 3 times" in tool_outputs(server)[1]


def test_file_tools_obey_the_sandbox_and_approval(server, codex_home, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    (outside / "keep.txt").write_text("keep\n")
    run_calls(server, codex_home, work, [
        ("write_file", {"path": str(outside / "new.txt"), "content": "x"}),
        ("edit_file", {"path": "../outside/keep.txt", "old_text": "keep", "new_text": "gone"}),
    ], wire="chat", compact_prompt=True, sandbox="workspace-write", approval="never",
       **{"sandbox_workspace_write.exclude_slash_tmp": True, "sandbox_workspace_write.exclude_tmpdir_env_var": True})
    assert not (outside / "new.txt").exists() and (outside / "keep.txt").read_text() == "keep\n"
    assert all(o.startswith("patch rejected") for o in tool_outputs(server))


# -- runaway turns -----------------------------------------------------------------------------

@pytest.mark.parametrize("wire", ["responses", "chat"])
def test_the_same_call_repeated_stops_the_turn(server, codex_home, tmp_path, wire):
    plan = {"plan": [{"step": "think", "status": "in_progress"}]}
    events = run_calls(server, codex_home, tmp_path, [("update_plan", plan)] * 6, wire=wire)
    errors = [e["message"] for e in events if e["type"] == "error"]
    assert len(errors) == 1 and "same arguments 4 times in a row" in errors[0] and "max_repeated_tool_calls" in errors[0]
    assert len([e for e in events if e["type"] == "plan_update"]) == 3  # the 4th was not run
    assert len(server.model_requests()) == 4
    assert events[-1]["type"] == "task_complete"


def test_two_calls_taking_turns_stop_the_turn(server, codex_home, tmp_path):
    """Qwen2.5-Coder-1.5B ran the failing test, looked at the test, ran it, looked at it, ..."""
    calls = [(SHELL_CMD, {"command": "echo run"}), (SHELL_CMD, {"command": "echo look"})] * 5
    events = run_calls(server, codex_home, tmp_path, calls, wire="chat")
    errors = [e["message"] for e in events if e["type"] == "error"]
    assert len(errors) == 1 and "same two calls" in errors[0] and "4 times in a row" in errors[0], errors
    assert len([e for e in events if e["type"] == "exec_command_end"]) == 7  # the 8th was not run
    # a test run between changing edits is no loop
    server.clear()
    events = run_calls(server, codex_home, tmp_path, [c for i in range(5) for c in
                                                      ((SHELL_CMD, {"command": "echo run"}), (SHELL_CMD, {"command": "echo edit %d" % i}))],
                       wire="chat")
    assert not [e for e in events if e["type"] == "error"]


def test_too_many_calls_in_a_turn_stop_it_and_the_history_stays_whole(server, codex_home, tmp_path):
    calls = [("shell", {"command": ["echo", str(i)]}) for i in range(3)]
    server.enqueue(*[Turn().function_call(n, a, call_id="c%d" % i) for i, (n, a) in enumerate(calls)])
    session = codex.Session(mock_config(server, codex_home, tmp_path, max_tool_calls_per_turn=2)).start()
    session.submit(user_input("go"))
    events = drain_until(session, "task_complete", timeout=60)
    assert "more than 2 tool calls" in [e for e in events if e["type"] == "error"][0]["message"]
    assert len([e for e in events if e["type"] == "exec_command_end"]) == 2
    # every call in history has its output, so the next message is a valid request
    server.enqueue(Turn().text("ok"))
    session.submit(user_input("go on"))
    drain_until(session, "task_complete", timeout=30)
    session.shutdown()
    last = server.model_requests()[-1].body["input"]
    calls_ids = [i["call_id"] for i in last if i["type"] == "function_call"]
    outputs = {i["call_id"]: i["output"] for i in last if i["type"] == "function_call_output"}
    assert calls_ids == ["c0", "c1", "c2"] and set(outputs) == set(calls_ids)
    assert outputs["c2"].startswith("not run: the turn was stopped")


def test_loop_handler_can_let_the_turn_go_on(server, codex_home, tmp_path):
    plan = {"plan": [{"step": "x", "status": "pending"}]}
    server.enqueue(*[Turn().function_call("update_plan", plan, call_id="c%d" % i) for i in range(3)])
    server.enqueue(Turn().text("done"))
    session = codex.Session(mock_config(server, codex_home, tmp_path, max_repeated_tool_calls=2)).start()
    asked = []
    session.loop_handler = lambda message: asked.append(message) or True
    session.submit(user_input("go"))
    events = drain_until(session, "task_complete", timeout=30)
    session.shutdown()
    assert len(asked) == 1 and "2 times in a row" in asked[0]
    assert not [e for e in events if e["type"] == "error"] and len([e for e in events if e["type"] == "plan_update"]) == 3


def test_limits_can_be_turned_off_and_must_not_be_negative(server, codex_home, tmp_path, run_codex):
    plan = {"plan": [{"step": "x", "status": "pending"}]}
    events = run_calls(server, codex_home, tmp_path, [("update_plan", plan)] * 6, max_repeated_tool_calls=0)
    assert not [e for e in events if e["type"] == "error"]
    proc = run_codex("exec", "-c", "max_tool_calls_per_turn=-1", "hi")
    assert proc.returncode != 0 and "max_tool_calls_per_turn" in proc.stderr and "Traceback" not in proc.stderr


# -- the served context window and the compact prompt ------------------------------------------

def test_window_from_llama_cpp_props_makes_the_prompt_compact_and_stable(server, codex_home, tmp_path):
    server.routes[("GET", "/props")] = {"default_generation_settings": {"n_ctx": 4096}, "total_slots": 1}
    server.enqueue(Turn().function_call(SHELL_CMD, {"command": "echo 1"}, call_id="a"), Turn().text("done"))
    session = codex.Session(mock_config(server, codex_home, tmp_path, wire="chat", model="qwen-local")).start()
    session.submit(user_input("go"))
    events = drain_until(session, "task_complete", timeout=30)
    session.shutdown()
    assert session.context_window == 4096
    assert next(e for e in events if e["type"] == "task_started")["model_context_window"] == 4096
    first, second = [r.body for r in server.model_requests()]
    system = first["messages"][0]["content"]
    assert system.startswith("You are codex") and len(system) < 1500 and "`shell_command`" in system
    # no update_plan in compact mode; the file tools small models edit with
    assert [t["function"]["name"] for t in first["tools"]] == [SHELL_CMD, "write_file", "edit_file"]
    assert len(json.dumps(first["tools"])) < 1300
    # a stable prefix for the server's prompt cache: the second request extends the first
    assert second["tools"] == first["tools"]
    assert second["messages"][:len(first["messages"])] == first["messages"]


@pytest.mark.parametrize("routes,want", [
    ({("GET", "/v1/models"): {"data": [{"id": "m", "max_model_len": 16384}]}}, 16384),  # vLLM
    ({("GET", "/v1/models"): {"data": [{"id": "other", "meta": {"n_ctx": 8192}}]}}, 8192),  # llama.cpp, one model
    ({("GET", "/v1/models"): {"data": [{"id": "a", "context_length": 1000}, {"id": "b", "context_length": 2000}]}}, None),
])
def test_window_from_the_model_list(server, routes, want):
    server.routes.update(routes)
    provider = codex.ProviderInfo("p%d" % id(routes), base_url=server.url, wire_api="chat")
    assert codex.discover_context_window(provider, "m") == want


def test_window_from_ollama_api_show(server):
    provider = codex.ProviderInfo("ollama", base_url=server.url, wire_api="chat")
    server.routes[("POST", "/api/show")] = {"parameters": "num_ctx                        8192\nstop \"<|im_end|>\"",
                                            "model_info": {"qwen2.context_length": 32768}}
    assert codex.discover_context_window(provider, "qwen2.5-coder:1.5b") == 8192
    codex._SERVED_WINDOWS.pop((server.url, "qwen2.5-coder:1.5b"), None)
    server.routes[("POST", "/api/show")] = {"parameters": "", "model_info": {"qwen2.context_length": 32768}}
    assert codex.discover_context_window(provider, "qwen2.5-coder:1.5b") == codex.OLLAMA_DEFAULT_NUM_CTX
    codex._SERVED_WINDOWS.pop((server.url, "qwen2.5-coder:1.5b"), None)


def test_window_from_lm_studio_rest_api(server):
    """LM Studio's OpenAI-compatible /v1/models has no window; /api/v0/models/MODEL has it once loaded."""
    provider = codex.ProviderInfo("lmstudio", base_url=server.url, wire_api="chat")
    server.routes[("GET", "/v1/models")] = {"object": "list", "data": [{"id": "qwen2.5-coder-1.5b-instruct", "object": "model"}]}
    server.routes[("GET", "/api/v0/models/qwen2.5-coder-1.5b-instruct")] = {
        "id": "qwen2.5-coder-1.5b-instruct", "object": "model", "type": "llm", "state": "loaded",
        "max_context_length": 32768, "loaded_context_length": 8192}
    assert codex.discover_context_window(provider, "qwen2.5-coder-1.5b-instruct") == 8192
    server.routes[("GET", "/api/v0/models/other")] = {"id": "other", "state": "not-loaded", "max_context_length": 32768}
    assert codex.discover_context_window(provider, "other") is None  # loads later with a window we cannot know


def test_configured_window_wins_and_compact_prompt_can_be_forced(server, codex_home, tmp_path):
    server.routes[("GET", "/props")] = {"default_generation_settings": {"n_ctx": 4096}}
    server.enqueue(Turn().text("hi"))
    session = codex.Session(mock_config(server, codex_home, tmp_path, wire="chat", model="cfg-window",
                                        model_context_window=100000, compact_prompt=False)).start()
    session.submit(user_input("hi"))
    drain_until(session, "task_complete", timeout=30)
    session.shutdown()
    assert session.context_window == 100000
    assert "# How you work" in server.model_requests()[0].body["messages"][0]["content"]
    assert not [r for r in server.requests if r.path == "/props"]  # nothing to ask


# -- --oss -------------------------------------------------------------------------------------

def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_oss_finds_a_server_on_its_usual_ports(server):
    port = int(server.url.rsplit(":", 1)[1].split("/")[0])
    dead = closed_port()
    base, ids = codex.find_local_server(ports=((dead, "Ollama"), (port, "llama.cpp")))
    assert base == "http://localhost:%d/v1" % port and ids == ["mock-model"]


def test_oss_says_which_ports_it_tried(codex_home, tmp_path):
    ports = codex.OSS_PORTS
    with pytest.raises(codex.ConfigError) as err:
        codex.find_local_server(ports=((closed_port(), "Ollama"), (closed_port(), "vLLM")))
    assert "tried ports" in str(err.value) and "Ollama: nothing listening" in str(err.value)
    assert [p for p, _ in ports] == [11434, 8080, 1234, 8000]


def test_exec_oss_uses_the_server_it_finds(server, codex_home, tmp_path):
    """`--oss` with CODEX_OSS_PORT unset probes the usual ports; with it set, uses that port."""
    port = int(server.url.rsplit(":", 1)[1].split("/")[0])
    server.enqueue(Turn().text("local hello"))
    env = dict(os.environ, CODEX_HOME=str(codex_home), CODEX_OSS_PORT=str(port))
    proc = subprocess.run([sys.executable, str(REPO / "codex.py"), "exec", "--oss", "--skip-git-repo-check",
                           "-C", str(tmp_path), "hi"], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "local hello" in proc.stdout
    assert server.model_requests()[0].body["model"] == codex.DEFAULT_OSS_MODEL


@pytest.mark.slow
@pytest.mark.parametrize("key,goes_on", [("y", True), ("n", False)])
def test_repl_asks_whether_to_go_on_at_a_limit(tmp_path, codex_home, server, key, goes_on):
    pytest.importorskip("pexpect")
    from support.repl_pty import ReplPty

    work = tmp_path / "work"
    (work / ".git").mkdir(parents=True)
    plan = {"plan": [{"step": "x", "status": "pending"}]}
    server.enqueue(*[Turn().function_call("update_plan", plan, call_id="c%d" % i) for i in range(3)])
    server.enqueue(Turn().text("finished after all"))
    argv = [str(REPO / "codex.py"), "-C", str(work), "-m", "gpt-5", "-s", "danger-full-access", "-a", "never",
            "-c", "max_repeated_tool_calls=2"] + mock_cli_args(server)
    r = ReplPty(sys.executable, argv, {"CODEX_HOME": str(codex_home), MOCK_KEY_ENV: "test-key"}, work,
                tmp_path / "pty.log")
    r.submit("plan it")
    r.expect("Let the model go on")
    r.expect("2 times in a row")
    r.send(key)
    if goes_on:
        r.expect("finished after all")
    else:
        r.expect("stopped the turn")
    r.expect_prompt()
    r.quit()
    assert len(server.model_requests()) == (4 if goes_on else 2)

