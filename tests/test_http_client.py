"""HttpClient, the stdlib HTTP/1.1 client model requests go through: TLS with a custom CA,
CONNECT tunnels with proxy credentials, NO_PROXY, kept-alive connections, gzip and chunked
bodies, timeouts.  Real sockets on 127.0.0.1."""
import base64
import gzip
import socket
import threading

import pytest

import codex
from support.agent_env import mock_config
from support.model_server import ModelServer, Turn


class RawServer(object):
    """Answers each request on a connection with the next scripted raw response; counts connections."""

    def __init__(self, responses):
        self.responses = list(responses)
        self.connections = 0
        self.requests = []
        self.closing = threading.Event()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while self.responses:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            reader = conn.makefile("rb")
            while self.responses:
                head = b""
                while not head.endswith(b"\r\n\r\n"):
                    line = reader.readline()
                    if not line:
                        break
                    head += line
                if not head:
                    break
                length = [int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
                body = reader.read(length[0]) if length else b""
                self.requests.append((head, body))
                response = self.responses.pop(0)
                if response is None:  # hang up without answering
                    break
                conn.sendall(response)
            if not self.responses:
                self.closing.wait(10)  # keep the last connection open (a stalled server)
            reader.close()
            conn.close()

    def close(self):
        self.closing.set()
        self.sock.close()


def test_kept_alive_connection_gzip_and_chunked_bodies():
    raw = gzip.compress(b"hello gzip")
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n chunk\r\n0\r\n\r\n"
    gz = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s" % (len(raw), raw)
    server = RawServer([chunked, gz])
    client = codex.HttpClient(5.0, environ={})
    url = "http://127.0.0.1:%d/v1/x?q=1" % server.port
    resp = client.send(client.build_request("POST", url, {"X-A": "1"}, b"{}"))
    assert resp.status_code == 200 and b"".join(resp.iter_bytes()) == b"hello chunk"
    resp = client.send(client.build_request("POST", url, {}, b"{}"))
    assert resp.read() == b"hello gzip"
    assert server.connections == 1  # the second request reused the first connection
    head = server.requests[0][0].decode()
    assert head.startswith("POST /v1/x?q=1 HTTP/1.1\r\n") and "Host: 127.0.0.1:%d\r\n" % server.port in head
    assert "X-A: 1\r\n" in head and "Content-Length: 2\r\n" in head
    client.close()
    server.close()


def test_a_kept_alive_connection_the_server_dropped_is_replaced():
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    server = RawServer([ok, None, ok])  # answers, then drops the kept-alive connection unanswered
    client = codex.HttpClient(5.0, environ={})
    url = "http://127.0.0.1:%d/" % server.port
    assert client.send(client.build_request("POST", url, {}, b"a")).read() == b"ok"
    assert client.send(client.build_request("POST", url, {}, b"b")).read() == b"ok"
    assert server.connections == 2
    client.close()
    server.close()


def test_idle_read_timeout_and_refused_connection():
    server = RawServer([b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"])
    client = codex.HttpClient(0.3, environ={})
    resp = client.send(client.build_request("POST", "http://127.0.0.1:%d/" % server.port, {}, b""))
    with pytest.raises(codex.HttpTimeout):
        resp.read()
    server.close()
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()
    with pytest.raises(codex.HttpTransportError) as err:
        client.send(client.build_request("POST", "http://127.0.0.1:%d/" % port, {}, b""))
    assert "cannot connect to 127.0.0.1:%d" % port in str(err.value)


def test_env_proxy_rules():
    env = {"HTTPS_PROXY": "http://u:p%40ss@proxy.corp:3128", "http_proxy": "proxy.corp:8080",
           "NO_PROXY": "internal.corp, .svc,10.0.0.5,[::2]:443"}
    assert codex.env_proxy("https", "api.openai.com", env) == (
        "proxy.corp", 3128, "Basic " + base64.b64encode(b"u:p@ss").decode())
    assert codex.env_proxy("http", "example.com", env) == ("proxy.corp", 8080, None)
    for host in ("internal.corp", "a.internal.corp", "x.svc", "10.0.0.5", "::2", "localhost", "127.0.0.1", "::1"):
        assert codex.env_proxy("https", host, env) is None, host
    assert codex.env_proxy("https", "notinternal.corp", env) is not None
    assert codex.env_proxy("https", "anything", dict(env, NO_PROXY="*")) is None
    assert codex.env_proxy("https", "x", {"ALL_PROXY": "http://p:1"}) == ("p", 1, None)
    assert codex.env_proxy("https", "x", {"HTTPS_PROXY": "http://upper:1", "https_proxy": "http://lower:2"})[0] == "lower"
    with pytest.raises(codex.ConfigError) as err:
        codex.env_proxy("https", "x", {"HTTPS_PROXY": "socks5://user:secret@p:1080"})
    assert "HTTPS_PROXY" in str(err.value) and "secret" not in str(err.value)


def test_https_through_a_connect_proxy_with_a_custom_ca(codex_home, tmp_path):
    pytest.importorskip("cryptography")
    from support.proxy_net import ForwardProxy, make_certs

    certs = make_certs(tmp_path)
    proxy = ForwardProxy()
    try:
        with ModelServer(tls=(str(certs["cert"]), str(certs["key"]))) as server:
            server.enqueue(Turn().text("one"), Turn().text("two"))

            class Remote(object):  # the provider by a name only the proxy resolves
                url = "https://provider.test:%d/v1" % server.port

            env = {"CODEX_TEST_MOCK_KEY": "k", "HTTPS_PROXY": proxy.url.replace("http://", "http://me:pw@"),
                   "CODEX_CA_CERTIFICATE": str(certs["ca"])}
            cfg = mock_config(Remote, codex_home, tmp_path, request_max_retries=0, environ=env)
            client = codex.ResponsesClient(cfg, "s", environ=env)
            prompt = codex.Prompt([codex.text_message("user", "hi")], [], "base")
            for want in ("one", "two"):
                events = list(client.stream(prompt))
                assert events[-1][0] == "completed"
                assert want in "".join(p for k, p in events if k == "text_delta")
            client.close()
            # one tunnel for both requests, with the proxy credentials
            assert proxy.seen == [("CONNECT provider.test:%d HTTP/1.1" % server.port,
                                   "Basic " + base64.b64encode(b"me:pw").decode())]
            # without the CA, the server's certificate is refused with a hint
            env.pop("CODEX_CA_CERTIFICATE")
            with pytest.raises(codex.ProviderError) as err:
                list(codex.ResponsesClient(cfg, "s", environ=env).stream(prompt))
            assert "CODEX_CA_CERTIFICATE" in str(err.value)
    finally:
        proxy.stop()


def test_a_stream_closed_after_its_last_event_keeps_the_connection():
    """The turn loop stops reading at response.completed; the closing chunk right behind it is
    drained so the next request reuses the connection (and the server sees no reset)."""
    sse = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n" \
          b"f\r\ndata: {\"a\":1}\n\n\r\n0\r\n\r\n"
    server = RawServer([sse, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"])
    client = codex.HttpClient(5.0, environ={})
    url = "http://127.0.0.1:%d/" % server.port
    resp = client.send(client.build_request("POST", url, {}, b"{}"))
    assert next(resp.iter_bytes()) == b"data: {\"a\":1}\n\n"
    resp.close()  # the caller is done before the terminating chunk was read
    assert client.send(client.build_request("POST", url, {}, b"{}")).read() == b"ok"
    assert server.connections == 1
    client.close()
    server.close()
