"""MCP end to end: MCP clients (the Python SDK 2.x and 1.x, raw JSON-RPC) drive `codex mcp`,
whose real agent Session talks to the scripted model server over HTTP and to real MCP
servers (codex as both MCP server and MCP client in one run).
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
from support.model_server import ModelServer, Turn
from support.qa_need import need_installed

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.skipif(not hasattr(codex, "Session"), reason="the agent Session (§15) has not landed on this branch"),
]

SUPPORT = Path(__file__).resolve().parent / "support"
REPO = SUPPORT.parent.parent
SDK_CLIENT = str(SUPPORT / "mcp_sdk_client.py")
SDK_SERVER = str(SUPPORT / "mcp_sdk_server.py")
MCP1_PYTHON = REPO / "build" / "mcp1" / "bin" / "python"


@pytest.fixture
def model():
    with ModelServer() as s:
        yield s


@pytest.fixture
def workdir(tmp_path):
    root = tmp_path / "work"
    (root / ".git").mkdir(parents=True)
    return root


def write_config(home, model, wire="responses", extra=""):
    (home / "config.toml").write_text(
        'model = "gpt-5"\nmodel_provider = "mock"\napproval_policy = "never"\nsandbox_mode = "danger-full-access"\n'
        '[model_providers.mock]\nname = "mock"\nbase_url = "%s"\nwire_api = "%s"\n'
        "request_max_retries = 0\nstream_max_retries = 0\nstream_idle_timeout_ms = 20000\n%s" % (model.url, wire, extra))


def run_sdk(python, plan):
    out = subprocess.run([str(python), SDK_CLIENT, json.dumps(plan)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-4000:]
    return json.loads(out.stdout)


def plan_for(home, workdir, steps, elicit="accept"):
    return {"command": sys.executable, "args": [str(REPO / "codex.py"), "mcp"], "cwd": str(workdir), "elicit": elicit,
            "env": {"CODEX_HOME": str(home), "PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root")},
            "steps": steps}


def user_texts(request):
    out = []
    for item in request.body.get("input") or request.body.get("messages") or []:
        if item.get("role") == "user":
            content = item.get("content")
            out.append(content if isinstance(content, str) else "".join(p.get("text", "") for p in content))
    return out


def test_sdk_2x_client_runs_real_turns(codex_home, workdir, model):
    write_config(codex_home, model)
    model.enqueue(
        Turn().text("hi there"),
        Turn().text("second answer"),
        Turn().function_call("shell", {"command": ["touch", "made.txt"]}, call_id="c1"),
        Turn().text("made it"),
    )
    got = run_sdk(sys.executable, plan_for(codex_home, workdir, [
        {"tool": "codex", "arguments": {"prompt": "say hi"}},
        {"tool": "codex-reply", "arguments": {"sessionId": "$SESSION", "prompt": "and again"}},
        {"tool": "codex", "arguments": {"prompt": "make a file", "approval-policy": "untrusted"}},
    ]))
    texts = [r["content"][0]["text"] for r in got["results"]]
    assert texts == ["hi there", "second answer", "made it"]
    assert not any(r.get("isError") for r in got["results"])
    reqs = model.model_requests()
    assert "say hi" in user_texts(reqs[0])[-1]
    assert [t for t in user_texts(reqs[1]) if "say hi" in t or "and again" in t][-2:] == ["say hi", "and again"]
    assert (workdir / "made.txt").exists()  # approved through elicitation/create, then run
    [ask] = got["elicitations"]
    assert ask["message"] == "Allow Codex to run `touch made.txt` in `%s`?" % workdir.resolve()
    outputs = [i for i in reqs[3].body["input"] if i.get("type") == "function_call_output"]
    assert outputs and outputs[-1]["call_id"] == "c1"


def test_sdk_client_decline_keeps_the_command_from_running(codex_home, workdir, model):
    write_config(codex_home, model)
    model.enqueue(Turn().function_call("shell", {"command": ["touch", "nope.txt"]}, call_id="c1"), Turn().text("ok, I won't"))
    got = run_sdk(sys.executable, plan_for(codex_home, workdir, [
        {"tool": "codex", "arguments": {"prompt": "make a file", "approval-policy": "untrusted"}}], elicit="decline"))
    assert got["results"][0]["content"][0]["text"] == "ok, I won't"
    assert not (workdir / "nope.txt").exists()
    output = [i for i in model.model_requests()[1].body["input"] if i.get("type") == "function_call_output"][-1]
    assert "rejected" in output["output"]


def test_sdk_1x_client_runs_a_real_turn(codex_home, workdir, model):
    need_installed(MCP1_PYTHON, "the mcp 1.x SDK is not installed in build/mcp1: run .ci/setup-mcp.sh")
    write_config(codex_home, model, wire="chat")
    model.enqueue(Turn().text("hello from chat"))
    got = run_sdk(MCP1_PYTHON, plan_for(codex_home, workdir, [{"tool": "codex", "arguments": {"prompt": "hi"}}]))
    assert got["sdk"].startswith("1.")
    assert got["results"][0]["content"][0]["text"] == "hello from chat"
    assert model.model_requests()[0].api == "chat"


def test_mcp_tools_from_real_servers_reach_the_model(codex_home, workdir, model):
    extra = (
        "[mcp_servers.sdk]\ncommand = %s\nargs = [%s]\nrequired = true\nstartup_timeout_sec = 30\n"
        "[mcp_servers.broken]\ncommand = %s\nargs = [\"-c\", \"import sys; sys.stderr.write('no token\\\\n'); sys.exit(2)\"]\n"
        % (json.dumps(sys.executable), json.dumps(SDK_SERVER), json.dumps(sys.executable)))
    write_config(codex_home, model, extra=extra)
    model.enqueue(Turn().function_call("sdk__add", {"a": 2, "b": 40}, call_id="m1"), Turn().text("the sum is 42"))
    c = RawMcpClient([sys.executable, str(REPO / "codex.py"), "mcp"], env=dict(os.environ, CODEX_HOME=str(codex_home)),
                     cwd=str(workdir))
    try:
        c.initialize()
        rid = c.request("tools/call", {"name": "codex", "arguments": {"prompt": "add 2 and 40"}})
        result = c.response(rid, timeout=60)
        assert result["result"]["content"][0]["text"] == "the sum is 42"
        events = [m["params"]["msg"] for m in c.messages if m.get("method") == "codex/event"]
        kinds = [e["type"] for e in events]
        assert "mcp_tool_call_begin" in kinds and "mcp_tool_call_end" in kinds
        begin = events[kinds.index("mcp_tool_call_begin")]
        assert begin["invocation"] == {"server": "sdk", "tool": "add", "arguments": {"a": 2, "b": 40}}
        errors = [e["message"] for e in events if e["type"] == "error"]
        assert len([e for e in errors if "`broken`" in e]) == 1 and "no token" in errors[0]
    finally:
        c.close()
    first, second = model.model_requests()[:2]
    tools = {t.get("name"): t for t in first.body["tools"]}
    assert tools["sdk__add"]["parameters"]["properties"] == {"a": {"type": "integer"}, "b": {"type": "integer"}}
    pick = tools["sdk__pick"]["parameters"]
    assert pick["properties"]["choice"] == {"anyOf": [{"type": "string"}, {"type": "integer", "minimum": 0}]}
    assert pick["properties"]["where"] == {"$ref": "#/$defs/Location"} and "Location" in pick["$defs"]
    assert len([n for n in tools if n.startswith("sdk__")]) == 9
    output = [i for i in second.body["input"] if i.get("type") == "function_call_output"][-1]
    assert (output["call_id"], output["output"]) == ("m1", "42")


def test_cancel_stops_a_real_turn(codex_home, workdir, model):
    write_config(codex_home, model)
    model.enqueue(Turn().delay(30).text("too late"))
    c = RawMcpClient([sys.executable, str(REPO / "codex.py"), "mcp"], env=dict(os.environ, CODEX_HOME=str(codex_home)),
                     cwd=str(workdir))
    try:
        c.initialize()
        rid = c.request("tools/call", {"name": "codex", "arguments": {"prompt": "take your time"}})
        model.wait_for_requests(1, timeout=30)
        began = time.monotonic()
        c.notify("notifications/cancelled", {"requestId": rid})
        aborted = c.next(lambda m: m.get("method") == "codex/event" and m["params"]["msg"]["type"] == "turn_aborted", timeout=15)
        assert time.monotonic() - began < 10
        assert aborted["params"]["_meta"]["requestId"] == rid
        assert c.call("ping")["result"] == {}
        assert not [m for m in c.messages if m.get("id") == rid and "method" not in m]
    finally:
        assert c.close(timeout=20) == 0


def test_concurrent_real_sessions(codex_home, workdir, model):
    write_config(codex_home, model)
    model.enqueue(*[Turn().text("answer") for _ in range(3)])
    c = RawMcpClient([sys.executable, str(REPO / "codex.py"), "mcp"], env=dict(os.environ, CODEX_HOME=str(codex_home)),
                     cwd=str(workdir))
    try:
        c.initialize()
        ids = [c.request("tools/call", {"name": "codex", "arguments": {"prompt": "q%d" % i}}) for i in range(3)]
        results = [c.response(i, timeout=60)["result"] for i in ids]
        assert [r["content"][0]["text"] for r in results] == ["answer"] * 3
        assert len({r["structuredContent"]["sessionId"] for r in results}) == 3
        prompts = sorted(user_texts(r)[-1] for r in model.model_requests())
        assert prompts == ["q0", "q1", "q2"]
    finally:
        c.close()


def test_patch_approval_through_elicitation(codex_home, workdir, model):
    write_config(codex_home, model)
    patch = "*** Begin Patch\n*** Add File: added.txt\n+from the patch\n*** End Patch"
    model.enqueue(Turn().function_call("shell", {"command": ["apply_patch", patch]}, call_id="p1"), Turn().text("patched"))
    c = RawMcpClient([sys.executable, str(REPO / "codex.py"), "mcp"], env=dict(os.environ, CODEX_HOME=str(codex_home)),
                     cwd=str(workdir))
    try:
        c.initialize()
        rid = c.request("tools/call", {"name": "codex", "arguments": {"prompt": "add a file", "approval-policy": "untrusted"}})
        ask = c.next(lambda m: m.get("method") == "elicitation/create", timeout=60)
        p = ask["params"]
        assert p["message"] == "Allow Codex to apply proposed code changes?"
        assert p["codex_elicitation"] == "patch-approval" and p["codex_mcp_tool_call_id"] == str(rid)
        assert p["codex_call_id"] == "p1"
        [(path, change)] = p["codex_changes"].items()
        assert path.endswith("added.txt") and "from the patch" in json.dumps(change)
        assert not (workdir / "added.txt").exists()
        c.send({"jsonrpc": "2.0", "id": ask["id"], "result": {"decision": "approved"}})  # upstream's answer shape
        assert c.response(rid, timeout=60)["result"]["content"][0]["text"] == "patched"
        assert (workdir / "added.txt").read_text() == "from the patch\n"
    finally:
        c.close()


def test_model_failure_is_an_error_result(codex_home, workdir, model):
    write_config(codex_home, model)
    model.enqueue(Turn.http_error(400, "bad request: unknown model"))
    got = run_sdk(sys.executable, plan_for(codex_home, workdir, [{"tool": "codex", "arguments": {"prompt": "hi"}}]))
    result = got["results"][0]
    assert result["isError"] is True
    assert result["content"][0]["text"].startswith("Codex runtime error: ")
    assert "unknown model" in result["content"][0]["text"]


def _sdk_server_config(name, required=True):
    return "[mcp_servers.%s]\ncommand = %s\nargs = [%s]\nrequired = %s\nstartup_timeout_sec = 30\n" % (
        name, json.dumps(sys.executable), json.dumps(SDK_SERVER), "true" if required else "false")


def test_hashed_tool_names_are_routed(codex_home, workdir, model):
    server_name = "a" * 62
    write_config(codex_home, model, extra=_sdk_server_config(server_name))
    qualified = codex.qualify_tool_name(server_name, "echo")
    assert len(qualified) == 64 and "__" not in qualified
    model.enqueue(Turn().function_call(qualified, {"text": "through the hash"}, call_id="h1"), Turn().text("done"))
    got = run_sdk(sys.executable, plan_for(codex_home, workdir, [{"tool": "codex", "arguments": {"prompt": "echo"}}]))
    assert got["results"][0]["content"][0]["text"] == "done"
    first, second = model.model_requests()[:2]
    assert qualified in [t.get("name") for t in first.body["tools"]]
    output = [i for i in second.body["input"] if i.get("type") == "function_call_output"][-1]
    assert (output["call_id"], output["output"]) == ("h1", "through the hash")


def test_cancel_during_a_slow_mcp_tool_call(codex_home, workdir, model, tmp_path):
    record = tmp_path / "calls.jsonl"
    raw = str(SUPPORT / "mcp_raw_server.py")
    write_config(codex_home, model, extra="[mcp_servers.slow]\ncommand = %s\nargs = [%s, \"--hang-calls\", \"--record\", %s]\n"
                 "required = true\n" % (json.dumps(sys.executable), json.dumps(raw), json.dumps(str(record))))
    model.enqueue(Turn().function_call("slow__hello", {}, call_id="s1"), Turn().text("never needed"))
    c = RawMcpClient([sys.executable, str(REPO / "codex.py"), "mcp"], env=dict(os.environ, CODEX_HOME=str(codex_home)),
                     cwd=str(workdir))
    try:
        c.initialize()
        rid = c.request("tools/call", {"name": "codex", "arguments": {"prompt": "wait"}})
        c.next(lambda m: m.get("method") == "codex/event" and m["params"]["msg"]["type"] == "mcp_tool_call_begin", timeout=60)
        began = time.monotonic()
        c.notify("notifications/cancelled", {"requestId": rid})
        c.next(lambda m: m.get("method") == "codex/event" and m["params"]["msg"]["type"] == "turn_aborted", timeout=20)
        assert time.monotonic() - began < 5  # not tool_timeout_sec (60 s)
        assert c.call("ping")["result"] == {}
        # the session's MCP client abandoned the call and told the server so
        deadline = time.monotonic() + 5
        cancels = []
        while not cancels and time.monotonic() < deadline:
            msgs = [json.loads(line) for line in record.read_text().splitlines()]
            cancels = [m for m in msgs if m.get("method") == "notifications/cancelled"]
            time.sleep(0.05)
        [call] = [m for m in msgs if m.get("method") == "tools/call"]
        assert cancels and cancels[0]["params"]["requestId"] == call["id"]
    finally:
        assert c.close(timeout=20) == 0


def test_codex_exec_shows_mcp_results(codex_home, workdir, model):
    write_config(codex_home, model, extra=_sdk_server_config("sdk"))
    model.enqueue(Turn().function_call("sdk__echo", {"text": "line one\nline two"}, call_id="e1"), Turn().text("echoed"))
    out = subprocess.run([sys.executable, str(REPO / "codex.py"), "exec", "--color", "never", "echo something"],
                         capture_output=True, text=True, timeout=120, cwd=str(workdir),
                         env=dict(os.environ, CODEX_HOME=str(codex_home)))
    assert out.returncode == 0, out.stderr
    both = out.stdout + out.stderr
    assert 'sdk.echo({"text":"line one\\nline two"})' in both
    assert "sdk.echo success in" in both
    shown = both[both.index("sdk.echo success in"):]
    assert "line one\n" in shown and "line two\n" in shown
    assert out.stdout.strip().endswith("echoed")


def test_slow_server_does_not_block_the_first_turn(codex_home, workdir, model):
    raw = str(SUPPORT / "mcp_raw_server.py")
    slow = "import runpy, sys, time; time.sleep(3); sys.argv = [%r]; runpy.run_path(%r, run_name='__main__')" % (raw, raw)
    write_config(codex_home, model, extra="[mcp_servers.late]\ncommand = %s\nargs = [\"-c\", %s]\nstartup_timeout_sec = 20\n"
                 % (json.dumps(sys.executable), json.dumps(slow)))
    model.enqueue(Turn().text("first"), Turn().text("second"))
    c = RawMcpClient([sys.executable, str(REPO / "codex.py"), "mcp"], env=dict(os.environ, CODEX_HOME=str(codex_home)),
                     cwd=str(workdir))
    try:
        c.initialize()
        began = time.monotonic()
        first = c.call("tools/call", {"name": "codex", "arguments": {"prompt": "quick"}}, timeout=30)["result"]
        assert first["content"][0]["text"] == "first"
        assert time.monotonic() - began < 2.5  # the server needs 3 s to start
        names = [t.get("name") for t in model.model_requests()[0].body["tools"]]
        assert "late__hello" not in names
        time.sleep(max(0.0, began + 4.5 - time.monotonic()))
        sid = first["structuredContent"]["sessionId"]
        second = c.call("tools/call", {"name": "codex-reply", "arguments": {"sessionId": sid, "prompt": "now"}}, timeout=30)
        assert second["result"]["content"][0]["text"] == "second"
        names = [t.get("name") for t in model.model_requests()[1].body["tools"]]
        assert "late__hello" in names  # it joined the session when it became ready
    finally:
        c.close()
