"""§21 `codex proxy`: real processes on 127.0.0.1, the real openai SDK, curl, psutil.

The upstream is tests/support/proxy_upstream.py (a scripted OpenAI-compatible server);
codex.py runs as `codex proxy --bind 127.0.0.1:0` with a provider pointing at it.
"""
import asyncio
import base64
import hashlib
import http.client
import json
import os
import shutil
import socket
import subprocess
import threading
import time

import openai
import psutil
import pytest

import codex
from support.proxy_net import ForwardProxy, make_certs
from support.proxy_procs import Proxy, Upstream, provider_args
from support.wait import wait_until

KEY = "sk-upstream-secret-0123456789"  #: the provider key the proxy injects (from $UP_KEY)
TOKEN = "proxy-token-abcdefghijklmnop"  #: a client token for the token tests


@pytest.fixture(scope="module")
def upstream():
    up = Upstream()
    yield up
    up.stop()


@pytest.fixture
def start_proxy(codex_home, upstream):
    """Start `codex proxy` against the scripted upstream; stopped after the test."""
    started = []

    def start(*args, env=None, provider=None, base_url=None, cmd=None):
        fields = {"env_key": "UP_KEY"} if provider is None else provider
        full_env = {"UP_KEY": KEY, "CODEX_HOME": str(codex_home)}
        full_env.update(env or {})
        p = Proxy(provider_args(base_url or upstream.url + "/v1", **fields) + list(args), env=full_env, cmd=cmd)
        started.append(p)
        upstream.clear()
        return p

    yield start
    for p in started:
        p.stop()


