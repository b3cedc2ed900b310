"""§19 the MCP server's protocol layer, with a scripted session behind it.

The end-to-end tests with the real agent Session and the scripted model server are in
tests/test_mcp_e2e.py.
"""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import codex
from support.mcp_jsonrpc_client import RawMcpClient
from support.qa_need import need_installed

pytestmark = pytest.mark.timeout(120)

SUPPORT = Path(__file__).resolve().parent / "support"
REPO = SUPPORT.parent.parent
RUNNER = str(SUPPORT / "mcp_scripted_session.py")
SDK_CLIENT = str(SUPPORT / "mcp_sdk_client.py")
MCP1_PYTHON = REPO / "build" / "mcp1" / "bin" / "python"
MCP1_OLD_PYTHON = REPO / "build" / "mcp1-old" / "bin" / "python"


@pytest.fixture
def server(codex_home, tmp_path):
    clients = []

    def start(*extra):
        client = RawMcpClient([sys.executable, RUNNER] + list(extra), env=dict(os.environ, CODEX_HOME=str(codex_home)),
                              cwd=str(tmp_path))
        clients.append(client)
        return client

    yield start
    for c in clients:
        if c.proc.poll() is None:
            c.close()


def text_of(response):
    return response["result"]["content"][0]["text"]


# -- argument parsing ------------------------------------------------------------------

def test_codex_tool_arguments():
    fields, cli, prompt = codex.parse_codex_tool_arguments({
        "prompt": "p", "model": "o3", "profile": "fast", "cwd": "sub", "approval-policy": "on-request",
        "sandbox": "workspace-write", "base-instructions": "be brief", "include-plan-tool": True,
        "config": {"model_reasoning_effort": "high", "sandbox_workspace_write.network_access": True,
                   "shell_environment_policy": {"inherit": "core", "exclude": ["A*"]}, "x": None},
        "unknown-field": 1,
    })
    assert prompt == "p"
    assert fields == {"model": "o3", "profile": "fast", "cwd": "sub", "approval_policy": "on-request",
                      "sandbox_mode": "workspace-write", "base_instructions": "be brief", "include_plan_tool": True}
    assert cli == ['model_reasoning_effort="high"', "sandbox_workspace_write.network_access=true",
                   'shell_environment_policy={"inherit" = "core", "exclude" = ["A*"]}']
    for item in cli:  # every override is what `-c` accepts
        codex.parse_config_override(item)
    odd = 'emoji \U0001F600 tab\t quote" back\\ del\x7f nl\n'
    _, cli, _ = codex.parse_codex_tool_arguments({"prompt": "p", "config": {"instructions": odd, "a.b": {"k y": [1, 2.5, True]}}})
    assert codex.parse_config_override(cli[0]) == (["a", "b"], {"k y": [1, 2.5, True]})
    assert codex.parse_config_override(cli[1]) == (["instructions"], odd)


def test_seed_004_fields_are_accepted():
    fields, cli, _ = codex.parse_codex_tool_arguments({
        "prompt": "p", "approval-policy": "auto-edit", "disable-response-storage": True,
        "sandbox-permissions": ["disk-full-read-access", "disk-write-cwd", "disk-write-folder=/opt/x", "network-full-access"],
    })
    assert fields == {"approval_policy": "on-failure"}
    assert 'sandbox_permissions=["disk-full-read-access", "disk-write-cwd", "disk-write-folder=/opt/x", "network-full-access"]' in cli
    assert "disable_response_storage=true" in cli
    assert codex.parse_codex_tool_arguments({"prompt": "p", "approval-policy": "unless-allow-listed"})[0] == {"approval_policy": "untrusted"}


