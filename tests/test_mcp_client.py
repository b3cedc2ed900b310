"""§14 MCP client: real servers (the SDK-built one, hand-written edge cases, npm servers)."""
import functools
import json
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

import codex
from support.qa_need import need_installed
from support.wait import wait_until

pytestmark = pytest.mark.timeout(120)

SUPPORT = Path(__file__).resolve().parent / "support"
REPO = SUPPORT.parent.parent
SDK_SERVER = [str(SUPPORT / "mcp_sdk_server.py")]
RAW_SERVER = [str(SUPPORT / "mcp_raw_server.py")]
NPM_BIN = REPO / "build" / "npm-mcp" / "node_modules" / ".bin"


def server(args, **extra):
    spec = {"command": sys.executable, "args": list(args), "env": {}, "startup_timeout_sec": 20,
            "tool_timeout_sec": 30, "enabled": True, "required": False, "cwd": None}
    spec.update(extra)
    return spec


def manager(tmp_path, servers):
    cfg = SimpleNamespace(mcp_servers=servers, codex_home=tmp_path, cwd=None)
    return codex.McpConnectionManager(cfg)


@pytest.fixture(scope="module")
def sdk(tmp_path_factory):
    """One manager with the SDK server (paginated: 39 tools in pages of 7), shared."""
    home = tmp_path_factory.mktemp("home")
    os.environ["CODEX_TEST_SECRET_KEY"] = "sk-should-not-leak-123456"
    mgr = codex.McpConnectionManager(SimpleNamespace(codex_home=home, cwd=None, mcp_servers={
        "sdk": server(SDK_SERVER + ["--tools", "30", "--page-size", "7"], env={"FOO": "bar", "NUM": 5}),
    }))
    mgr.start()
    assert mgr.wait_ready(30)
    yield mgr
    mgr.shutdown()


# -- pure functions ------------------------------------------------------------------

def test_qualified_names_follow_upstream():
    assert codex.qualify_tool_name("fs", "read_file") == "fs__read_file"
    long = codex.qualify_tool_name(
        "my_server", "extremely_lengthy_function_name_that_absolutely_surpasses_all_reasonable_limits")
    assert long == "my_server__extremely_lena02e507efc5a9de88637e436690364fd4219e4ef"
    assert len(long) == 64
    assert codex.qualify_tool_name("w", "get.weather v2") == "w__get_weather_v2"
    exact = "s__" + "t" * 61
    assert codex.qualify_tool_name("s", "t" * 61) == exact


def test_schema_passes_through_unchanged():
    schema = {"type": "object", "properties": {"n": {"type": "integer"}, "c": {"anyOf": [{"type": "string"}, {"$ref": "#/$defs/X"}]}},
              "$defs": {"X": {"type": "integer"}}}
    assert codex.sanitize_input_schema(schema) == schema
    assert codex.sanitize_input_schema({"type": "object"}) == {"type": "object", "properties": {}}
    assert codex.sanitize_input_schema(None) == {"type": "object", "properties": {}}
    assert codex.sanitize_input_schema({"properties": {}})["type"] == "object"


