#!/usr/bin/env python3
"""Benchmarks for codex's MCP client (§14) and server (§19); bounded, loopback only.

    .venv/bin/python bench/bench_mcp.py [--quick]

Prints one line per figure and writes bench/results/mcp.json.
"""
import json
import statistics
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

import codex  # noqa: E402
from support.mcp_jsonrpc_client import RawMcpClient  # noqa: E402

RAW = str(REPO / "tests" / "support" / "mcp_raw_server.py")
SDK = str(REPO / "tests" / "support" / "mcp_sdk_server.py")
RUNNER = str(REPO / "tests" / "support" / "mcp_scripted_session.py")
HTTP_SDK = str(REPO / "tests" / "support" / "mcp_http_server.py")
HTTP_RAW = str(REPO / "tests" / "support" / "mcp_http_raw_server.py")


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100.0 * (len(values) - 1))))]


def manager(servers):
    return codex.McpConnectionManager(SimpleNamespace(codex_home=None, mcp_servers=servers))


def spec(args, **kw):
    d = {"command": sys.executable, "args": args, "startup_timeout_sec": 60}
    d.update(kw)
    return d


def bench_startup(n):
    """n servers that each sleep 0.5 s before serving: concurrent start vs the sum."""
    slow = ["-c", "import time,runpy,sys; time.sleep(0.5); sys.argv=[%r]; runpy.run_path(%r, run_name='__main__')" % (RAW, RAW)]
    mgr = manager({"s%d" % i: spec(slow) for i in range(n)})
    t0 = time.monotonic()
    mgr.start()
    t_start = time.monotonic() - t0
    mgr.wait_ready(60)
    t_ready = time.monotonic() - t0
    ok = len(mgr.tools())
    mgr.shutdown()
    t_down = time.monotonic() - t0 - t_ready
    return {"servers": n, "start_returns_ms": round(t_start * 1000, 1), "all_ready_ms": round(t_ready * 1000),
            "tools": ok, "shutdown_ms": round(t_down * 1000), "serial_floor_ms": n * 500}