@pytest.mark.parametrize("perms, mode, network, roots", [
    (["disk-full-read-access", "disk-write-cwd", "disk-write-folder=/opt/x", "network-full-access"], "workspace-write", True, ["/opt/x"]),
    (["disk-full-read-access"], "read-only", False, []),
    (["disk-full-write-access"], "workspace-write", False, ["/"]),  # writes anywhere, network stays off
    (["disk-full-write-access", "network-full-access"], "danger-full-access", True, []),
])
def test_sandbox_permissions_mean_what_they_mean_in_config(tmp_path, codex_home, perms, mode, network, roots):
    """The tool's legacy list and config.toml's go through one mapping, and beat the file's sandbox_mode."""
    (codex_home / "config.toml").write_text('sandbox_mode = "read-only"\n')
    fields, cli, _ = codex.parse_codex_tool_arguments({"prompt": "p", "sandbox-permissions": perms})
    cfg = codex.load_config(codex.ConfigOverrides(cwd=str(tmp_path), **fields), cli, home=codex_home)
    policy = codex.TurnContext.from_config(cfg).sandbox_policy
    assert (policy.mode, policy.has_network(), [str(r) for r in policy.writable_roots]) == (mode, network, roots)
    fields, cli, _ = codex.parse_codex_tool_arguments({"prompt": "p", "sandbox": "read-only", "sandbox-permissions": perms})
    cfg = codex.load_config(codex.ConfigOverrides(cwd=str(tmp_path), **fields), cli, home=codex_home)
    assert cfg.sandbox_policy.mode == "read-only"  # an explicit `sandbox` beats the list


@pytest.mark.parametrize("args, message", [
    ({}, "Missing arguments for codex tool-call; the `prompt` field is required."),
    ({"prompt": 3}, "`prompt` must be a string"),
    ({"prompt": "p", "sandbox": "everything"}, "`sandbox` 'everything' is not one of"),
    ({"prompt": "p", "approval-policy": "sometimes"}, "`approval-policy` 'sometimes' is not one of"),
    ({"prompt": "p", "include-plan-tool": "yes"}, "`include-plan-tool` must be a boolean, not string"),
    ({"prompt": "p", "config": []}, "`config` must be a object, not array"),
    ({"prompt": "p", "sandbox-permissions": ["disk-everything"]}, "`sandbox-permissions` entry 'disk-everything'"),
])
def test_bad_codex_tool_arguments(args, message):
    with pytest.raises(codex.ToolInputError) as err:
        codex.parse_codex_tool_arguments(args)
    assert message in str(err.value)


def test_elicitation_decisions():
    parse = codex.parse_elicitation_decision
    assert parse({"decision": "approved"}) == "approved"
    assert parse({"decision": "approved_for_session"}) == "approved_for_session"
    assert parse({"decision": "abort"}) == "abort"
    assert parse({"action": "accept"}) == "approved"
    assert parse({"action": "accept", "content": {"decision": "approved_for_session"}}) == "approved_for_session"
    assert parse({"action": "decline"}) == "denied"
    assert parse({"action": "cancel"}) == "abort"
    for junk in (None, [], {}, {"decision": "yes please"}, {"action": "maybe"}, "approved"):
        assert parse(junk) == "denied"


# -- protocol over stdio -----------------------------------------------------------------

def test_initialize_and_tools_list(server):
    c = server()
    init = c.initialize("2025-03-26")["result"]
    assert init == {"protocolVersion": "2025-03-26", "capabilities": {"tools": {"listChanged": True}},
                    "serverInfo": {"name": "codex-mcp-server", "title": "Codex", "version": codex.__version__}}
    again = c.call("initialize", {"protocolVersion": "2025-03-26", "capabilities": {}, "clientInfo": {"name": "x", "version": "1"}})
    assert again["error"] == {"code": -32600, "message": "initialize called more than once"}
    assert c.call("ping")["result"] == {}
    tools = c.call("tools/list")["result"]["tools"]
    assert [t["name"] for t in tools] == ["codex", "codex-reply"]
    codex_tool, reply_tool = tools
    assert codex_tool["title"] == "Codex"
    assert codex_tool["description"] == "Run a Codex session. Accepts configuration parameters matching the Codex Config struct."
    schema = codex_tool["inputSchema"]
    assert schema["type"] == "object" and schema["required"] == ["prompt"]
    assert sorted(schema["properties"]) == sorted(["prompt", "model", "profile", "cwd", "approval-policy", "sandbox",
                                                   "config", "base-instructions", "include-plan-tool"])
    assert schema["properties"]["approval-policy"]["enum"] == ["untrusted", "on-failure", "on-request", "never"]
    assert schema["properties"]["sandbox"]["enum"] == ["read-only", "workspace-write", "danger-full-access"]
    assert schema["properties"]["config"] == {
        "description": "Individual config settings that will override what is in CODEX_HOME/config.toml.",
        "type": "object", "additionalProperties": True}
    assert reply_tool["title"] == "Codex Reply"
    assert reply_tool["inputSchema"]["required"] == ["sessionId", "prompt"]
    assert set(reply_tool["inputSchema"]["properties"]) == {"sessionId", "prompt"}
    assert c.close() == 0