def test_result_formatting():
    fmt = codex.format_mcp_result_for_model
    assert fmt({"content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}) == "a\nb"
    assert fmt({"content": [{"type": "text", "text": "bad"}], "isError": True}) == "Error: bad"
    assert fmt({"content": [], "structuredContent": {"x": 1}}) == '{"x": 1}'
    img = fmt({"content": [{"type": "image", "data": "QUJD", "mimeType": "image/png"}]})
    assert img.startswith("<image content: image/png") and "QUJD" not in img
    res = fmt({"content": [{"type": "resource", "resource": {"uri": "file:///a", "text": "body"}},
                           {"type": "resource_link", "uri": "file:///b", "name": "b"}]})
    assert "embedded resource: file:///a" in res and "body" in res and "link: file:///b" in res
    lines = codex.format_mcp_result_for_display({"content": [{"type": "text", "text": "\n".join(map(str, range(9)))}]})
    assert lines == ["0", "1", "2", "3", "4", "... (4 more lines)"]


def test_server_env_is_a_whitelist():
    env = codex._mcp_server_env({"A": "1", "B": True}, {"PATH": "/bin", "HOME": "/h", "OPENAI_API_KEY": "sk-x", "RANDOM": "r"})
    assert env == {"PATH": "/bin", "HOME": "/h", "A": "1", "B": "true"}


# -- the SDK server ------------------------------------------------------------------

def test_sdk_server_tools_all_pages_and_schemas(sdk):
    tools = sdk.tools()
    assert len(tools) == 39  # 9 tools + 30 bulk tools across 6 pages
    assert "sdk__bulk_29" in tools and "sdk__echo" in tools
    assert tools["sdk__add"]["inputSchema"]["properties"] == {"a": {"type": "integer"}, "b": {"type": "integer"}}
    pick = tools["sdk__pick"]["inputSchema"]
    assert pick["properties"]["choice"]["anyOf"][1] == {"type": "integer", "minimum": 0}
    assert pick["properties"]["where"] == {"$ref": "#/$defs/Location"}
    assert pick["$defs"]["Location"]["required"] == ["lat", "lon"]
    assert sdk.lookup("sdk__add") == ("sdk", "add")
    assert sdk.lookup("nope__x") is None
    row = sdk.status()[0]
    assert row["status"] == "ready" and row["protocolVersion"] == "2025-11-25" and len(row["tools"]) == 39


def test_sdk_server_calls(sdk):
    assert sdk.call("sdk__echo", {"text": "hi"})["content"] == [{"type": "text", "text": "hi"}]
    assert codex.format_mcp_result_for_model(sdk.call("sdk__add", {"a": 2, "b": 40})) == "42"
    picked = sdk.call("sdk__pick", {"choice": 3, "where": {"lat": 1.5, "lon": 2}})
    assert json.loads(picked["content"][0]["text"]) == {"choice": 3, "where": {"lat": 1.5, "lon": 2}}
    image = sdk.call("sdk__image", {})
    assert image["content"][0]["type"] == "image" and image["content"][0]["mimeType"] == "image/png"
    assert codex.format_mcp_result_for_model(image).splitlines()[1] == "an image"
    res = codex.format_mcp_result_for_model(sdk.call("sdk__resource", {}))
    assert "resource body" in res and "link: file:///other.txt" in res
    failed = sdk.call("sdk__fail", {})
    assert failed["isError"] is True
    assert codex.format_mcp_result_for_model(failed) == "Error: it went wrong"
    assert sdk.call("sdk__bulk_29", {"n": 1})["content"][0]["text"] == "bulk_29"
    with pytest.raises(codex.McpError, match="unknown MCP tool"):
        sdk.call("sdk__nope", {})


def test_sdk_server_env_whitelist(sdk):
    read = lambda name: sdk.call("sdk__env", {"name": name})["content"][0]["text"]
    assert read("FOO") == "bar"
    assert read("NUM") == "5"
    assert read("CODEX_TEST_SECRET_KEY") == "<unset>"
    assert read("PATH") == os.environ["PATH"]


def test_call_timeout_then_next_call_works(sdk):
    began = time.monotonic()
    with pytest.raises(codex.McpError, match="timed out"):
        sdk.call("sdk__sleep", {"seconds": 10}, timeout=0.5)
    assert time.monotonic() - began < 3
    assert sdk.call("sdk__echo", {"text": "still alive"})["content"][0]["text"] == "still alive"


def test_cancelled_call_returns_at_once(sdk):
    import threading

    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    began = time.monotonic()
    with pytest.raises(codex.McpError, match="cancelled"):
        sdk.call("sdk__sleep", {"seconds": 20}, cancel=cancel)
    assert time.monotonic() - began < 2
    assert sdk.call("sdk__echo", {"text": "after"})["content"][0]["text"] == "after"


def test_concurrent_calls(sdk):
    import threading

    out = {}

    def go(i):
        out[i] = sdk.call("sdk__echo", {"text": "n%d" % i})["content"][0]["text"]

    threads = [threading.Thread(target=go, args=(i,)) for i in range(8)]
    [t.start() for t in threads]
    [t.join(20) for t in threads]
    assert out == {i: "n%d" % i for i in range(8)}


def test_tools_list_changed(sdk):
    assert "sdk__grown" not in sdk.tools()
    sdk.call("sdk__grow", {})
    deadline = time.monotonic() + 10
    while "sdk__grown" not in sdk.tools() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "sdk__grown" in sdk.tools()


def test_long_server_name_is_hashed_and_callable(tmp_path):
    name = "s" * 60
    mgr = manager(tmp_path, {name: server(SDK_SERVER)})
    try:
        mgr.start()
        assert mgr.wait_ready(30)
        tools = mgr.tools()
        assert all(len(q) == 64 for q in tools)
        q = codex.qualify_tool_name(name, "echo")
        assert tools[q]["name"] == "echo"
        assert mgr.lookup(q) == (name, "echo")
        assert mgr.call(q, {"text": "x"})["content"][0]["text"] == "x"
    finally:
        mgr.shutdown()


# -- failures --------------------------------------------------------------------------

def test_start_is_not_blocked_by_slow_or_broken_servers(tmp_path):
    mgr = manager(tmp_path, {
        "crash": server(["-c", "import sys; sys.stderr.write('boom: missing token\\n'); sys.exit(3)"]),
        "silent": server(RAW_SERVER + ["--silent"], startup_timeout_sec=1.5),
        "good": server(RAW_SERVER),
    })
    try:
        began = time.monotonic()
        mgr.start()
        assert time.monotonic() - began < 0.5  # nothing waited for
        assert mgr.wait_ready(20)
        assert list(mgr.tools()) == ["good__hello"]
        failures = mgr.failures()
        assert len(failures) == 2
        crash = [f for f in failures if "`crash`" in f][0]
        assert crash.startswith("MCP client for `crash` failed to start:")
        assert "code 3" in crash and "boom: missing token" in crash and "\n" not in crash
        silent = [f for f in failures if "`silent`" in f][0]
        assert "no answer to `initialize` within 1.5s" in silent and "startup_timeout_sec" in silent
        assert mgr.new_failures() == failures
        assert mgr.new_failures() == []  # each failure is reported once
        assert mgr.call("good__hello", {})["content"][0]["text"] == "hello"
        with pytest.raises(codex.McpError, match="not available"):
            mgr.call_tool("crash", "x", {})
        log = (tmp_path / "log" / "mcp-crash.log").read_text()
        assert "boom: missing token" in log
        assert oct((tmp_path / "log" / "mcp-crash.log").stat().st_mode & 0o777) == "0o600"
    finally:
        mgr.shutdown()


def test_stderr_tail_keeps_the_last_lines(tmp_path):
    mgr = manager(tmp_path, {"noisy": server(RAW_SERVER + ["--silent", "--stderr-lines", "100"], startup_timeout_sec=1)})
    try:
        mgr.start().wait_ready(20)
        failure = mgr.failures()[0]
        assert "stderr line 99" in failure and "stderr line 97" in failure and "stderr line 96" not in failure
    finally:
        mgr.shutdown()


def test_missing_command_and_bad_name(tmp_path):
    mgr = manager(tmp_path, {
        "nocmd": {"command": "definitely-not-a-command-xyz", "args": []},
        "bad name": server(RAW_SERVER),
        "off": server(RAW_SERVER, enabled=False),
    })
    try:
        mgr.start().wait_ready(10)
        text = "\n".join(mgr.failures())
        assert "command `definitely-not-a-command-xyz` not found on PATH" in text
        assert "invalid server name 'bad name'" in text
        states = {r["name"]: r["status"] for r in mgr.status()}
        assert states == {"bad name": "failed", "nocmd": "failed", "off": "disabled"}
    finally:
        mgr.shutdown()


def test_required_server_is_waited_for(tmp_path):
    mgr = manager(tmp_path, {"must": server(RAW_SERVER, required=True)})
    try:
        mgr.start()
        assert list(mgr.tools()) == ["must__hello"]  # ready when start() returns
    finally:
        mgr.shutdown()
    mgr = manager(tmp_path, {"must": server(RAW_SERVER + ["--silent"], required=True, startup_timeout_sec=0.5)})
    try:
        with pytest.raises(codex.McpError, match="required MCP server `must` failed to start"):
            mgr.start()
    finally:
        mgr.shutdown()


def test_odd_tool_names_are_sanitized_and_routed(tmp_path):
    mgr = manager(tmp_path, {"odd": server(RAW_SERVER + ["--extra-tool", "get.weather v2", "--extra-tool", "get_weather_v2"])})
    try:
        mgr.start().wait_ready(20)
        assert sorted(mgr.tools()) == ["odd__get_weather_v2", "odd__hello"]  # the clash: first one wins
        assert mgr.lookup("odd__get_weather_v2") == ("odd", "get.weather v2")
        assert mgr.call("odd__get_weather_v2", {})["content"][0]["text"] == "called get.weather v2"
    finally:
        mgr.shutdown()


def test_protocol_version_negotiation(tmp_path):
    record = tmp_path / "rec.jsonl"
    mgr = manager(tmp_path, {
        "old": server(RAW_SERVER + ["--version", "2024-11-05", "--record", str(record)]),
        "future": server(RAW_SERVER + ["--version", "2099-01-01"]),
    })
    try:
        mgr.start().wait_ready(20)
        assert mgr.status()[1]["protocolVersion"] == "2024-11-05"
        assert "old__hello" in mgr.tools()
        [failure] = mgr.failures()
        assert "`future`" in failure and "'2099-01-01'" in failure and "2024-11-05" in failure
        msgs = [json.loads(line) for line in record.read_text().splitlines()]
        init = msgs[0]
        assert init["method"] == "initialize" and init["id"] == 1
        assert init["params"]["protocolVersion"] == "2025-11-25"
        assert init["params"]["clientInfo"]["name"] == "codex-mcp-client"
        assert msgs[1] == {"jsonrpc": "2.0", "method": "notifications/initialized"}
        assert msgs[2]["method"] == "tools/list"
    finally:
        mgr.shutdown()


def test_abandoned_calls_are_cancelled_on_the_server(tmp_path):
    import threading

    record = tmp_path / "rec.jsonl"
    mgr = manager(tmp_path, {"h": server(RAW_SERVER + ["--hang-calls", "--record", str(record)])})
    try:
        mgr.start().wait_ready(20)
        with pytest.raises(codex.McpError, match="timed out after 0.3s"):
            mgr.call("h__hello", {}, timeout=0.3)
        cancel = threading.Event()
        threading.Timer(0.2, cancel.set).start()
        with pytest.raises(codex.McpError, match="cancelled"):
            mgr.call("h__hello", {"n": 2}, cancel=cancel)
        wait_until(lambda: record.read_text().count("notifications/cancelled") >= 2)
        msgs = [json.loads(line) for line in record.read_text().splitlines()]
        calls = [m["id"] for m in msgs if m.get("method") == "tools/call"]
        cancels = [m["params"] for m in msgs if m.get("method") == "notifications/cancelled"]
        assert cancels == [{"requestId": calls[0], "reason": "timed out"}, {"requestId": calls[1], "reason": "cancelled"}]
    finally:
        mgr.shutdown()


def test_stdout_noise_is_skipped(tmp_path):
    mgr = manager(tmp_path, {"chatty": server(RAW_SERVER + ["--noise"])})
    try:
        mgr.start().wait_ready(20)
        assert mgr.failures() == [] and list(mgr.tools()) == ["chatty__hello"]
    finally:
        mgr.shutdown()


def test_server_requests_are_answered(tmp_path):
    record = tmp_path / "rec.jsonl"
    mgr = manager(tmp_path, {"p": server(RAW_SERVER + ["--ping-client", "--record", str(record)])})
    try:
        mgr.start().wait_ready(20)
        deadline = time.monotonic() + 5
        answers = []
        while time.monotonic() < deadline and len(answers) < 2:
            answers = [m for m in map(json.loads, record.read_text().splitlines()) if str(m.get("id", "")).startswith("srv-")]
            time.sleep(0.05)
        by_id = {m["id"]: m for m in answers}
        assert by_id["srv-1"]["result"] == {}
        assert by_id["srv-2"]["error"]["code"] == -32601
    finally:
        mgr.shutdown()


def test_server_dying_during_a_call(tmp_path):
    mgr = manager(tmp_path, {"dies": server(RAW_SERVER + ["--die-on-call"])})
    try:
        mgr.start().wait_ready(20)
        with pytest.raises(codex.McpError, match="connection closed"):
            mgr.call("dies__hello", {})
        assert mgr.status()[0]["status"] == "failed"
        assert "fatal: tool crashed" in mgr.status()[0]["error"]
    finally:
        mgr.shutdown()


def test_shutdown_stops_the_process_group(tmp_path):
    psutil = pytest.importorskip("psutil")
    child_pid = tmp_path / "child.pid"
    script = ("import subprocess,sys,time; p=subprocess.Popen(['sleep','60']); open(%r,'w').write(str(p.pid)); "
              "time.sleep(60)" % str(child_pid))
    mgr = manager(tmp_path, {"s": server(["-c", script], startup_timeout_sec=0.5)})
    mgr.start()
    deadline = time.monotonic() + 10
    while not child_pid.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    mgr.wait_ready(10)
    mgr.shutdown()
    pid = int(child_pid.read_text())

    def gone():
        try:
            return not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True
    assert wait_until(gone, timeout=5)


# -- npm reference servers ------------------------------------------------------------

def _npm(name):
    return need_installed(NPM_BIN / name, "%s not installed: run .ci/setup-mcp.sh (npm install --prefix build/npm-mcp)" % name)


def test_npm_server_everything(tmp_path):
    mgr = manager(tmp_path, {"everything": {"command": _npm("mcp-server-everything"), "args": [], "startup_timeout_sec": 30}})
    try:
        mgr.start().wait_ready(40)
        assert mgr.failures() == []
        tools = mgr.tools()
        assert "everything__echo" in tools and "everything__get-sum" in tools
        assert codex.format_mcp_result_for_model(mgr.call("everything__echo", {"message": "hi"})) == "Echo: hi"
        total = codex.format_mcp_result_for_model(mgr.call("everything__get-sum", {"a": 2, "b": 3}))
        assert "5" in total
        img = mgr.call("everything__get-tiny-image", {})
        assert any(b.get("type") == "image" for b in img["content"])
    finally:
        mgr.shutdown()


def test_npm_server_filesystem(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (root / "hello.txt").write_text("hello from disk\n")
    mgr = manager(tmp_path, {"fs": {"command": _npm("mcp-server-filesystem"), "args": [str(root)], "startup_timeout_sec": 30}})
    try:
        mgr.start().wait_ready(40)
        assert mgr.failures() == []
        text = codex.format_mcp_result_for_model(mgr.call("fs__read_text_file", {"path": str(root / "hello.txt")}))
        assert "hello from disk" in text
        listing = codex.format_mcp_result_for_model(mgr.call("fs__list_directory", {"path": str(root)}))
        assert "hello.txt" in listing
        denied = mgr.call("fs__read_text_file", {"path": "/etc/hostname"})
        assert denied.get("isError") is True
    finally:
        mgr.shutdown()


# -- the CLI ----------------------------------------------------------------------------

def _write_config(home, text):
    (home / "config.toml").write_text(text)


def test_cli_mcp_list_and_call(run_codex, codex_home, tmp_path):
    # run outside the repository: there the venv's python is a file sandboxed commands may write
    run_codex = functools.partial(run_codex, cwd=tmp_path)
    py = json.dumps(sys.executable)
    _write_config(codex_home, """
[mcp_servers.sdk]
command = %s
args = [%s]
env = { FOO = "from-config" }

[mcp_servers.crash]
command = %s
args = ["-c", "import sys; sys.stderr.write('kaput\\\\n'); sys.exit(4)"]
required = true

[mcp_servers.off]
command = "nothing"
enabled = false
required = true
""" % (py, json.dumps(SDK_SERVER[0]), py))
    out = run_codex("mcp", "list")
    assert out.returncode == 1, out.stderr  # `crash` failed: a script can tell
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["NAME", "STATUS", "TOOLS", "TRANSPORT", "COMMAND/URL"]
    assert lines[1].split()[:4] == ["crash", "failed", "-", "stdio"]
    assert lines[2].split()[:4] == ["off", "disabled", "-", "stdio"]
    assert lines[3].split()[:4] == ["sdk", "ready", "9", "stdio"]
    assert "kaput" in out.stdout
    js = json.loads(run_codex("mcp", "list", "--json").stdout)
    assert [r["name"] for r in js] == ["crash", "off", "sdk"] and js[2]["tools"][0] == "echo"

    out = run_codex("mcp", "call", "sdk", "add", '{"a": 1, "b": 2}')
    assert (out.returncode, out.stdout) == (0, "3\n")
    out = run_codex("mcp", "call", "sdk", "env", '{"name": "FOO"}')
    assert out.stdout == "from-config\n"
    out = run_codex("mcp", "call", "sdk", "fail")
    assert (out.returncode, out.stdout) == (1, "it went wrong\n")
    out = run_codex("mcp", "call", "sdk", "echo", '{"text": "j"}', "--json")
    assert json.loads(out.stdout)["content"] == [{"type": "text", "text": "j"}]
    out = run_codex("mcp", "call", "sdk", "echo", "{not json")
    assert out.returncode == 2 and "must be a JSON object" in out.stderr and "Traceback" not in out.stderr
    out = run_codex("mcp", "call", "nosuch", "echo")
    assert out.returncode == 2 and "no MCP server named `nosuch`" in out.stderr
    out = run_codex("mcp", "call", "crash", "x")
    assert out.returncode == 1 and "kaput" in out.stderr and "Traceback" not in out.stderr


def test_cli_mcp_list_server_that_stops_reading_gets_one_plain_line(run_codex, codex_home, tmp_path):
    """A server that answers `initialize` and closes its stdin: no raw "Broken pipe"."""
    run_codex = functools.partial(run_codex, cwd=tmp_path)  # not in the repository (its venv's python)
    deaf = codex_home / "deaf.py"  # not in /tmp, where commands may write: $CODEX_HOME is read-only for them
    deaf.write_text(
        "import sys, json, os, time\nr = json.loads(sys.stdin.readline())\nos.close(0)\n"
        "print(json.dumps({'jsonrpc': '2.0', 'id': r['id'], 'result': {'protocolVersion': '2025-06-18', "
        "'capabilities': {'tools': {}}, 'serverInfo': {'name': 'd', 'version': '1'}}}), flush=True)\n"
        "time.sleep(5)\n")
    (codex_home / "config.toml").write_text("[mcp_servers.deaf]\ncommand = %s\nargs = [%s]\n"
                                           % (json.dumps(sys.executable), json.dumps(str(deaf))))
    out = run_codex("mcp", "list")
    assert out.returncode == 1, out.stdout + out.stderr
    lines = [l for l in out.stdout.splitlines() if l.startswith("deaf:")]
    assert len(lines) == 1 and "stopped reading its input" in lines[0], out.stdout
    assert "Broken pipe" not in out.stdout + out.stderr and "Errno" not in out.stdout
    assert run_codex("mcp", "list", "--json").returncode == 1


def test_cli_mcp_list_without_servers(run_codex):
    out = run_codex("mcp", "list")
    assert out.returncode == 0 and "No MCP servers configured" in out.stdout