def raw_request(proxy, method, path, headers=None, body=None, timeout=10):
    """One request with http.client (exact headers, no SDK); returns (status, headers, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.getheaders(), resp.read()
    finally:
        conn.close()


def sdk(proxy, api_key="sk-client-own-key-42"):
    return openai.OpenAI(base_url=proxy.url + "/v1", api_key=api_key, max_retries=0, timeout=30)


def auth_seen(record):
    return dict(record["headers"]).get("authorization")


# -- routes --------------------------------------------------------------------------------


def test_health_404_and_banner(start_proxy, upstream):
    p = start_proxy()
    status, headers, body = raw_request(p, "GET", "/health")
    assert (status, json.loads(body)) == (200, {"status": "ok"})
    status, _, body = raw_request(p, "GET", "/nope")
    assert status == 404 and "/nope" in json.loads(body)["error"]["message"]
    status, _, body = raw_request(p, "POST", "/health", body=b"{}")
    assert status == 405
    assert upstream.log() == []  # none of these reached the provider
    banner = "".join(p.lines[:3])
    assert "/v1/* -> %s/v1" % upstream.url in banner and "$UP_KEY" in banner and KEY not in banner


# -- the openai SDK through the proxy ------------------------------------------------------


def test_sdk_chat_plain_and_streamed(start_proxy, upstream):
    p = start_proxy()
    client = sdk(p, api_key="sk-client-own-key-42")
    resp = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hello proxy"}])
    assert resp.choices[0].message.content == "echo: hello proxy"
    stream = client.chat.completions.create(model="m", stream=True,
                                            messages=[{"role": "user", "content": "one two three"}])
    pieces = [c.choices[0].delta.content for c in stream if c.choices[0].delta.content]
    assert "".join(pieces) == "echo: one two three" and len(pieces) == 4
    log = upstream.log()
    assert [r["target"] for r in log] == ["/v1/chat/completions"] * 2
    # The proxy has a key: it replaces the client's (often a placeholder the SDK insists on).
    assert {auth_seen(r) for r in log} == {"Bearer " + KEY}
    assert all(r["complete"] for r in log)


def test_sdk_responses_plain_and_streamed(start_proxy, upstream):
    p = start_proxy()
    client = sdk(p)
    assert client.responses.create(model="m", input="hi there").output_text == "echo: hi there"
    events = list(client.responses.create(model="m", input="a b c", stream=True))
    types = [e.type for e in events]
    assert types[0] == "response.created" and types[-1] == "response.completed"
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "echo: a b c"
    assert events[-1].response.output_text == "echo: a b c"
    assert [r["target"] for r in upstream.log()] == ["/v1/responses"] * 2


def test_sdk_file_upload_multipart(start_proxy, upstream):
    p = start_proxy()
    data = os.urandom(3 * 1024 * 1024 + 17)
    obj = sdk(p).files.create(file=("notes.bin", data), purpose="assistants")
    assert obj.id == "file-1" and obj.filename == "notes.bin" and obj.purpose == "assistants"
    (rec,) = upstream.log()
    assert dict(rec["headers"])["content-type"].startswith("multipart/form-data; boundary=")
    assert rec["file_sha256"] == hashlib.sha256(data).hexdigest()
    assert obj.bytes == rec["body_len"] > len(data)


# -- auth ----------------------------------------------------------------------------------


def test_auth_injection_order(start_proxy, upstream, codex_home):
    # env_key set -> its value, also over a client's Authorization (the README's api_key="unused").
    p = start_proxy()
    raw_request(p, "GET", "/v1/echo")
    raw_request(p, "GET", "/v1/echo", headers={"Authorization": "Bearer unused"})
    assert [auth_seen(r) for r in upstream.log()] == ["Bearer " + KEY, "Bearer " + KEY]
    p.stop()
    # env var unset -> the key in auth.json.
    (codex_home / "auth.json").write_text(json.dumps({"OPENAI_API_KEY": "sk-from-auth-json-123"}))
    p = start_proxy(env={"UP_KEY": ""})
    raw_request(p, "GET", "/v1/echo")
    assert [auth_seen(r) for r in upstream.log()] == ["Bearer sk-from-auth-json-123"]
    # auth.json changes are picked up without a restart; ChatGPT tokens carry the account id.
    (codex_home / "auth.json").write_text(json.dumps(
        {"OPENAI_API_KEY": None, "tokens": {"access_token": "chatgpt-access-tok", "account_id": "acct-7"}}))
    os.utime(str(codex_home / "auth.json"), (time.time() + 5, time.time() + 5))
    upstream.clear()
    raw_request(p, "GET", "/v1/echo")
    (rec,) = upstream.log()
    assert auth_seen(rec) == "Bearer chatgpt-access-tok"
    assert dict(rec["headers"])["chatgpt-account-id"] == "acct-7"
    p.stop()
    # Nothing configured -> forwarded without Authorization.
    (codex_home / "auth.json").unlink()
    p = start_proxy(env={"UP_KEY": ""})
    assert "no key configured" in "".join(p.lines)
    raw_request(p, "GET", "/v1/echo")
    raw_request(p, "GET", "/v1/echo", headers={"Authorization": "Bearer mine"})
    assert [auth_seen(r) for r in upstream.log()] == [None, "Bearer mine"]  # no key: the client's passes through


def test_bad_auth_json(start_proxy, upstream, codex_home, run_codex):
    (codex_home / "auth.json").write_text("{not json")
    r = run_codex("proxy", "--bind", "127.0.0.1:0", *provider_args(upstream.url + "/v1"), timeout=30)
    assert r.returncode == 1 and "auth.json is not valid JSON" in r.stderr and "Traceback" not in r.stderr
    (codex_home / "auth.json").write_text(json.dumps({"OPENAI_API_KEY": "sk-from-auth-json-123"}))
    p = start_proxy(provider={})
    (codex_home / "auth.json").write_text("{broken")
    os.utime(str(codex_home / "auth.json"), (time.time() + 5, time.time() + 5))
    for _ in range(2):  # not cached: every request says so until the file is fixed
        status, _, body = raw_request(p, "GET", "/v1/echo")
        assert status == 500 and "auth.json" in json.loads(body)["error"]["message"]
    assert upstream.log() == []


def test_client_token_required(start_proxy, upstream):
    p = start_proxy("--token", TOKEN)
    status, headers, body = raw_request(p, "POST", "/v1/chat/completions", body=b"{}")
    assert status == 401 and "token" in json.loads(body)["error"]["message"]
    assert dict(headers)["www-authenticate"].startswith("Bearer")
    status, _, _ = raw_request(p, "GET", "/v1/echo", headers={"Authorization": "Bearer wrong-token-xxxxxxxxxx"})
    assert status == 401
    assert upstream.log() == []
    # The SDK's api_key is the token: the proxy swaps in the provider key.
    client = sdk(p, api_key=TOKEN)
    assert client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}]).choices
    # The token header lets a client bring its own Authorization.
    raw_request(p, "GET", "/v1/echo", headers={"X-Codex-Proxy-Token": TOKEN, "Authorization": "Bearer own"})
    first, second = upstream.log()
    assert auth_seen(first) == "Bearer " + KEY and auth_seen(second) == "Bearer own"
    assert all("x-codex-proxy-token" not in dict(r["headers"]) for r in (first, second))
    assert raw_request(p, "GET", "/health")[0] == 200  # health needs no token
    # Token from the environment works the same way.
    p2 = start_proxy(env={"CODEX_PROXY_TOKEN": TOKEN})
    assert raw_request(p2, "GET", "/v1/echo")[0] == 401
    assert raw_request(p2, "GET", "/v1/echo", headers={"Authorization": "Bearer " + TOKEN})[0] == 200


def test_profile_selects_the_provider(codex_home, upstream):
    (codex_home / "config.toml").write_text(
        'model_provider = "openai"\n'
        '[model_providers.up]\nname = "up"\nbase_url = "%s/v1"\nenv_key = "UP_KEY"\n'
        '[profiles.work]\nmodel_provider = "up"\n' % upstream.url)
    p = Proxy(["-p", "work"], env={"UP_KEY": KEY, "CODEX_HOME": str(codex_home)})
    try:
        assert "-> %s/v1" % upstream.url in p.lines[0]
        upstream.clear()
        assert raw_request(p, "GET", "/v1/echo")[0] == 200
        assert auth_seen(upstream.log()[0]) == "Bearer " + KEY
    finally:
        p.stop()


def test_bind_policy(run_codex):
    r = run_codex("proxy", "--bind", "0.0.0.0:0")
    assert r.returncode == 2 and "--allow-remote" in r.stderr and "Traceback" not in r.stderr
    r = run_codex("proxy", "--bind", "0.0.0.0:0", "--allow-remote")
    assert r.returncode == 2 and "client token" in r.stderr
    r = run_codex("proxy", "--bind", "[::]:0", "--allow-remote", "--token", "short")
    assert r.returncode == 2 and "at least 16" in r.stderr
    r = run_codex("proxy", "--bind", "127.0.0.1:notaport")
    assert r.returncode == 2 and "HOST:PORT" in r.stderr


def test_bind_parsing_and_loopback_names():
    assert codex._parse_bind("127.0.0.1:11435") == ("127.0.0.1", 11435)
    assert codex._parse_bind("[::1]:8080") == ("::1", 8080)
    assert codex._parse_bind(":9000") == ("127.0.0.1", 9000)
    assert codex._parse_bind("9000") == ("127.0.0.1", 9000)
    for name in ("localhost", "LOCALHOST.", "app.localhost", "127.0.0.1", "127.9.9.9", "::1", "[::1]"):
        assert codex._is_loopback_host(name), name
    for name in ("0.0.0.0", "::", "10.0.0.1", "192.168.1.2", "example.com", "localhost.example.com", ""):
        assert not codex._is_loopback_host(name), name


@pytest.mark.skipif(not socket.has_ipv6, reason="no IPv6")
def test_ipv6_loopback_bind(start_proxy, upstream):
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        pytest.skip("::1 is not configured")
    p = start_proxy("--bind", "[::1]:0")
    assert p.url.startswith("http://[::1]:")
    conn = http.client.HTTPConnection("::1", p.port, timeout=10)
    conn.request("GET", "/v1/models")
    assert conn.getresponse().status == 200
    conn.close()


def test_bind_in_use(run_codex):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        r = run_codex("proxy", "--bind", "127.0.0.1:%d" % s.getsockname()[1])
    assert r.returncode == 2 and "cannot listen" in r.stderr


# -- headers -------------------------------------------------------------------------------


def test_headers_hop_by_hop_host_query_and_provider_headers(start_proxy, upstream):
    p = start_proxy(provider={
        "env_key": "UP_KEY",
        "query_params": {"api-version": "2025-01-01"},
        "http_headers": {"X-Static": "s1"},
        "env_http_headers": {"X-From-Env": "UP_HDR", "X-Unset": "UP_UNSET"},
    }, env={"UP_HDR": "e1"})
    status, headers, body = raw_request(p, "GET", "/v1/echo/x?api-version=old&q=1", headers={
        "Connection": "keep-alive, X-Named-Hop", "X-Named-Hop": "1", "Keep-Alive": "timeout=5",
        "Proxy-Authorization": "Basic c2VjcmV0", "TE": "trailers", "Trailer": "X-T", "Upgrade": "h2c",
        "Proxy-Connection": "keep-alive", "X-Keep-Me": "kept", "Host": "localhost:%d" % p.port,
    })
    assert status == 200
    seen = json.loads(body)
    names = [k for k, _ in seen["headers"]]
    for hop in ("x-named-hop", "keep-alive", "proxy-authorization", "te", "trailer", "upgrade", "proxy-connection"):
        assert hop not in names
    h = dict(seen["headers"])
    assert h["host"] == "127.0.0.1:%d" % upstream.port  # rewritten
    assert h["x-keep-me"] == "kept" and h["x-static"] == "s1" and h["x-from-env"] == "e1"
    assert "x-unset" not in h and h["authorization"] == "Bearer " + KEY
    assert seen["target"] == "/v1/echo/x?q=1&api-version=2025-01-01"
    # Response side: Connection, the header it names, and Keep-Alive stripped; others kept.
    got = dict(headers)
    assert got["x-upstream"] == "yes" and got["set-cookie"] == "s=1; Path=/"
    assert "x-drop-resp" not in got and "keep-alive" not in got


def test_cookies_not_shared_between_clients(start_proxy, upstream):
    p = start_proxy()
    raw_request(p, "GET", "/v1/echo")  # the upstream answers with Set-Cookie
    raw_request(p, "GET", "/v1/echo")
    assert all("cookie" not in dict(r["headers"]) for r in upstream.log())


def test_host_and_origin_checks(start_proxy, upstream):
    p = start_proxy()
    status, _, body = raw_request(p, "GET", "/v1/echo", headers={"Host": "evil.example:%d" % p.port})
    assert status == 403 and "rebinding" in json.loads(body)["error"]["message"]
    status, _, body = raw_request(p, "POST", "/v1/chat/completions", body=b"{}",
                                  headers={"Origin": "https://evil.example", "Content-Type": "text/plain"})
    assert status == 403 and "--allow-cors-any" in json.loads(body)["error"]["message"]
    status, headers, _ = raw_request(p, "OPTIONS", "/v1/chat/completions", headers={
        "Origin": "https://app.example", "Access-Control-Request-Method": "POST"})
    assert status == 403 and "access-control-allow-origin" not in dict(headers)
    assert raw_request(p, "GET", "/v1/../health")[0] == 400
    assert upstream.log() == []


def test_cors_any(start_proxy, upstream):
    p = start_proxy("--allow-cors-any")
    status, headers, body = raw_request(p, "OPTIONS", "/v1/chat/completions", headers={
        "Origin": "https://app.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})
    h = dict(headers)
    assert status == 204 and body == b""
    assert h["access-control-allow-origin"] == "*" and "POST" in h["access-control-allow-methods"]
    assert h["access-control-allow-headers"] == "authorization, content-type"
    status, headers, _ = raw_request(p, "GET", "/v1/echo", headers={"Origin": "https://app.example"})
    assert status == 200 and dict(headers)["access-control-allow-origin"] == "*"
    assert [r["method"] for r in upstream.log()] == ["GET"]  # the preflight stayed local


# -- streaming -----------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_sse_reaches_curl_unbuffered(start_proxy):
    p = start_proxy()
    proc = subprocess.Popen(["curl", "-sS", "-N", "--max-time", "20", p.url + "/v1/sse?n=6&delay_ms=400"],
                            stdout=subprocess.PIPE)
    start = time.monotonic()
    arrivals = []
    try:
        for line in proc.stdout:
            if line.startswith(b"data: "):
                arrivals.append((int(line[6:]), time.monotonic() - start))
    finally:
        proc.wait(30)
    assert [n for n, _ in arrivals] == list(range(6))
    gaps = [b - a for (_, a), (_, b) in zip(arrivals, arrivals[1:])]
    # Each event arrives when the upstream sends it, ~400 ms apart, not at the end in a lump.
    assert all(0.25 < g < 1.5 for g in gaps), gaps
    assert arrivals[0][1] < 1.5 and arrivals[-1][1] > 1.8


def test_streamed_chat_chunks_arrive_as_sent(start_proxy):
    p = start_proxy()
    stream = sdk(p).chat.completions.create(
        model="m", stream=True, messages=[{"role": "user", "content": "a b c d"}],
        extra_headers={"x-test-delay-ms": "300"})
    times = []
    start = time.monotonic()
    for chunk in stream:
        times.append(time.monotonic() - start)
    assert len(times) == 6
    # Chunks come as the upstream sends them (300 ms apart), not in a lump at the end: most gaps
    # are there and the arrivals span most of the stream. (One scheduler stall on a loaded
    # machine may join two neighbours; buffering in the proxy or the SDK would join them all.)
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert sum(g > 0.15 for g in gaps) >= 3 and times[-1] - times[0] > 0.8, gaps


def test_client_disconnect_cancels_upstream(start_proxy, upstream):
    p = start_proxy()
    sock = socket.create_connection(("127.0.0.1", p.port), timeout=10)
    sock.sendall(b"GET /v1/sse?n=200&delay_ms=50 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    got = b""
    while b"data: 2" not in got:
        more = sock.recv(4096)
        assert more, got
        got += more
    sock.close()
    closed_at = time.time()
    deadline = time.time() + 10
    while time.time() < deadline:
        (rec,) = upstream.log()
        if rec["disconnected"]:
            break
        time.sleep(0.1)
    assert rec["disconnected"] and not rec["complete"]
    assert rec["events_sent"] < 100 and rec["t_gone"] - closed_at < 2.0
    line = p.wait_lines(1)[-1]
    assert "/v1/sse" in line and "client closed" in line


def test_client_disconnect_before_response_headers(start_proxy, upstream):
    # The upstream is silent for 4 s; a client hanging up at 0.5 s is noticed at once.
    p = start_proxy()
    sock = socket.create_connection(("127.0.0.1", p.port), timeout=10)
    sock.sendall(b"GET /v1/sse?n=50&delay_ms=50&first_delay_ms=4000 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert wait_until(upstream.log, timeout=10)  # the provider has the request and is silent
    sock.close()
    closed_at = time.monotonic()
    line = p.wait_lines(1, timeout=10)[-1]
    assert time.monotonic() - closed_at < 2.0
    assert " 499 " in line and "client closed" in line
    deadline = time.time() + 15
    while time.time() < deadline and not upstream.log()[0]["disconnected"]:
        time.sleep(0.1)
    rec = upstream.log()[0]
    # The proxy dropped its upstream connection: the provider's first writes fail.
    assert rec["disconnected"] and rec.get("events_sent", 0) < 10


def test_client_abandoning_an_upload_aborts_the_upstream_request(start_proxy, upstream):
    p = start_proxy()
    sock = socket.create_connection(("127.0.0.1", p.port), timeout=10)
    sock.sendall(b"POST /v1/sink HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 104857600\r\n\r\n")
    for _ in range(10):
        sock.sendall(b"u" * (1024 * 1024))
    deadline = time.time() + 10
    while time.time() < deadline and not upstream.log():
        time.sleep(0.05)
    sock.close()
    deadline = time.time() + 10
    while time.time() < deadline and not upstream.log()[0]["disconnected"]:
        time.sleep(0.05)
    rec = upstream.log()[0]
    assert rec["disconnected"] and not rec["complete"]
    line = p.wait_lines(1)[-1]
    assert " 499 " in line and "client closed" in line


def test_stale_kept_alive_connection_is_retried_when_the_body_allows(start_proxy, upstream):
    p = start_proxy()
    drop = {"x-test-drop-next": "1"}
    # Small body: the proxy kept it and sends it again on a new connection.
    assert raw_request(p, "GET", "/v1/models", headers=drop)[0] == 200
    status, _, body = raw_request(p, "POST", "/v1/sink", body=b"s" * 1000)
    assert status == 200 and json.loads(body)["bytes"] == 1000
    # No body: the same.
    assert raw_request(p, "GET", "/v1/models", headers=drop)[0] == 200
    assert raw_request(p, "GET", "/v1/models")[0] == 200
    log = upstream.log()
    assert [r.get("dropped", False) for r in log] == [False, True, False, False, True, False]
    assert log[1]["peer_port"] != log[2]["peer_port"]
    # A body too large to keep cannot be replayed: 502, and the provider got it once.
    upstream.clear()
    assert raw_request(p, "GET", "/v1/models", headers=drop)[0] == 200
    status, _, body = raw_request(p, "POST", "/v1/sink", body=b"b" * 300000)
    assert status == 502 and json.loads(body)["error"]["type"] == "upstream_unreachable"
    assert [r.get("dropped", False) for r in upstream.log()] == [False, True]


def test_early_answer_during_an_upload_reaches_the_client(start_proxy, upstream):
    p = start_proxy()
    # The provider reads at most 4 MiB after answering: the proxy must stop sending and
    # relay the answer instead of running into the reset (which would be a 502).
    for size in (10, 30 * 1024 * 1024):
        status, headers, body = raw_request(p, "POST", "/v1/reject", body=b"r" * size)
        assert status == 413 and json.loads(body)["error"]["message"] == "request too large", (size, body)
    line = p.wait_lines(2)[-1]
    assert " 413 " in line and "answered before the request body ended" in line
    assert raw_request(p, "GET", "/v1/models")[0] == 200


def test_dead_upstream_is_a_502_naming_it(start_proxy, upstream):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        dead = "http://127.0.0.1:%d/v1" % s.getsockname()[1]
    p = start_proxy(base_url=dead)
    status, headers, body = raw_request(p, "POST", "/v1/chat/completions", body=b'{"model": "m"}',
                                        headers={"Content-Type": "application/json"})
    err = json.loads(body)["error"]
    assert status == 502 and dead in err["message"] and err["type"] == "upstream_unreachable"
    assert dict(headers)["content-type"] == "application/json"
    with pytest.raises(openai.APIStatusError) as info:
        sdk(p).chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 502 and dead in str(info.value)
    assert raw_request(p, "GET", "/health")[0] == 200  # the proxy itself is fine
    assert " 502 " in p.wait_lines(3)[0]


def _raw_exchange(port, data):
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(data)
    got = b""
    while True:
        more = sock.recv(65536)
        if not more:
            break
        got += more
    sock.close()
    return got


def test_malformed_requests_get_a_json_400(start_proxy, upstream):
    p = start_proxy()
    got = _raw_exchange(p.port, b"NOT HTTP AT ALL\r\n\r\n")
    assert got.startswith(b"HTTP/1.1 400 Bad Request\r\n") and b'"invalid_request_error"' in got
    # A head still incomplete past 64 KiB (no CRLF CRLF yet) is refused.
    got = _raw_exchange(p.port, b"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 100000)
    assert got.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
    assert upstream.log() == []


def test_slow_upstream_is_a_504(start_proxy, upstream):
    p = start_proxy(provider={"env_key": "UP_KEY", "stream_idle_timeout_ms": 500})
    start = time.monotonic()
    status, _, body = raw_request(p, "GET", "/v1/sse?n=1&first_delay_ms=5000")
    assert status == 504 and json.loads(body)["error"]["type"] == "upstream_timeout"
    assert time.monotonic() - start < 3


def test_upstream_breaking_mid_answer_cuts_the_client_off(start_proxy, upstream):
    p = start_proxy()
    conn = http.client.HTTPConnection("127.0.0.1", p.port, timeout=10)
    conn.request("GET", "/v1/cut?after=300")
    resp = conn.getresponse()
    assert resp.status == 200 and resp.getheader("content-length") == "1000"
    with pytest.raises(http.client.IncompleteRead) as info:
        resp.read()
    assert len(info.value.partial) == 300
    assert "upstream broke" in p.wait_lines(1)[-1]
    assert raw_request(p, "GET", "/v1/models")[0] == 200  # the next request is fine


def test_one_log_line_per_request_without_secrets(start_proxy, upstream):
    p = start_proxy()
    raw_request(p, "GET", "/v1/echo?key=sk-in-query-secret-999", headers={"Authorization": "Bearer sk-client-secret-888"})
    raw_request(p, "POST", "/v1/sink", body=b"x" * 1000)
    raw_request(p, "GET", "/health")
    lines = p.wait_lines(3)
    assert len(lines) == 3
    assert '"GET /v1/echo"' in lines[0] and " 200 " in lines[0]
    assert '"POST /v1/sink"' in lines[1] and "in=1000" in lines[1]
    assert '"GET /health"' in lines[2]
    text = "".join(p.lines)
    for secret in (KEY, "sk-in-query-secret-999", "sk-client-secret-888"):
        assert secret not in text


def test_keep_alive_and_expect_continue(start_proxy, upstream):
    p = start_proxy()
    conn = http.client.HTTPConnection("127.0.0.1", p.port, timeout=10)
    conn.request("GET", "/v1/models")
    conn.getresponse().read()
    sock_before = conn.sock
    for i in range(300):
        if i % 2:
            conn.request("POST", "/v1/sink", body=b"abc")
            assert json.loads(conn.getresponse().read())["bytes"] == 3
        else:
            conn.request("GET", "/v1/models")
            assert json.loads(conn.getresponse().read())["object"] == "list"
    assert conn.sock is sock_before  # one connection served them all
    conn.close()
    # ... and the proxy reused its provider connection too.
    ports = {r["peer_port"] for r in upstream.log()}
    assert len(upstream.log()) == 301 and len(ports) == 1
    if shutil.which("curl"):
        start = time.monotonic()
        out = subprocess.run(["curl", "-sS", "-H", "Expect: 100-continue", "--data-binary", "@-",
                              p.url + "/v1/sink"], input=b"z" * 2000000, capture_output=True, timeout=30)
        assert json.loads(out.stdout)["bytes"] == 2000000
        assert time.monotonic() - start < 0.9  # curl would wait 1 s without the 100 Continue


# -- TLS providers and HTTP proxies on the way to them ----------------------------------------


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    return make_certs(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def tls_upstream(tls):
    up = Upstream(tls=tls)
    yield up
    up.stop()


def test_https_provider_verified_against_ssl_cert_file(start_proxy, tls_upstream, tls, monkeypatch):
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    base = "https://localhost:%d/v1" % tls_upstream.port
    p = start_proxy(base_url=base, env={"SSL_CERT_FILE": str(tls["ca"])})
    tls_upstream.clear()
    client = sdk(p)
    assert client.chat.completions.create(model="m", messages=[{"role": "user", "content": "tls"}]) \
        .choices[0].message.content == "echo: tls"
    stream = client.chat.completions.create(model="m", stream=True, messages=[{"role": "user", "content": "a b"}])
    assert "".join(c.choices[0].delta.content or "" for c in stream) == "echo: a b"
    log = tls_upstream.log()
    assert len(log) == 2 and len({r["peer_port"] for r in log}) == 1  # one kept-alive TLS connection
    assert dict(log[0]["headers"])["host"] == "localhost:%d" % tls_upstream.port
    p.stop()
    # A certificate the proxy cannot verify is a 502 that says so.
    p = start_proxy(base_url=base)
    status, _, body = raw_request(p, "GET", "/v1/models")
    message = json.loads(body)["error"]["message"]
    assert status == 502 and base in message and "certificate" in message.lower()


def test_https_provider_through_http_proxy_connect(start_proxy, tls_upstream, tls):
    fwd = ForwardProxy()
    try:
        base = "https://provider.test:%d/v1" % tls_upstream.port
        p = start_proxy(base_url=base, env={
            "SSL_CERT_FILE": str(tls["ca"]), "HTTPS_PROXY": "http://user:pa%%3Ass@127.0.0.1:%d" % fwd.port,
            "NO_PROXY": "localhost"})
        assert "via HTTP proxy 127.0.0.1:%d" % fwd.port in "".join(p.lines) and "pa%3Ass" not in "".join(p.lines)
        tls_upstream.clear()
        resp = sdk(p).chat.completions.create(model="m", messages=[{"role": "user", "content": "tunnel"}])
        assert resp.choices[0].message.content == "echo: tunnel"
        line, auth = fwd.seen[0]
        assert line == "CONNECT provider.test:%d HTTP/1.1" % tls_upstream.port
        assert auth == "Basic " + base64.b64encode(b"user:pa:ss").decode()
        assert dict(tls_upstream.log()[0]["headers"])["host"] == "provider.test:%d" % tls_upstream.port
    finally:
        fwd.stop()


def test_http_provider_through_http_proxy(start_proxy, upstream):
    fwd = ForwardProxy()
    try:
        p = start_proxy(base_url="http://provider.test:%d/v1" % upstream.port, env={"HTTP_PROXY": fwd.url})
        status, _, body = raw_request(p, "GET", "/v1/echo?x=1")
        assert status == 200
        assert fwd.seen[0][0] == "GET http://provider.test:%d/v1/echo?x=1 HTTP/1.1" % upstream.port
        assert dict(json.loads(body)["headers"])["host"] == "provider.test:%d" % upstream.port
    finally:
        fwd.stop()


def test_proxy_environment_rules():
    pool = codex._UpstreamPool
    assert pool("https://api.example.com/v1", environ={"https_proxy": "http://p:3128"}).proxy == ("p", 3128, None)
    assert pool("https://api.example.com/v1", environ={"HTTPS_PROXY": "http://p:3128", "NO_PROXY": "example.com"}).proxy is None
    assert pool("http://127.0.0.1:9/v1", environ={"HTTP_PROXY": "http://p:3128"}).proxy is None  # loopback: direct
    assert pool("http://api.example.com/v1", environ={"HTTPS_PROXY": "http://p:3128"}).proxy is None  # scheme must match
    with pytest.raises(codex.ConfigError) as info:
        pool("https://api.example.com/v1", environ={"HTTPS_PROXY": "socks5://u:secret@p:1080"})
    assert "http:// proxies only" in str(info.value) and "secret" not in str(info.value)


def test_pipelined_requests(start_proxy, upstream):
    p = start_proxy()
    got = _raw_exchange(p.port, b"POST /v1/sink HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n\r\nhello"
                        b"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
                        b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    assert got.count(b"HTTP/1.1 200 ") == 3
    assert got.index(b'"bytes": 5') < got.index(b'"object": "list"') < got.index(b'"status": "ok"')


# -- load and memory -----------------------------------------------------------------------


@pytest.mark.slow
def test_100_parallel_streams(start_proxy, upstream):
    p = start_proxy()

    async def run():
        client = openai.AsyncOpenAI(base_url=p.url + "/v1", api_key="sk-x", max_retries=0, timeout=60)

        async def one(i):
            stream = await client.chat.completions.create(
                model="m", stream=True, messages=[{"role": "user", "content": "n%d a b c d e f g" % i}],
                extra_headers={"x-test-delay-ms": "100"})
            return "".join([c.choices[0].delta.content or "" async for c in stream])

        try:
            return await asyncio.gather(*[one(i) for i in range(100)])
        finally:
            await client.close()

    start = time.monotonic()
    texts = asyncio.run(run())
    elapsed = time.monotonic() - start
    assert texts == ["echo: n%d a b c d e f g" % i for i in range(100)]
    # Each stream takes ~0.9 s upstream; served one after another it would be 90 s.
    assert elapsed < 20, elapsed
    assert len(upstream.log()) == 100


def _vm_hwm_kib(pid):
    """The kernel's record of the process's peak RSS (Linux), or None."""
    try:
        with open("/proc/%d/status" % pid) as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_1gb_streamed_upload_and_download_bounded_memory(start_proxy, upstream):
    p = start_proxy()
    proc = psutil.Process(p.proc.pid)
    raw_request(p, "POST", "/v1/sink", body=b"warm" * 1000)  # imports and pools are warm
    baseline = proc.memory_info().rss
    peak = [baseline]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            try:
                peak[0] = max(peak[0], proc.memory_info().rss)
            except psutil.Error:
                return
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    boundary = "----codexproxytest"
    head = ('--%s\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n--%s\r\n'
            'Content-Disposition: form-data; name="file"; filename="big.bin"\r\n'
            'Content-Type: application/octet-stream\r\n\r\n' % (boundary, boundary)).encode()
    tail = ("\r\n--%s--\r\n" % boundary).encode()
    block = bytes(range(256)) * 4096  # 1 MiB
    size = 1024 ** 3
    digest = hashlib.sha256(head)

    def body():
        yield head
        for _ in range(size // len(block)):
            yield block
        yield tail

    for _ in range(size // len(block)):
        digest.update(block)
    digest.update(tail)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", p.port, timeout=120)
        conn.request("POST", "/v1/files", body=body(), headers={
            "Content-Type": "multipart/form-data; boundary=" + boundary,
            "Content-Length": str(len(head) + size + len(tail))})
        answer = json.loads(conn.getresponse().read())
        conn.close()
        assert answer["bytes"] == len(head) + size + len(tail)
        rec = upstream.log()[-1]
        assert rec["body_sha256"] == digest.hexdigest()
        # Download the other way: 1 GiB from the provider, read slowly at first.
        conn = http.client.HTTPConnection("127.0.0.1", p.port, timeout=120)
        conn.request("GET", "/v1/bytes?n=%d" % size)
        resp = conn.getresponse()
        got = 0
        time.sleep(1.0)  # the proxy must wait for us, not buffer the upstream's bytes
        while True:
            chunk = resp.read(1024 * 1024)
            if not chunk:
                break
            got += len(chunk)
        conn.close()
        assert got == size
    finally:
        stop.set()
        sampler.join(5)
    hwm = _vm_hwm_kib(p.proc.pid)
    grown = (peak[0] - baseline) / 2.0 ** 20
    print("proxy RSS: baseline %.1f MiB, sampled peak +%.1f MiB, VmHWM %.1f MiB"
          % (baseline / 2.0 ** 20, grown, (hwm or 0) / 1024.0))
    assert grown < 40, "proxy RSS grew by %.1f MiB during 2 GiB of streaming" % grown
    if hwm is not None:
        assert hwm * 1024 - baseline < 40 * 2 ** 20, (hwm, baseline)


@pytest.mark.slow
@pytest.mark.parametrize("version", ["3.9", "3.12", "3.13"])
def test_download_backpressure_under_other_pythons(version, dist_codex, start_proxy, upstream):
    # Python 3.12/3.13's writelines() skips flow control: this is what caught it.
    from test_py39 import find_python

    python = find_python(version)
    if python is None:
        pytest.skip("python%s not found on PATH or under pyenv" % version)
    p = start_proxy(cmd=[python, str(dist_codex)])
    proc = psutil.Process(p.proc.pid)
    raw_request(p, "GET", "/v1/models")
    baseline = proc.memory_info().rss
    size = 256 * 1024 * 1024
    conn = http.client.HTTPConnection("127.0.0.1", p.port, timeout=60)
    conn.request("GET", "/v1/bytes?n=%d" % size)
    resp = conn.getresponse()
    time.sleep(1.0)  # not reading: the proxy must stop reading from the provider too
    stalled = proc.memory_info().rss
    got = 0
    while True:
        chunk = resp.read(1024 * 1024)
        if not chunk:
            break
        got += len(chunk)
    conn.close()
    assert got == size
    assert stalled - baseline < 30 * 2 ** 20, "python%s: +%.0f MiB" % (version, (stalled - baseline) / 2.0 ** 20)


# -- the built zipapp -----------------------------------------------------------------------


def test_python39_runs_the_proxy(dist_codex, start_proxy, upstream):
    from test_py39 import find_python

    py39 = find_python("3.9")
    if py39 is None:
        pytest.skip("python3.9 not found on PATH or under pyenv")
    p = start_proxy(cmd=[py39, str(dist_codex)])
    client = sdk(p)
    stream = client.chat.completions.create(model="m", stream=True, messages=[{"role": "user", "content": "old py"}])
    assert "".join(c.choices[0].delta.content or "" for c in stream) == "echo: old py"
    assert client.files.create(file=("f.bin", b"x" * 200000), purpose="assistants").bytes > 200000
    sock = socket.create_connection(("127.0.0.1", p.port), timeout=10)
    sock.sendall(b"GET /v1/sse?n=50&delay_ms=50&first_delay_ms=3000 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert wait_until(lambda: any("/v1/sse" in r["target"] for r in upstream.log()), timeout=10)
    sock.close()
    assert "client closed" in p.wait_lines(3)[-1]
    assert p.stop() == 0


def test_dist_codex_proxy(dist_codex, start_proxy, upstream):
    p = start_proxy(cmd=[str(dist_codex)])
    assert raw_request(p, "GET", "/health")[0] == 200
    resp = sdk(p).chat.completions.create(model="m", messages=[{"role": "user", "content": "zip"}])
    assert resp.choices[0].message.content == "echo: zip"
    assert p.stop() == 0 and "codex proxy stopped" in "".join(p.lines)