def test_unknown_versions_methods_and_garbage(server):
    c = server()
    assert c.initialize("1999-01-01")["result"]["protocolVersion"] == "2025-11-25"
    assert c.call("resources/list")["result"] == {"resources": []}
    assert c.call("resources/templates/list")["result"] == {"resourceTemplates": []}
    assert c.call("prompts/list")["result"] == {"prompts": []}
    assert c.call("completion/complete", {})["error"]["code"] == -32601
    assert c.call("logging/setLevel", {"level": "info"})["error"]["code"] == -32601
    c.send_raw("this is not json")
    assert c.next(lambda m: m.get("id") is None)["error"]["code"] == -32700
    c.send_raw("[1, 2]")
    assert c.next(lambda m: m.get("id") is None)["error"]["code"] == -32600
    r = c.call("tools/call", {"name": "nope", "arguments": {}})
    assert r["result"] == {"content": [{"type": "text", "text": "Unknown tool 'nope'"}], "isError": True}
    r = c.call("tools/call", {"name": "codex", "arguments": {}})
    assert r["result"]["isError"] is True and "`prompt` field is required" in text_of(r)
    r = c.call("tools/call", {"name": "codex", "arguments": {"prompt": "x", "profile": "missing"}})
    assert text_of(r).startswith("Failed to load Codex configuration from overrides: config profile `missing` not found")
    r = c.call("tools/call", {"name": "codex-reply", "arguments": {"sessionId": "nope", "prompt": "x"}})
    assert text_of(r) == "Session not found for session_id: nope"
    r = c.call("tools/call", {"name": "codex-reply", "arguments": {"prompt": "x"}})
    assert "`sessionId` and `prompt` fields are required" in text_of(r)
    assert c.close() == 0


def test_a_call_streams_events_then_answers(server):
    c = server()
    c.initialize()
    rid = c.request("tools/call", {"name": "codex", "arguments": {"prompt": "hello"}, "_meta": {"progressToken": "tok"}})
    result = c.response(rid)
    events = c.messages[:c.messages.index(result)]
    notes = [e for e in events if e.get("method") == "codex/event"]
    kinds = [n["params"]["msg"]["type"] for n in notes]
    assert kinds == ["session_configured", "task_started", "agent_message_delta", "agent_message", "task_complete"]
    assert all(n["params"]["_meta"] == {"requestId": rid} for n in notes)
    assert notes[1]["params"]["id"] == "0"
    sid = notes[0]["params"]["msg"]["session_id"]
    assert result["result"]["content"] == [{"type": "text", "text": "turn 1: hello"}]
    assert "isError" not in result["result"]
    assert result["result"]["structuredContent"]["sessionId"] == sid
    progress = [e["params"] for e in events if e.get("method") == "notifications/progress"]
    assert [p["progress"] for p in progress] == [1, 2] and progress[-1]["message"] == "turn 1: hello"
    assert all(p["progressToken"] == "tok" for p in progress)
    r = c.call("tools/call", {"name": "codex-reply", "arguments": {"sessionId": sid, "prompt": "again"}})
    assert text_of(r) == "turn 2: again"
    r = c.call("tools/call", {"name": "codex-reply", "arguments": {"conversationId": sid, "prompt": "third"}})
    assert text_of(r) == "turn 3: third"


