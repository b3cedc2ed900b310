"""§15a-§16 Agent: instructions, the Session protocol, the turn loop, tools, interrupts, notify."""
import json
import os
import stat
import sys
import time

import pytest

import codex
from support.agent_env import drain_until, mock_config, user_input
from support.model_server import ModelServer, Turn

pytestmark = pytest.mark.timeout(60)


def _types(msgs):
    return [m["type"] for m in msgs]


def _texts(item):
    return "".join(p.get("text", "") for p in item.get("content", []))


# -- instructions --

def test_project_docs_root_to_cwd_with_budget(tmp_path):
    root = tmp_path / "r"
    sub = root / "a" / "b"
    sub.mkdir(parents=True)
    (root / ".git").write_text("gitdir: elsewhere\n")  # a worktree-style .git file counts
    (root / "AGENTS.md").write_text("root rules")
    (root / "a" / "AGENTS.md").write_text("   \n")  # blank: skipped
    (sub / "AGENTS.md").write_text("deep rules")
    assert codex.read_project_docs(sub) == "root rules\n\ndeep rules"
    assert codex.read_project_docs(sub, max_bytes=12) == "root rules\n\nde"
    assert codex.read_project_docs(sub, max_bytes=0) is None
    (tmp_path / "AGENTS.md").write_text("above the git root")
    assert "above" not in codex.read_project_docs(sub)


def test_no_git_root_means_cwd_only(tmp_path):
    (tmp_path / "AGENTS.md").write_text("parent")
    d = tmp_path / "x"
    d.mkdir()
    assert codex.read_project_docs(d) is None
    (d / "AGENTS.md").write_text("here")
    assert codex.read_project_docs(d) == "here"


def test_session_does_its_io_in_start_not_in_init(server, codex_home, repo, tmp_path, monkeypatch):
    """Session(...) only builds state; start() reads AGENTS.md or the rollout, opens the rollout,
    starts MCP servers and emits session_configured."""
    (repo / "AGENTS.md").write_text("project rule")
    marker = tmp_path / "mcp-started"
    servers = {"m": {"command": sys.executable, "args": ["-c", "open(%r, 'w').close()" % str(marker)]}}
    cfg = mock_config(server, codex_home, repo, mcp_servers=servers)
    reads = []
    for name in ("build_instructions", "load_user_instructions", "load_rollout", "history_metadata"):
        real = getattr(codex, name)
        monkeypatch.setattr(codex, name, lambda *a, _real=real, _name=name, **k: reads.append(_name) or _real(*a, **k))
    session = codex.Session(cfg)
    assert reads == [] and session.rollout_path is None and session.mcp is None
    assert not (codex_home / codex.ROLLOUT_SUBDIR).exists()
    with pytest.raises(RuntimeError, match="start"):
        session.next_event(timeout=0)
    assert session.start() is session
    assert {"build_instructions", "load_user_instructions", "history_metadata"} <= set(reads)
    assert session.next_event(timeout=5)["msg"]["type"] == "session_configured"
    assert session.rollout_path is not None and session.rollout_path.exists()
    assert session.mcp is not None
    deadline = time.monotonic() + 20
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert marker.exists()
    session.shutdown()
    missing = codex.Session(cfg, resume_path=tmp_path / "no-such-rollout.jsonl")  # no error yet: nothing read
    with pytest.raises(codex.ConfigError, match="no-such-rollout"):
        missing.start()