def bench_pagination(tools, page):
    mgr = manager({"sdk": spec([SDK, "--tools", str(tools), "--page-size", str(page)])})
    t0 = time.monotonic()
    mgr.start()
    mgr.wait_ready(60)
    took = time.monotonic() - t0
    count = len(mgr.tools())
    t1 = time.monotonic()
    for _ in range(20):
        mgr.tools()
    per_tools_call = (time.monotonic() - t1) / 20
    mgr.shutdown()
    return {"tools": count, "pages": -(-(tools + 9) // page), "ready_ms": round(took * 1000),
            "tools()_ms": round(per_tools_call * 1000, 2)}


def bench_calls(name, args, tool, arguments, n, threads=1, server_spec=None):
    mgr = manager({"x": server_spec or spec(args)})
    mgr.start()
    mgr.wait_ready(60)
    q = codex.qualify_tool_name("x", tool)
    lat = []
    lock = threading.Lock()

    def work(k):
        for _ in range(k):
            t = time.monotonic()
            mgr.call(q, arguments)
            with lock:
                lat.append(time.monotonic() - t)

    t0 = time.monotonic()
    ts = [threading.Thread(target=work, args=(n // threads,)) for _ in range(threads)]
    [t.start() for t in ts]
    [t.join(120) for t in ts]
    wall = time.monotonic() - t0
    mgr.shutdown()
    return {"server": name, "calls": len(lat), "threads": threads, "p50_ms": round(pct(lat, 50) * 1000, 2),
            "p95_ms": round(pct(lat, 95) * 1000, 2), "calls_per_s": round(len(lat) / wall)}


def bench_http_calls(name, script, flags, tool, arguments, n):
    """The same round trip against a streamable HTTP server started from `script` (loopback)."""
    import subprocess

    proc = subprocess.Popen([sys.executable, script] + flags, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        port = int(proc.stdout.readline().split()[1])
        url = "http://127.0.0.1:%d/mcp" % port
        return bench_calls(name, None, tool, arguments, n, server_spec={"url": url, "startup_timeout_sec": 60})
    finally:
        proc.terminate()
        proc.wait(10)


def bench_server(n, concurrent):
    import os
    import tempfile

    home = tempfile.mkdtemp()
    t0 = time.monotonic()
    c = RawMcpClient([sys.executable, RUNNER], env=dict(os.environ, CODEX_HOME=home), cwd=home)
    c.initialize()
    t_init = time.monotonic() - t0
    lat = []
    for i in range(n):
        t = time.monotonic()
        c.call("tools/call", {"name": "codex", "arguments": {"prompt": "p%d" % i}})
        lat.append(time.monotonic() - t)
    t = time.monotonic()
    ids = [c.request("tools/call", {"name": "codex", "arguments": {"prompt": "c%d" % i}}) for i in range(concurrent)]
    for i in ids:
        c.response(i, timeout=60)
    t_conc = time.monotonic() - t
    c.close()
    return {"spawn_to_initialized_ms": round(t_init * 1000), "codex_call_p50_ms": round(pct(lat, 50) * 1000, 2),
            "codex_call_p95_ms": round(pct(lat, 95) * 1000, 2), "concurrent_calls": concurrent,
            "concurrent_wall_ms": round(t_conc * 1000)}


def bench_server_real(n):
    """`codex mcp` with the real Session against the scripted model server (loopback HTTP)."""
    import os
    import tempfile

    from support.model_server import ModelServer, Turn

    with ModelServer(default=Turn().text("ok")) as model:
        home = tempfile.mkdtemp()
        Path(home, "config.toml").write_text(
            'model = "gpt-5"\nmodel_provider = "mock"\napproval_policy = "never"\nsandbox_mode = "read-only"\n'
            '[model_providers.mock]\nname = "mock"\nbase_url = "%s"\nwire_api = "responses"\n' % model.url)
        c = RawMcpClient([sys.executable, str(REPO / "codex.py"), "mcp"], env=dict(os.environ, CODEX_HOME=home), cwd=home)
        c.initialize()
        lat = []
        for i in range(n):
            t = time.monotonic()
            c.call("tools/call", {"name": "codex", "arguments": {"prompt": "p%d" % i}}, timeout=60)
            lat.append(time.monotonic() - t)
        c.close()
    return {"calls": n, "codex_call_p50_ms": round(pct(lat, 50) * 1000, 1), "codex_call_p95_ms": round(pct(lat, 95) * 1000, 1)}


def main():
    quick = "--quick" in sys.argv
    n = 50 if quick else 300
    results = {
        "startup_8_slow_servers": bench_startup(8),
        "pagination_1000_tools_50_per_page": bench_pagination(1000, 50),
        "calls_raw_server": bench_calls("raw (stdlib)", [RAW], "hello", {}, n),
        "calls_sdk_server": bench_calls("mcp SDK 2.x", [SDK], "echo", {"text": "x"}, n),
        "calls_sdk_server_4_threads": bench_calls("mcp SDK 2.x", [SDK], "echo", {"text": "x"}, n, threads=4),
        "calls_http_raw_server_json": bench_http_calls("raw (stdlib) over HTTP", HTTP_RAW, [], "hello", {}, n),
        "calls_http_sdk_server_sse": bench_http_calls("mcp SDK 2.x over HTTP, SSE answers", HTTP_SDK, [], "echo",
                                                      {"text": "x"}, max(20, n // 5)),
        "calls_http_sdk_server_json": bench_http_calls("mcp SDK 2.x over HTTP, JSON answers", HTTP_SDK, ["--json-response"],
                                                       "echo", {"text": "x"}, max(20, n // 5)),
        "codex_mcp_server_scripted_session": bench_server(20 if quick else 100, 10),
        "codex_mcp_server_real_session": bench_server_real(10 if quick else 40),
    }
    for key, value in results.items():
        print("%-36s %s" % (key, json.dumps(value)))
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "mcp.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