def test_tool_options_reach_the_config(server, codex_home, tmp_path):
    (codex_home / "config.toml").write_text('model = "from-file"\n[profiles.fast]\nmodel = "from-profile"\n')
    (tmp_path / "sub").mkdir()
    c = server("-m", "from-flag")
    c.initialize()
    r = c.call("tools/call", {"name": "codex", "arguments": {"prompt": "config"}})
    assert json.loads(text_of(r))["model"] == "from-flag"
    r = c.call("tools/call", {"name": "codex", "arguments": {
        "prompt": "config", "profile": "fast", "cwd": "sub", "approval-policy": "never", "sandbox": "danger-full-access",
        "base-instructions": "BASE", "include-plan-tool": False,
        "config": {"model_reasoning_effort": "high", "shell_environment_policy.inherit": "core"}}})
    got = json.loads(text_of(r))
    assert got["model"] == "from-flag"  # a flag given to `codex mcp` beats the profile
    assert got["cwd"] == str((tmp_path / "sub").resolve())
    assert (got["approval_policy"], got["sandbox_mode"]) == ("never", "danger-full-access")
    assert (got["base_instructions"], got["include_plan_tool"], got["profile"]) == ("BASE", False, "fast")
    assert got["model_reasoning_effort"] == "high" and got["shell_environment_policy"]["inherit"] == "core"
    r = c.call("tools/call", {"name": "codex", "arguments": {"prompt": "config", "model": "o3",
               "approval-policy": "auto-edit", "disable-response-storage": True,
               "sandbox-permissions": ["disk-full-read-access", "disk-write-cwd", "network-full-access"]}})
    got = json.loads(text_of(r))
    assert (got["model"], got["approval_policy"], got["sandbox_policy"]["mode"]) == ("o3", "on-failure", "workspace-write")
    assert got["disable_response_storage"] is True and got["sandbox_policy"]["network_access"] is True
    assert got["sandbox_permissions"] == ["disk-full-read-access", "disk-write-cwd", "network-full-access"]


@pytest.mark.parametrize("answer, decision", [
    ({"result": {"decision": "approved"}}, "approved"),
    ({"result": {"decision": "approved_for_session"}}, "approved_for_session"),
    ({"result": {"action": "accept", "content": {}}}, "approved"),
    ({"result": {"action": "decline"}}, "denied"),
    ({"result": {"whatever": 1}}, "denied"),
    ({"error": {"code": -32601, "message": "no elicitation here"}}, "denied"),
])
def test_exec_approval_round_trip(server, answer, decision):
    c = server()
    c.initialize()
    rid = c.request("tools/call", {"name": "codex", "arguments": {"prompt": "run: rm -rf 'my dir'"}})
    ask = c.next(lambda m: m.get("method") == "elicitation/create")
    p = ask["params"]
    assert p["requestedSchema"] == {"type": "object", "properties": {}}
    assert p["codex_elicitation"] == "exec-approval"
    assert p["codex_mcp_tool_call_id"] == str(rid)
    assert p["codex_event_id"] == "0" and p["codex_call_id"] == "call_1"
    assert p["codex_command"] == ["rm", "-rf", "'my", "dir'"]
    assert p["codex_reason"] == "why not"
    reply = {"jsonrpc": "2.0", "id": ask["id"]}
    reply.update(answer)
    c.send(reply)
    assert text_of(c.response(rid)) == "decision: %s" % decision


def test_exec_approval_message_quotes_the_command(server):
    c = server()
    c.initialize()
    c.request("tools/call", {"name": "codex", "arguments": {"prompt": "run: echo a;b"}})
    p = c.next(lambda m: m.get("method") == "elicitation/create")["params"]
    assert p["message"] == "Allow Codex to run `echo 'a;b'` in `%s`?" % p["codex_cwd"]


