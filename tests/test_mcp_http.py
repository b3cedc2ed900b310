"""§14 MCP client over streamable HTTP: the real `mcp` SDK server (SSE and JSON-response modes,
resumable or not, behind a bearer-token wrapper), npm server-everything in its HTTP mode,
tool filters, and the CLI (`codex mcp list|call`, `codex exec` with the scripted model)."""
import json
import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest

import codex
from support.model_server import ModelServer, Turn
from support.qa_need import need_installed

pytestmark = pytest.mark.timeout(120)

SUPPORT = Path(__file__).resolve().parent / "support"
REPO = SUPPORT.parent.parent
HTTP_SERVER = str(SUPPORT / "mcp_http_server.py")
SDK_SERVER = str(SUPPORT / "mcp_sdk_server.py")
NPM_BIN = REPO / "build" / "npm-mcp" / "node_modules" / ".bin"


@contextmanager
def http_server(tmp_path, *flags, env=None):
    """Start mcp_http_server.py; yield (url, log reader)."""
    log = tmp_path / ("http-log-%d.jsonl" % time.monotonic_ns())
    proc = subprocess.Popen([sys.executable, HTTP_SERVER, "--log", str(log)] + list(flags),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ, **(env or {})))
    try:
        line = proc.stdout.readline().decode()
        assert line.startswith("PORT "), proc.stderr.read().decode()[-2000:]
        url = "http://127.0.0.1:%d/mcp" % int(line.split()[1])

        def entries():
            return [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []

        yield url, entries
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def manager(tmp_path, **servers):
    return codex.McpConnectionManager(SimpleNamespace(codex_home=tmp_path, cwd=None, mcp_servers=servers))


def spec(url, **extra):
    out = {"url": url, "transport": "streamable_http", "startup_timeout_sec": 20, "tool_timeout_sec": 20}
    out.update(extra)
    return out


def wait_for(cond, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def text_of(result):
    return codex.format_mcp_result_for_model(result)


# -- the SDK server over HTTP ---------------------------------------------------------------

@pytest.mark.parametrize("mode", ["sse", "json"])
def test_sdk_http_server_session_headers_calls_and_shutdown(tmp_path, mode):
    flags = ["--json-response"] if mode == "json" else []
    with http_server(tmp_path, *flags, "--tools", "20", "--page-size", "6") as (url, entries):
        mgr = manager(tmp_path, h=spec(url))
        try:
            mgr.start()
            assert mgr.wait_ready(30) and mgr.failures() == []
            tools = mgr.tools()
            assert {"h__echo", "h__add", "h__bulk_19", "h__drop"} <= set(tools)  # all pages followed
            assert tools["h__add"]["inputSchema"]["properties"]["a"]["type"] == "integer"
            assert text_of(mgr.call("h__echo", {"text": "over http"})) == "over http"
            assert text_of(mgr.call("h__add", {"a": 2, "b": 40})) == "42"
            assert text_of(mgr.call("h__notify", {})) == "notified"  # a notification before the answer
            assert text_of(mgr.call("h__fail", {})) == "Error: it went wrong"
            image = mgr.call("h__image", {})
            assert image["content"][0]["type"] == "image"
            client = mgr._clients["h"]
            assert wait_for(lambda: client.conn.listening)  # the SDK offers a GET stream
            assert text_of(mgr.call("h__pingback", {})) == "pong received"  # a server request, answered
            # tools/list_changed arrives (on the GET stream or the call's stream) and re-lists
            assert text_of(mgr.call("h__grow", {})) == "grew"
            assert wait_for(lambda: "h__grown" in mgr.tools())
            assert mgr.status()[0]["transport"] == "streamable_http"
            session = client.conn.session_id
            version = client.protocol_version
        finally:
            mgr.shutdown()
        log = entries()
        init = log[0]
        assert init["method"] == "POST" and init["body"]["method"] == "initialize"
        assert set(a.strip() for a in init["headers"]["accept"].split(",")) == {"application/json", "text/event-stream"}
        assert "mcp-session-id" not in init["headers"]
        later = log[1:]
        assert session and all(e["headers"].get("mcp-session-id") == session for e in later)
        assert all(e["headers"].get("mcp-protocol-version") == version for e in later)
        assert version == codex.MCP_PROTOCOL_VERSIONS[0]
        assert any(e["method"] == "GET" for e in later)
        assert [e["method"] for e in later if e["method"] != "GET"][-1] == "DELETE"


def test_timeout_and_cancel_over_http(tmp_path):
    import threading

    with http_server(tmp_path) as (url, entries):
        mgr = manager(tmp_path, h=spec(url))
        try:
            mgr.start()
            assert mgr.wait_ready(30)
            began = time.monotonic()
            with pytest.raises(codex.McpError, match="timed out after 0.5s"):
                mgr.call("h__sleep", {"seconds": 5}, timeout=0.5)
            assert time.monotonic() - began < 3
            cancel = threading.Event()
            threading.Timer(0.3, cancel.set).start()
            began = time.monotonic()
            with pytest.raises(codex.McpError, match="cancelled"):
                mgr.call("h__sleep", {"seconds": 5}, cancel=cancel)
            assert time.monotonic() - began < 3
            assert text_of(mgr.call("h__echo", {"text": "still fine"})) == "still fine"
            assert wait_for(lambda: sum(1 for e in entries() if (e["body"] or {}).get("method") == "notifications/cancelled") == 2)
        finally:
            mgr.shutdown()


def test_dropped_stream_is_resumed_with_last_event_id(tmp_path):
    with http_server(tmp_path, "--event-store") as (url, entries):
        mgr = manager(tmp_path, h=spec(url))
        try:
            mgr.start()
            assert mgr.wait_ready(30)
            assert text_of(mgr.call("h__drop", {})) == "survived"
            assert mgr._clients["h"].conn.resumed >= 1
            assert any(e["method"] == "GET" and e["headers"].get("last-event-id") for e in entries())
            assert text_of(mgr.call("h__echo", {"text": "next"})) == "next"
        finally:
            mgr.shutdown()


def test_dropped_get_stream_is_reconnected_with_last_event_id(tmp_path):
    with http_server(tmp_path, "--event-store") as (url, entries):
        mgr = manager(tmp_path, h=spec(url))
        try:
            mgr.start()
            assert mgr.wait_ready(30)
            client = mgr._clients["h"]
            assert wait_for(lambda: client.conn.listening)
            refreshes = []
            client.on_tools_changed = refreshes.append
            assert text_of(mgr.call("h__dropget", {})) == "closed the GET stream"
            # the change announced while the stream was down arrives after the reconnect
            assert wait_for(lambda: refreshes == ["h"], 15)
            gets = [e for e in entries() if e["method"] == "GET"]
            assert len(gets) >= 2 and gets[-1]["headers"].get("last-event-id")
        finally:
            mgr.shutdown()


def test_dropped_stream_without_event_ids_fails_that_call_only(tmp_path):
    with http_server(tmp_path) as (url, entries):
        mgr = manager(tmp_path, h=spec(url))
        try:
            mgr.start()
            assert mgr.wait_ready(30)
            began = time.monotonic()
            with pytest.raises(codex.McpError) as err:
                mgr.call("h__drop", {})
            assert time.monotonic() - began < 10
            assert "`drop`" in str(err.value) and "server `h`" in str(err.value)
            assert "Traceback" not in str(err.value)
            assert text_of(mgr.call("h__echo", {"text": "next"})) == "next"
        finally:
            mgr.shutdown()


def test_server_without_a_get_stream(tmp_path):
    with http_server(tmp_path, "--no-get", "--json-response") as (url, entries):
        mgr = manager(tmp_path, h=spec(url))
        try:
            mgr.start()
            assert mgr.wait_ready(30) and mgr.failures() == []
            assert text_of(mgr.call("h__echo", {"text": "x"})) == "x"
            assert wait_for(lambda: any(e["method"] == "GET" for e in entries()))
            conn = mgr._clients["h"].conn
            assert wait_for(lambda: not conn._listen_thread.is_alive())  # it gave up on the stream for good
            assert [e["method"] for e in entries()].count("GET") == 1  # 405 means: no stream, no retries
            assert not mgr._clients["h"].conn.listening
        finally:
            mgr.shutdown()


def test_expired_session_is_initialized_again(tmp_path):
    import httpx

    with http_server(tmp_path) as (url, entries):
        mgr = manager(tmp_path, h=spec(url))
        try:
            mgr.start()
            assert mgr.wait_ready(30)
            conn = mgr._clients["h"].conn
            old = conn.session_id
            # the server forgets the session (as after a restart)
            r = httpx.delete(url, headers={"Mcp-Session-Id": old, "MCP-Protocol-Version": conn.protocol_version})
            assert r.status_code < 300
            assert text_of(mgr.call("h__echo", {"text": "again"})) == "again"
            assert conn.session_id and conn.session_id != old
            inits = [e for e in entries() if (e["body"] or {}).get("method") == "initialize"]
            assert len(inits) == 2
        finally:
            mgr.shutdown()


# -- auth and headers ---------------------------------------------------------------

def test_bearer_token_and_headers(tmp_path, monkeypatch):
    with http_server(tmp_path, "--token", "s3cret-token") as (url, entries):
        monkeypatch.delenv("MCP_TEST_TOKEN", raising=False)
        mgr = manager(tmp_path, unset=spec(url, bearer_token_env_var="MCP_TEST_TOKEN"), none=spec(url))
        try:
            mgr.start()
            assert mgr.wait_ready(30)
            failures = "\n".join(mgr.failures())
            assert "MCP_TEST_TOKEN is not set" in failures  # named before anything is sent
            none = [f for f in mgr.failures() if "`none`" in f][0]
            assert "401" in none and "mcp_servers.none.bearer_token_env_var" in none and "OAuth" in none
        finally:
            mgr.shutdown()

        monkeypatch.setenv("MCP_TEST_TOKEN", "tok-WRONG-9")
        mgr = manager(tmp_path, wrong=spec(url, bearer_token_env_var="MCP_TEST_TOKEN"))
        try:
            mgr.start()
            assert mgr.wait_ready(30)
            [failure] = mgr.failures()
            assert "401" in failure and "MCP_TEST_TOKEN" in failure and "tok-WRONG-9" not in failure
        finally:
            mgr.shutdown()

        monkeypatch.setenv("MCP_TEST_TOKEN", "s3cret-token")
        monkeypatch.setenv("MCP_TEST_HEADER", "from-env")
        mgr = manager(tmp_path, ok=spec(url, bearer_token_env_var="MCP_TEST_TOKEN", http_headers={"X-Team": "blue"},
                                        env_http_headers={"X-From-Env": "MCP_TEST_HEADER"}))
        try:
            mgr.start()
            assert mgr.wait_ready(30) and mgr.failures() == []
            assert text_of(mgr.call("ok__echo", {"text": "authorized"})) == "authorized"
        finally:
            mgr.shutdown()
        sent = [e["headers"] for e in entries() if e["headers"].get("authorization") == "Bearer s3cret-token"]
        assert sent and all(h.get("x-team") == "blue" and h.get("x-from-env") == "from-env" for h in sent)


def test_unreachable_server_fails_alone(tmp_path):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    with http_server(tmp_path) as (url, _entries):
        mgr = manager(tmp_path, gone=spec("http://127.0.0.1:%d/mcp" % port), h=spec(url))
        try:
            mgr.start()
            assert mgr.wait_ready(30)
            [failure] = mgr.failures()
            assert "`gone`" in failure and "cannot reach" in failure
            assert text_of(mgr.call("h__echo", {"text": "fine"})) == "fine"
        finally:
            mgr.shutdown()


# -- tool filters (any transport) ------------------------------------------------------------

def test_tool_filters_apply_before_the_model_sees_tools(tmp_path):
    stdio = {"command": sys.executable, "args": [SDK_SERVER], "startup_timeout_sec": 20}
    with http_server(tmp_path) as (url, _entries):
        mgr = manager(tmp_path,
                      only=dict(stdio, enabled_tools=["echo", "add", "nosuch"]),
                      minus=spec(url, disabled_tools=["echo", "sleep"]),
                      none=dict(stdio, enabled_tools=["echo"], disabled_tools=["echo"]))
        try:
            mgr.start()
            assert mgr.wait_ready(30) and mgr.failures() == []
            tools = mgr.tools()
            assert sorted(t for t in tools if t.startswith("only__")) == ["only__add", "only__echo"]
            assert "minus__echo" not in tools and "minus__sleep" not in tools and "minus__add" in tools
            assert not any(t.startswith("none__") for t in tools)
            notes = mgr.new_failures()
            assert len(notes) == 1 and "`none`" in notes[0] and "leave none of its" in notes[0] and "echo" in notes[0]
            assert mgr.new_failures() == []  # said once
            with pytest.raises(codex.McpError, match="filtered out"):
                mgr.call_tool("minus", "echo", {"text": "x"})
        finally:
            mgr.shutdown()


# -- npm server-everything in its HTTP mode ---------------------------------------------------

def test_npm_server_everything_streamable_http(tmp_path):
    exe = need_installed(NPM_BIN / "mcp-server-everything",
                         "mcp-server-everything not installed: run .ci/setup-mcp.sh (npm install --prefix build/npm-mcp)")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    proc = subprocess.Popen([exe, "streamableHttp"], env=dict(os.environ, PORT=str(port)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        url = "http://127.0.0.1:%d/mcp" % port

        def up():
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                return True
            except OSError:
                return False

        assert wait_for(up, 30), proc.stderr.read1(4000) if proc.poll() is not None else "not listening"
        mgr = manager(tmp_path, everything=spec(url))
        try:
            mgr.start()
            assert mgr.wait_ready(40) and mgr.failures() == []
            tools = mgr.tools()
            assert "everything__echo" in tools and "everything__get-sum" in tools
            assert text_of(mgr.call("everything__echo", {"message": "hi"})) == "Echo: hi"
            assert "5" in text_of(mgr.call("everything__get-sum", {"a": 2, "b": 3}))
            img = mgr.call("everything__get-tiny-image", {})
            assert any(b.get("type") == "image" for b in img["content"])
        finally:
            mgr.shutdown()
    finally:
        proc.terminate()
        proc.wait(10)


# -- the CLI ----------------------------------------------------------------------------

def test_cli_list_and_call_over_http(run_codex, codex_home, tmp_path):
    with http_server(tmp_path, "--token", "tok-123") as (url, _entries):
        (codex_home / "config.toml").write_text(
            '[mcp_servers.remote]\nurl = "%s"\nbearer_token_env_var = "REMOTE_TOKEN"\n' % url)
        out = run_codex("mcp", "list", env={"REMOTE_TOKEN": "tok-123"})
        assert out.returncode == 0, out.stderr
        row = out.stdout.splitlines()[1].split()
        assert row[:4] == ["remote", "ready", "13", "http"] and row[4] == url
        out = run_codex("mcp", "call", "remote", "add", '{"a": 1, "b": 2}', env={"REMOTE_TOKEN": "tok-123"})
        assert (out.returncode, out.stdout) == (0, "3\n"), out.stderr
        out = run_codex("mcp", "call", "remote", "add", '{"a": 1, "b": 2}', env={"REMOTE_TOKEN": "nope"})
        assert out.returncode == 1 and "REMOTE_TOKEN" in out.stderr and "Traceback" not in out.stderr
        assert len(out.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("mode", ["sse", "json"])
def test_codex_exec_calls_an_http_server(codex_home, tmp_path, mode):
    work = tmp_path / "work"
    (work / ".git").mkdir(parents=True)
    flags = ["--json-response"] if mode == "json" else []
    with ModelServer() as model, http_server(tmp_path, *flags) as (url, _entries):
        (codex_home / "config.toml").write_text(
            'model = "gpt-5"\nmodel_provider = "mock"\napproval_policy = "never"\nsandbox_mode = "read-only"\n'
            '[model_providers.mock]\nname = "mock"\nbase_url = "%s"\nwire_api = "responses"\n'
            "request_max_retries = 0\nstream_max_retries = 0\n"
            '[mcp_servers.web]\nurl = "%s"\nrequired = true\n' % (model.url, url))
        model.enqueue(Turn().function_call("web__add", {"a": 20, "b": 22}, call_id="w1"), Turn().text("it is 42"))
        out = subprocess.run([sys.executable, str(REPO / "codex.py"), "exec", "--color", "never", "add them"],
                             capture_output=True, text=True, timeout=90, cwd=str(work),
                             env=dict(os.environ, CODEX_HOME=str(codex_home)))
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip().endswith("it is 42")
        first, second = model.model_requests()[:2]
        assert "web__add" in [t.get("name") for t in first.body["tools"]]
        [output] = [i for i in second.body["input"] if i.get("type") == "function_call_output"]
        assert (output["call_id"], output["output"]) == ("w1", "42")