def test_first_request_carries_instructions_and_context(server, codex_home, repo):
    (codex_home / "AGENTS.md").write_text("global rule\n")
    (repo / "AGENTS.md").write_text("project rule")
    server.enqueue(Turn().text("hi").usage(10, 2))
    cfg = mock_config(server, codex_home, repo, sandbox="workspace-write")
    session = codex.Session(cfg).start()
    session.submit(user_input("hello"))
    drain_until(session, "task_complete")
    session.shutdown()
    body = server.requests[0].body
    assert body["instructions"].startswith("You are codex")
    first, env, prompt = body["input"]
    assert _texts(first) == "<user_instructions>\n\nglobal rule\n\n--- project-doc ---\n\nproject rule\n\n</user_instructions>"
    env_text = _texts(env)
    assert env_text.startswith("<environment_context>\n  <cwd>%s</cwd>" % repo)
    assert "<approval_policy>never</approval_policy>" in env_text
    assert "<sandbox_mode>workspace-write</sandbox_mode>" in env_text
    assert "<network_access>restricted</network_access>" in env_text
    assert env_text.endswith("</environment_context>")
    assert prompt == {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hello"}]}
    assert body["store"] is False and body["stream"] is True and body["tool_choice"] == "auto"
    assert body["parallel_tool_calls"] is False
    assert body["reasoning"] == {"effort": "medium", "summary": "auto"}
    assert body["include"] == ["reasoning.encrypted_content"]
    assert body["prompt_cache_key"] == session.session_id
    names = [t["name"] for t in body["tools"]]
    assert names[0] == "shell" and "update_plan" in names
    headers = server.requests[0].headers
    assert headers["session_id"] == session.session_id
    assert headers["authorization"] == "Bearer test-key"
    assert headers["openai-beta"] == "responses=experimental"
    assert headers["originator"] == codex.ORIGINATOR


# -- the protocol and the loop --

def test_event_sequence_and_history(server, codex_home, repo):
    server.enqueue(
        Turn().reasoning("thinking hard").text("Let me look.").function_call(
            "shell", {"command": ["bash", "-lc", "echo out; echo err >&2; exit 3"]}, call_id="c1").usage(100, 20, 40, 5),
        Turn().text("Done: it exits 3.", chunks=["Done: ", "it exits 3."]).usage(200, 10, 150),
    )
    session = codex.Session(mock_config(server, codex_home, repo)).start()
    first = session.next_event(timeout=5)
    assert first["id"] == "" and first["msg"]["type"] == "session_configured"
    assert first["msg"]["session_id"] == session.session_id and first["msg"]["model"] == "gpt-5"
    sub = session.submit(user_input("run it"))
    assert sub == "0"
    msgs = drain_until(session, "task_complete")
    types = _types(msgs)
    assert types[0] == "task_started"
    for t in ("agent_reasoning_delta", "agent_reasoning", "agent_message_delta", "agent_message",
              "exec_command_begin", "exec_command_end", "token_count"):
        assert t in types, t
    assert types.index("exec_command_begin") < types.index("exec_command_end")
    end = next(m for m in msgs if m["type"] == "exec_command_end")
    assert end["exit_code"] == 3 and end["stdout"] == "out\n" and end["stderr"] == "err\n"
    assert set(end["duration"]) == {"secs", "nanos"}
    begin = next(m for m in msgs if m["type"] == "exec_command_begin")
    assert begin["command"][0] == "bash" and begin["cwd"] == str(repo) and begin["call_id"] == "c1"
    assert msgs[-1] == {"type": "task_complete", "last_agent_message": "Done: it exits 3."}
    deltas = "".join(m["delta"] for m in msgs if m["type"] == "agent_message_delta")
    assert deltas.endswith("Done: it exits 3.")
    counts = [m for m in msgs if m["type"] == "token_count"]
    assert counts[0]["input_tokens"] == 100 and counts[0]["cached_input_tokens"] == 40
    assert counts[1]["info"]["total_token_usage"]["input_tokens"] == 300
    assert session.total_usage["output_tokens"] == 30

    second = server.requests[1].body["input"]
    kinds = [i["type"] for i in second]
    assert kinds[-4:] == ["reasoning", "message", "function_call", "function_call_output"]
    reasoning = second[-4]
    assert reasoning["encrypted_content"].startswith("enc-") and "id" not in reasoning
    assert all("id" not in i for i in second)
    out = json.loads(second[-1]["output"])
    assert out["metadata"]["exit_code"] == 3 and "out\n" in out["output"] and "err\n" in out["output"]
    assert isinstance(second[-1]["output"], str)
    session.shutdown()
    assert session.next_event(timeout=2)["msg"]["type"] == "shutdown_complete"


def test_parallel_calls_each_get_an_output(server, codex_home, repo):
    server.enqueue(
        Turn().function_call("shell", {"command": ["echo", "one"]}, call_id="a")
              .function_call("shell", {"command": ["echo", "two"]}, call_id="b")
              .function_call("nope", {}, call_id="c")
              .function_call("shell", "{not json", call_id="d"),
        Turn().text("ok"),
    )
    session = codex.Session(mock_config(server, codex_home, repo, wire="chat")).start()
    session.submit(user_input("go"))
    drain_until(session, "task_complete")
    messages = server.requests[1].body["messages"]
    tool_msgs = {m["tool_call_id"]: m["content"] for m in messages if m["role"] == "tool"}
    assert json.loads(tool_msgs["a"])["output"] == "one\n"
    assert json.loads(tool_msgs["b"])["output"] == "two\n"
    assert tool_msgs["c"] == "unsupported call: nope"
    assert tool_msgs["d"].startswith("failed to parse function arguments")
    calls = [c["id"] for m in messages if m["role"] == "assistant" for c in m.get("tool_calls") or []]
    assert calls == ["a", "b", "c", "d"]
    session.shutdown()


def test_shell_workdir_timeout_and_stdin_is_devnull(server, codex_home, repo):
    (repo / "sub").mkdir()
    server.enqueue(
        Turn().function_call("shell", {"command": ["pwd"], "workdir": "sub"}, call_id="w")
              .function_call("shell", {"command": ["cat"]}, call_id="s")
              .function_call("shell", {"command": ["sleep", "5"], "timeout": 300}, call_id="t"),
        Turn().text("ok"),
    )
    session = codex.Session(mock_config(server, codex_home, repo)).start()
    session.submit(user_input("go"))
    started = time.monotonic()
    drain_until(session, "task_complete")
    assert time.monotonic() - started < 4
    outs = {i["call_id"]: json.loads(i["output"]) for i in server.requests[1].body["input"] if i["type"] == "function_call_output"}
    assert outs["w"]["output"].strip() == str(repo / "sub")
    assert outs["s"]["metadata"]["exit_code"] == 0 and outs["s"]["output"] == ""
    assert outs["t"]["metadata"]["exit_code"] != 0
    session.shutdown()


def test_update_plan_and_mcp_absent(server, codex_home, repo):
    plan = {"explanation": "why", "plan": [{"step": "a", "status": "completed"}, {"step": "b", "status": "in_progress"}]}
    server.enqueue(
        Turn().function_call("update_plan", plan, call_id="p").function_call("update_plan", {"plan": [{"step": 1}]}, call_id="q"),
        Turn().text("ok"),
    )
    session = codex.Session(mock_config(server, codex_home, repo)).start()
    session.submit(user_input("go"))
    msgs = drain_until(session, "task_complete")
    update = next(m for m in msgs if m["type"] == "plan_update")
    assert update["explanation"] == "why" and update["plan"][1] == {"step": "b", "status": "in_progress"}
    outs = {i["call_id"]: i["output"] for i in server.requests[1].body["input"] if i["type"] == "function_call_output"}
    assert outs["p"] == "Plan updated" and outs["q"].startswith("failed to parse function arguments")
    session.shutdown()


def test_apply_patch_interception_events_and_turn_diff(server, codex_home, repo):
    (repo / "f.txt").write_text("alpha\nbeta\n")
    script = "cd sub && apply_patch <<'EOF'\n*** Begin Patch\n*** Add File: new.txt\n+made\n*** End Patch\nEOF\n"
    (repo / "sub").mkdir()
    patch = "*** Begin Patch\n*** Update File: f.txt\n@@\n alpha\n-beta\n+gamma\n*** End Patch"
    server.enqueue(
        Turn().function_call("shell", {"command": ["apply_patch", patch]}, call_id="p1")
              .function_call("shell", {"command": ["bash", "-lc", script]}, call_id="p2")
              .function_call("shell", {"command": ["apply_patch", "*** Begin Patch\n*** Delete File: nope\n*** End Patch"]}, call_id="p3"),
        Turn().text("patched"),
    )
    session = codex.Session(mock_config(server, codex_home, repo, sandbox="workspace-write")).start()
    session.submit(user_input("edit"))
    msgs = drain_until(session, "task_complete")
    assert (repo / "f.txt").read_text() == "alpha\ngamma\n"
    assert (repo / "sub" / "new.txt").read_text() == "made\n"
    begins = [m for m in msgs if m["type"] == "patch_apply_begin"]
    assert begins[0]["auto_approved"] is True
    change = begins[0]["changes"][str(repo / "f.txt")]
    assert "-beta\n+gamma\n" in change["update"]["unified_diff"]
    ends = [m for m in msgs if m["type"] == "patch_apply_end"]
    assert ends[0]["success"] and ends[0]["stdout"] == "Success. Updated the following files:\nM f.txt\n"
    assert "exec_command_begin" not in _types(msgs)
    diffs = [m["unified_diff"] for m in msgs if m["type"] == "turn_diff"]
    assert "+gamma" in diffs[-1] and "sub/new.txt" in diffs[-1]
    outs = {i["call_id"]: i["output"] for i in server.requests[1].body["input"] if i["type"] == "function_call_output"}
    assert json.loads(outs["p1"])["output"].startswith("Success.")
    assert outs["p3"].startswith("error: Failed to delete file")
    session.shutdown()


# -- approvals --

def test_exec_approval_request_and_denial(server, codex_home, repo):
    server.enqueue(
        Turn().function_call("shell", {"command": ["touch", "made-by-model"]}, call_id="x"),
        Turn().text("fine"),
    )
    session = codex.Session(mock_config(server, codex_home, repo, approval="untrusted")).start()
    sub = session.submit(user_input("go"))
    msgs = drain_until(session, "exec_approval_request")
    req = msgs[-1]
    assert req["command"] == ["touch", "made-by-model"] and req["call_id"] == "x"
    assert "exec_command_begin" not in _types(msgs)  # nothing runs before the answer
    session.submit({"type": "exec_approval", "id": sub, "decision": "denied"})
    msgs = drain_until(session, "task_complete")
    assert "exec_command_begin" not in _types(msgs) and "exec_command_end" not in _types(msgs)
    assert not (repo / "made-by-model").exists()
    out = [i for i in server.requests[1].body["input"] if i["type"] == "function_call_output"][0]["output"]
    assert "rejected by user" in out
    session.shutdown()


def test_approval_handler_and_patch_approval(server, codex_home, repo):
    seen = []

    def handler(msg):
        seen.append(msg)
        return "approved"

    patch = "*** Begin Patch\n*** Add File: a.txt\n+x\n*** End Patch"
    server.enqueue(Turn().function_call("apply_patch", {"input": patch}, call_id="p"), Turn().text("ok"))
    session = codex.Session(mock_config(server, codex_home, repo, approval="untrusted", sandbox="read-only"),
                            approval_handler=handler).start()
    session.submit(user_input("go"))
    msgs = drain_until(session, "task_complete")
    assert seen and seen[0]["type"] == "apply_patch_approval_request"
    assert str(repo / "a.txt") in seen[0]["changes"]
    assert "apply_patch_approval_request" not in _types(msgs)
    assert (repo / "a.txt").read_text() == "x\n"
    session.shutdown()


# -- failures, retries, interrupts --

def test_stream_retry_does_not_rerun_tools(server, codex_home, repo):
    marker = repo / "count.txt"
    call = {"command": ["bash", "-lc", "echo ran >> count.txt"]}
    # The first response runs the call and then drops before response.completed.
    server.enqueue(
        Turn().function_call("shell", call, call_id="once").text("more").drop_after(12),
        Turn().text("finished"),
    )
    session = codex.Session(mock_config(server, codex_home, repo)).start()
    session.submit(user_input("go"))
    msgs = drain_until(session, "task_complete")
    assert marker.read_text() == "ran\n"
    assert "stream_error" in _types(msgs)
    retry_input = server.requests[1].body["input"]
    assert [i["type"] for i in retry_input[-2:]] == ["function_call", "function_call_output"]
    assert msgs[-1]["last_agent_message"] == "finished"
    session.shutdown()


def test_fatal_error_ends_task_with_error(server, codex_home, repo):
    server.enqueue(Turn.http_error(401, "Incorrect API key provided"))
    session = codex.Session(mock_config(server, codex_home, repo)).start()
    session.submit(user_input("go"))
    msgs = drain_until(session, "task_complete")
    err = next(m for m in msgs if m["type"] == "error")
    assert "401" in err["message"] and "Incorrect API key" in err["message"]
    assert "CODEX_TEST_MOCK_KEY" in err["message"] and server.url in err["message"]
    assert len(server.requests) == 1
    session.shutdown()


def test_stream_retries_exhausted(server, codex_home, repo):
    server.enqueue(Turn().text("x").no_completed(), Turn().text("x").no_completed(), Turn().text("x").no_completed())
    session = codex.Session(mock_config(server, codex_home, repo, stream_max_retries=2)).start()
    session.submit(user_input("go"))
    msgs = drain_until(session, "task_complete")
    err = [m for m in msgs if m["type"] == "error"][-1]
    assert "response.completed" in err["message"] and "2 stream retries" in err["message"]
    assert len(server.model_requests()) == 3
    session.shutdown()


def test_interrupt_kills_command_and_keeps_history_consistent(server, codex_home, repo):
    server.enqueue(
        Turn().function_call("shell", {"command": ["sleep", "30"], "timeout": 60000}, call_id="slow"),
        Turn().text("after interrupt"),
    )
    session = codex.Session(mock_config(server, codex_home, repo)).start()
    session.submit(user_input("go"))
    drain_until(session, "exec_command_begin")
    t0 = time.monotonic()
    assert session.interrupt() is True
    msgs = drain_until(session, "turn_aborted", timeout=5)
    assert msgs[-1]["reason"] == "interrupted" and time.monotonic() - t0 < 3
    session.submit(user_input("again"))
    msgs = drain_until(session, "task_complete")
    body = server.requests[1].body["input"]
    call_idx = next(i for i, it in enumerate(body) if it.get("call_id") == "slow" and it["type"] == "function_call")
    assert body[call_idx + 1]["type"] == "function_call_output" and "aborted" in body[call_idx + 1]["output"]
    assert _texts(body[-1]) == "again"
    session.shutdown()


def test_interrupt_idle_stream(server, codex_home, repo):
    server.enqueue(Turn().text("x").idle_after(5, 20))  # quiet after the first delta (frame 4)
    session = codex.Session(mock_config(server, codex_home, repo)).start()
    session.submit(user_input("go"))
    server.wait_for_requests(1)
    msgs = drain_until(session, "agent_message_delta")  # the stream is under way, then idles
    session.interrupt()
    msgs += drain_until(session, "turn_aborted", timeout=3)
    assert "task_complete" not in _types(msgs)
    assert session.interrupt() is False
    session.shutdown()


def test_idle_timeout_is_a_stream_error(server, codex_home, repo):
    server.enqueue(Turn().text("x").idle_after(2, 3), Turn().text("second try"))
    session = codex.Session(mock_config(server, codex_home, repo, stream_idle_timeout_ms=300)).start()
    session.submit(user_input("go"))
    msgs = drain_until(session, "task_complete")
    assert any("idle timeout" in m.get("message", "") for m in msgs if m["type"] == "stream_error")
    assert msgs[-1]["last_agent_message"] == "second try"
    session.shutdown()


def test_pending_input_joins_running_task(server, codex_home, repo):
    server.enqueue(Turn().text("first").delay(0.1), Turn().text("second"))
    session = codex.Session(mock_config(server, codex_home, repo)).start()
    a = session.submit(user_input("one"))
    server.wait_for_requests(1)
    session.submit(user_input("two"))
    msgs = drain_until(session, "task_complete")
    assert msgs[-1]["last_agent_message"] == "second"
    assert _texts(server.requests[1].body["input"][-1]) == "two"
    session.shutdown()


def test_unknown_op_and_list_tools(server, codex_home, repo):
    session = codex.Session(mock_config(server, codex_home, repo)).start()
    session.next_event(timeout=2)
    sid = session.submit({"id": "x1", "op": {"type": "bogus"}})
    ev = session.next_event(timeout=2)
    assert sid == "x1" and ev["id"] == "x1" and ev["msg"]["type"] == "error" and "bogus" in ev["msg"]["message"]
    session.submit({"type": "list_mcp_tools"})
    ev = session.next_event(timeout=2)
    assert ev["msg"] == {"type": "mcp_list_tools_response", "tools": {}}
    session.shutdown()


# -- notify and rollouts --

def test_notify_gets_the_payload_as_last_argument(server, codex_home, repo, tmp_path):
    out = tmp_path / "notify.json"
    script = codex_home / "notify.py"  # not in /tmp: codex runs no program a sandboxed command could write
    script.write_text("import sys, pathlib\npathlib.Path(sys.argv[1]).write_text(sys.argv[-1])\n")
    server.enqueue(Turn().text("done!"))
    cfg = mock_config(server, codex_home, repo, notify=[sys.executable, str(script), str(out)])
    session = codex.Session(cfg).start()
    session.submit(user_input("please"))
    drain_until(session, "task_complete")
    for _ in range(100):
        if out.exists() and out.read_text():
            break
        time.sleep(0.05)
    payload = json.loads(out.read_text())
    assert payload == {"type": "agent-turn-complete", "turn-id": "0", "input-messages": ["please"],
                       "last-assistant-message": "done!"}
    assert list(payload) == ["type", "turn-id", "input-messages", "last-assistant-message"]
    session.shutdown()


def test_broken_notify_does_not_break_the_session(server, codex_home, repo):
    server.enqueue(Turn().text("done"))
    session = codex.Session(mock_config(server, codex_home, repo, notify=["/nonexistent/notifier"])).start()
    session.submit(user_input("x"))
    msgs = drain_until(session, "task_complete")
    assert "error" not in _types(msgs)
    session.shutdown()


def test_rollout_recorded_and_resumed(server, codex_home, repo):
    server.enqueue(Turn().function_call("shell", {"command": ["echo", "hi"]}, call_id="c"), Turn().text("first answer"))
    session = codex.Session(mock_config(server, codex_home, repo)).start()
    session.submit(user_input("remember 42"))
    drain_until(session, "task_complete")
    session.shutdown()
    path = session.rollout_path
    assert path.parent.parent.parent.parent == codex_home / "sessions"
    assert path.name.startswith("rollout-") and path.name.endswith("-%s.jsonl" % session.session_id)
    assert stat.S_IMODE(os.stat(str(path)).st_mode) == 0o600
    lines = [json.loads(l) for l in path.read_text().splitlines()]
    assert lines[0]["type"] == "session_meta" and lines[0]["payload"]["id"] == session.session_id
    assert lines[0]["payload"]["cwd"] == str(repo)
    kinds = [l["payload"]["type"] for l in lines if l["type"] == "response_item"]
    assert kinds.count("function_call_output") == 1 and kinds[-1] == "message"

    assert codex.find_rollout(codex_home, last=True, cwd=repo) == path
    assert codex.find_rollout(codex_home, session.session_id[:8]) == path
    server.enqueue(Turn().text("resumed"))
    resumed = codex.Session(mock_config(server, codex_home, repo), resume_path=path).start()
    first = resumed.next_event(timeout=2)["msg"]
    assert resumed.session_id == session.session_id and first["initial_messages"]
    resumed.submit(user_input("what number?"))
    drain_until(resumed, "task_complete")
    resumed.shutdown()
    body = server.requests[-1].body["input"]
    assert any(_texts(i) == "remember 42" for i in body if i["type"] == "message")
    assert sum(1 for i in body if i["type"] == "message" and "<environment_context>" in _texts(i)) == 1
    assert _texts(body[-1]) == "what number?"
    assert path.read_text().count("session_meta") == 1
    assert "resumed" in path.read_text()


def test_override_turn_context_appends_environment(server, codex_home, repo):
    server.enqueue(Turn().text("ok"))
    session = codex.Session(mock_config(server, codex_home, repo)).start()
    session.submit({"type": "override_turn_context", "approval_policy": "on-request",
                    "sandbox_policy": {"mode": "danger-full-access"}})
    session.submit(user_input("go"))
    drain_until(session, "task_complete")
    envs = [_texts(i) for i in server.requests[0].body["input"] if "<environment_context>" in _texts(i)]
    assert len(envs) == 2 and "<sandbox_mode>danger-full-access</sandbox_mode>" in envs[1]
    assert "<network_access>enabled</network_access>" in envs[1]
    session.shutdown()


def test_compact_replaces_history(server, codex_home, repo):
    server.enqueue(Turn().text("answer one"), Turn().text("SUMMARY"), Turn().text("after"))
    session = codex.Session(mock_config(server, codex_home, repo)).start()
    session.submit(user_input("task one"))
    drain_until(session, "task_complete")
    session.submit({"type": "compact"})
    msgs = drain_until(session, "task_complete")
    assert any(m.get("message") == "Compact task completed" for m in msgs)
    assert server.requests[1].body["tools"] == []
    session.submit(user_input("next"))
    drain_until(session, "task_complete")
    body = server.requests[2].body["input"]
    assert "answer one" not in json.dumps(body) and "SUMMARY" in json.dumps(body) and "task one" in json.dumps(body)
    session.shutdown()


@pytest.mark.skipif(not hasattr(codex, "execute_with_policy"), reason="the sandbox (§11-§13) has not landed")
def test_model_commands_run_inside_the_sandbox(server, codex_home, repo):
    if not codex.sandbox_available():
        pytest.skip("no usable sandbox on this machine")
    server.enqueue(
        Turn().function_call("shell", {"command": ["bash", "-lc", "echo hi > written.txt"]}, call_id="w"),
        Turn().text("ok"),
    )
    session = codex.Session(mock_config(server, codex_home, repo, sandbox="read-only", approval="never")).start()
    session.submit(user_input("write"))
    drain_until(session, "task_complete")
    session.shutdown()
    assert not (repo / "written.txt").exists()
    out = [i for i in server.requests[1].body["input"] if i["type"] == "function_call_output"][0]["output"]
    assert "sandbox" in out.lower() or "read-only" in out.lower(), out


def test_resume_with_other_settings_appends_environment(server, codex_home, repo):
    server.enqueue(Turn().text("one"), Turn().text("two"))
    session = codex.Session(mock_config(server, codex_home, repo)).start()
    session.submit(user_input("first"))
    drain_until(session, "task_complete")
    session.shutdown()
    resumed = codex.Session(mock_config(server, codex_home, repo, sandbox="read-only"), resume_path=session.rollout_path).start()
    resumed.submit(user_input("second"))
    drain_until(resumed, "task_complete")
    resumed.shutdown()
    envs = [_texts(i) for i in server.requests[1].body["input"] if "<environment_context>" in _texts(i)]
    assert len(envs) == 2 and "<sandbox_mode>read-only</sandbox_mode>" in envs[1]


def test_load_rollout_mid_2025_format_and_errors(tmp_path):
    old = tmp_path / "rollout-2025-07-01T10-00-00-abc.jsonl"
    old.write_text("\n".join(json.dumps(x) for x in [
        {"id": "abc", "timestamp": "2025-07-01T10:00:00.000Z", "instructions": "be nice"},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
        {"record_type": "state"},
        {"type": "function_call", "name": "shell", "arguments": "{}", "call_id": "c"},
        "not an object",
    ]) + "\nnot json\n")
    meta, items, events = codex.load_rollout(old)
    assert meta["id"] == "abc" and [i["type"] for i in items] == ["message", "function_call"] and events == []
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(codex.ConfigError):
        codex.load_rollout(empty)
    with pytest.raises(codex.ConfigError) as err:
        codex.load_rollout(tmp_path / "missing.jsonl")
    assert "missing.jsonl" in str(err.value)


def test_find_rollout_errors(codex_home):
    with pytest.raises(codex.UsageError) as err:
        codex.find_rollout(codex_home, last=True)
    assert "no recorded sessions" in str(err.value)
    day = codex_home / "sessions" / "2025" / "01" / "02"
    day.mkdir(parents=True)
    for sid in ("aaaa-1111", "aaaa-2222"):
        (day / ("rollout-2025-01-02T03-04-05-%s.jsonl" % sid)).write_text('{"type":"session_meta","payload":{"id":"%s"}}\n' % sid)
    with pytest.raises(codex.UsageError) as err:
        codex.find_rollout(codex_home, "aaaa")
    assert "ambiguous" in str(err.value)
    assert codex.find_rollout(codex_home, "aaaa-2222").name.endswith("aaaa-2222.jsonl")


def test_unreachable_provider_fails_after_request_retries_only(codex_home, repo):
    import socket

    with ModelServer() as server:
        cfg = mock_config(server, codex_home, repo, request_max_retries=1, stream_max_retries=3)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens here now
    cfg.provider.base_url = "http://127.0.0.1:%d/v1" % port
    session = codex.Session(cfg).start()
    t0 = time.monotonic()
    session.submit(user_input("hi"))
    msgs = drain_until(session, "task_complete")
    err = next(m for m in msgs if m["type"] == "error")
    assert "cannot reach http://127.0.0.1:%d/v1/responses" % port in err["message"]
    assert "stream_error" not in _types(msgs) and time.monotonic() - t0 < 3
    session.shutdown()