def test_patch_approval_round_trip(server):
    c = server()
    c.initialize()
    rid = c.request("tools/call", {"name": "codex", "arguments": {"prompt": "patch"}})
    ask = c.next(lambda m: m.get("method") == "elicitation/create")
    p = ask["params"]
    assert p["message"] == "needs write\nAllow Codex to apply proposed code changes?"
    assert p["codex_elicitation"] == "patch-approval"
    assert p["codex_changes"] == {"/w/a.txt": {"add": {"content": "hi\n"}}}
    assert p["codex_reason"] == "needs write" and "codex_grant_root" not in p
    c.send({"jsonrpc": "2.0", "id": ask["id"], "result": {"decision": "abort"}})
    assert text_of(c.response(rid)) == "decision: abort"


def _event(kind):
    return lambda m: m.get("method") == "codex/event" and m["params"]["msg"]["type"] == kind


def _reply_once_idle(c, sid, prompt, timeout=10):
    """codex-reply on session `sid` as soon as the server has finished its earlier call there
    (until then it answers "busy"); bounded in time."""
    deadline = time.monotonic() + timeout
    while True:
        r = c.call("tools/call", {"name": "codex-reply", "arguments": {"sessionId": sid, "prompt": prompt}})
        if "is busy with another call" not in json.dumps(r) or time.monotonic() > deadline:
            return r


def test_cancellation_stops_the_turn_without_a_response(server):
    c = server()
    c.initialize()
    rid = c.request("tools/call", {"name": "codex", "arguments": {"prompt": "slow"}})
    sid = c.next(_event("session_configured"))["params"]["msg"]["session_id"]
    c.next(_event("task_started"))
    c.notify("notifications/cancelled", {"requestId": rid, "reason": "user hit stop"})
    aborted = c.next(_event("turn_aborted"))
    assert aborted["params"]["_meta"]["requestId"] == rid
    pong = c.call("ping")
    assert pong["result"] == {}
    # the cancelled call is finished once its session takes the next call: a response to it
    # would have been written before that one's
    assert text_of(_reply_once_idle(c, sid, "next")) == "turn 2: next"
    assert not [m for m in c.messages if m.get("id") == rid]  # the spec: no response after cancel


def test_late_events_of_a_cancelled_turn_do_not_end_the_next(server, tmp_path):
    c = server()
    c.initialize()
    rid = c.request("tools/call", {"name": "codex", "arguments": {"prompt": "slow-late"}})
    configured = c.next(_event("session_configured"))
    sid = configured["params"]["msg"]["session_id"]
    c.notify("notifications/cancelled", {"requestId": rid})
    c.next(_event("turn_aborted"))
    deadline = time.monotonic() + 10  # the scripted session says when the stale task_complete is queued
    while not (tmp_path / "stale-events-queued").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert (tmp_path / "stale-events-queued").exists()
    r = _reply_once_idle(c, sid, "fresh")
    assert text_of(r) == "turn 2: fresh"


def test_cancelling_while_an_approval_is_pending(server):
    c = server()
    c.initialize()
    rid = c.request("tools/call", {"name": "codex", "arguments": {"prompt": "run: ls"}})
    ask = c.next(lambda m: m.get("method") == "elicitation/create")
    c.notify("notifications/cancelled", {"requestId": rid})
    c.next(lambda m: m.get("method") == "codex/event" and m["params"]["msg"]["type"] == "turn_aborted")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not [m for m in c.messages if m.get("method") == "notifications/cancelled"]:
        time.sleep(0.05)
    [withdrawn] = [m for m in c.messages if m.get("method") == "notifications/cancelled"]
    assert withdrawn["params"]["requestId"] == ask["id"]  # the pending elicitation is withdrawn
    assert c.call("ping")["result"] == {}
    assert not [m for m in c.messages if m.get("id") == rid]


