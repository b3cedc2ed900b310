"""§15 Agent with MCP servers: tools offered as server__tool, calls routed, events emitted."""
import json
import sys
import time

import pytest

import codex
from support.agent_env import drain_until, mock_config, user_input
from support.model_server import ModelServer, Turn

pytestmark = pytest.mark.timeout(60)

SERVER = str(codex.Path(__file__).resolve().parent / "support" / "agent_mcp_server.py")


def test_mcp_tools_offered_and_called(codex_home, tmp_path):
    with ModelServer() as server:
        servers = {"tester": {"command": sys.executable, "args": [SERVER]}}
        cfg = mock_config(server, codex_home, tmp_path, mcp_servers=servers)
        session = codex.Session(cfg).start()
        assert session.mcp is not None
        deadline = time.monotonic() + 10
        while "tester__echo" not in session.mcp.tools() and time.monotonic() < deadline:
            time.sleep(0.05)
        server.enqueue(
            Turn().function_call("tester__echo", {"text": "hi"}, call_id="m1")
                  .function_call("tester__boom", {}, call_id="m2")
                  .function_call("tester__echo", "{bad json", call_id="m3"),
            Turn().text("done"),
        )
        session.submit(user_input("use the tool"))
        msgs = drain_until(session, "task_complete")
        tools = {t["name"]: t for t in server.requests[0].body["tools"]}
        assert tools["tester__echo"]["parameters"]["properties"]["text"]["type"] == "string"
        assert tools["tester__echo"]["description"] == "Echo the text back"
        begin = next(m for m in msgs if m["type"] == "mcp_tool_call_begin")
        assert begin["invocation"] == {"server": "tester", "tool": "echo", "arguments": {"text": "hi"}}
        ends = [m for m in msgs if m["type"] == "mcp_tool_call_end"]
        assert "Ok" in ends[0]["result"] and set(ends[0]["duration"]) == {"secs", "nanos"}
        outs = {i["call_id"]: i["output"] for i in server.requests[1].body["input"] if i["type"] == "function_call_output"}
        assert "echo: hi" in outs["m1"]
        assert "it broke" in outs["m2"]
        assert outs["m3"].startswith("err: ")
        session.submit({"type": "list_mcp_tools"})
        listed = drain_until(session, "mcp_list_tools_response")[-1]
        assert set(listed["tools"]) >= {"tester__echo", "tester__boom"}
        session.shutdown()


def test_mcp_server_that_fails_to_start_is_reported(codex_home, tmp_path):
    with ModelServer() as server:
        servers = {"broken": {"command": "/nonexistent/mcp-server"}}
        server.enqueue(Turn().text("ok"))
        session = codex.Session(mock_config(server, codex_home, tmp_path, mcp_servers=servers)).start()
        session.submit(user_input("hi"))
        msgs = drain_until(session, "task_complete")
        session.shutdown()
        errors = [m["message"] for m in msgs if m["type"] == "error"]
        assert msgs[-1]["last_agent_message"] == "ok"
        assert not errors or "broken" in errors[0]