def test_concurrent_calls_each_with_their_own_session(server):
    c = server()
    c.initialize()
    slow = c.request("tools/call", {"name": "codex", "arguments": {"prompt": "run: make"}})
    ask = c.next(lambda m: m.get("method") == "elicitation/create")
    ids = [c.request("tools/call", {"name": "codex", "arguments": {"prompt": "p%d" % i}}) for i in range(4)]
    results = {i: c.response(i) for i in ids}  # answered while the first call waits for approval
    texts = sorted(text_of(r) for r in results.values())
    assert texts == ["turn 1: p0", "turn 1: p1", "turn 1: p2", "turn 1: p3"]
    sessions = {r["result"]["structuredContent"]["sessionId"] for r in results.values()}
    assert len(sessions) == 4
    sid = c.messages[[m.get("method") for m in c.messages].index("codex/event")]["params"]["msg"]["session_id"]
    busy = c.call("tools/call", {"name": "codex-reply", "arguments": {"sessionId": sid, "prompt": "x"}})
    assert "busy" in text_of(busy)
    c.send({"jsonrpc": "2.0", "id": ask["id"], "result": {"decision": "approved"}})
    assert text_of(c.response(slow)) == "decision: approved"
    assert text_of(c.call("tools/call", {"name": "codex-reply", "arguments": {"sessionId": sid, "prompt": "x"}})) == "turn 2: x"


def test_error_event_makes_an_error_result(server):
    c = server()
    c.initialize()
    r = c.call("tools/call", {"name": "codex", "arguments": {"prompt": "error"}})
    assert r["result"]["isError"] is True
    assert text_of(r) == "Codex runtime error: the model is unreachable"


def test_stdout_stays_clean_and_eof_exits(server):
    c = server()
    c.initialize()
    c.call("tools/call", {"name": "codex", "arguments": {"prompt": "hello"}})
    assert c.close() == 0
    assert all(m.get("jsonrpc") == "2.0" for m in c.messages)


def test_cli_aliases_start_the_server(run_codex, codex_home):
    init = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})
    for argv in (["mcp"], ["mcp", "serve"], ["mcp-server"]):
        out = run_codex(*argv, input=init + "\n")
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["result"]["serverInfo"]["name"] == "codex-mcp-server"
    (codex_home / "config.toml").write_text("model = 3\n")
    out = run_codex("mcp", input="")
    assert out.returncode == 2 and "`model` must be a string" in out.stderr


# -- the Python SDK as the client -----------------------------------------------------------

def _sdk_plan(codex_home, tmp_path, elicit="accept"):
    return {
        "command": sys.executable, "args": [RUNNER], "cwd": str(tmp_path), "elicit": elicit,
        "env": {"CODEX_HOME": str(codex_home), "PATH": os.environ["PATH"]},
        "steps": [
            {"tool": "codex", "arguments": {"prompt": "hello"}},
            {"tool": "codex-reply", "arguments": {"sessionId": "$SESSION", "prompt": "more"}},
            {"tool": "codex", "arguments": {"prompt": "run: git push"}},
        ],
    }


def _run_sdk(python, plan, extra_env=None):
    env = dict(os.environ)
    env.update(extra_env or {})
    out = subprocess.run([str(python), SDK_CLIENT, json.dumps(plan)], capture_output=True, text=True, timeout=90, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout)


def _check_sdk_run(got):
    assert got["serverInfo"]["name"] == "codex-mcp-server"
    assert [t["name"] for t in got["tools"]] == ["codex", "codex-reply"]
    assert got["tools"][0]["inputSchema"]["required"] == ["prompt"]
    texts = [r["content"][0]["text"] for r in got["results"]]
    assert texts[:2] == ["turn 1: hello", "turn 2: more"]
    return texts[2]


def test_sdk_2x_client(codex_home, tmp_path):
    got = _run_sdk(sys.executable, _sdk_plan(codex_home, tmp_path))
    assert got["sdk"].startswith("2.")
    assert got["protocolVersion"] == "2025-11-25"
    assert _check_sdk_run(got) == "decision: approved"
    [ask] = got["elicitations"]
    assert ask["message"].startswith("Allow Codex to run `git push` in `")
    got = _run_sdk(sys.executable, _sdk_plan(codex_home, tmp_path, elicit="decline"))
    assert _check_sdk_run(got) == "decision: denied"


def test_sdk_1x_client(codex_home, tmp_path):
    need_installed(MCP1_PYTHON, "the mcp 1.x SDK is not installed in build/mcp1: run .ci/setup-mcp.sh")
    got = _run_sdk(MCP1_PYTHON, _sdk_plan(codex_home, tmp_path, elicit="accept-for-session"))
    assert got["sdk"].startswith("1.")
    assert got["protocolVersion"] in codex.MCP_PROTOCOL_VERSIONS
    assert _check_sdk_run(got) == "decision: approved_for_session"


def test_idle_sessions_are_capped(monkeypatch, codex_home, tmp_path):
    import threading
    from support.mcp_scripted_session import ScriptedSession

    monkeypatch.setattr(codex, "MCP_SERVER_MAX_SESSIONS", 2)
    made = []

    def factory(cfg):
        made.append(ScriptedSession(cfg))
        return made[-1]

    r1, w1 = os.pipe()
    r2, w2 = os.pipe()
    srv = codex.McpServer(os.fdopen(r1, "rb"), os.fdopen(w2, "wb"), session_factory=factory,
                          load_config=lambda fields, cli: codex.load_config(codex.ConfigOverrides(cwd=str(tmp_path)), cli, home=codex_home))
    thread = threading.Thread(target=srv.serve, daemon=True)
    thread.start()
    to_server, from_server = os.fdopen(w1, "wb"), os.fdopen(r2, "rb")

    def call(id, name, arguments):
        to_server.write((json.dumps({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                                     "params": {"name": name, "arguments": arguments}}) + "\n").encode())
        to_server.flush()
        while True:
            msg = json.loads(from_server.readline())
            if msg.get("id") == id:
                return msg["result"]

    sids = [call(i, "codex", {"prompt": "p"})["structuredContent"]["sessionId"] for i in range(3)]
    assert call(10, "codex-reply", {"sessionId": sids[1], "prompt": "q"})["content"][0]["text"] == "turn 2: q"
    call(11, "codex", {"prompt": "p"})  # a 4th session: the two least recently used go
    deadline = time.monotonic() + 5
    while not (made[0].shut_down and made[2].shut_down) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [s.shut_down for s in made] == [True, False, True, False]
    assert call(12, "codex-reply", {"sessionId": sids[0], "prompt": "q"})["isError"] is True
    assert call(13, "codex-reply", {"sessionId": sids[1], "prompt": "q"})["content"][0]["text"] == "turn 3: q"
    to_server.close()
    thread.join(10)
    assert not thread.is_alive() and all(s.shut_down for s in made)


def test_sdk_early_1x_client_without_elicitation(codex_home, tmp_path):
    need_installed(MCP1_OLD_PYTHON, "mcp 1.9.x is not installed in build/mcp1-old: run .ci/setup-mcp.sh")
    got = _run_sdk(MCP1_OLD_PYTHON, _sdk_plan(codex_home, tmp_path))
    assert got["sdk"].startswith("1.9.")
    assert got["protocolVersion"] == "2025-03-26"  # the client's version, echoed
    assert _check_sdk_run(got) == "decision: denied"  # it cannot answer elicitation/create


def test_a_terminal_gets_a_hint(codex_home):
    pexpect = pytest.importorskip("pexpect")
    child = pexpect.spawn(sys.executable, [str(REPO / "codex.py"), "mcp"], env=dict(os.environ, CODEX_HOME=str(codex_home)),
                          timeout=20, encoding="utf-8")
    child.expect("serving MCP over stdin/stdout")
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_ctrl_c_ends_the_zipapp_server_with_130_not_an_abort(dist_codex, codex_home):
    """A reader thread blocked on stdin must not turn Ctrl-C into "Fatal Python error ... <stdin>"
    (SIGABRT) at interpreter shutdown: `codex mcp` exits 130 like every other front end."""
    import signal

    proc = subprocess.Popen([str(dist_codex), "mcp"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=dict(os.environ, CODEX_HOME=str(codex_home)))
    try:
        proc.stdin.write(b'{"jsonrpc":"2.0","id":1,"method":"ping"}\n')
        proc.stdin.flush()
        assert proc.stdout.readline()  # serving: the reader thread is now blocked on stdin
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert b"Fatal Python error" not in err and b"interrupted" in err
