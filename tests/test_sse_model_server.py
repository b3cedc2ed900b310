"""The scripted model server itself (tests/support/model_server.py), over raw sockets."""
import http.client
import json
import time

import pytest

from support.model_server import ModelServer, Turn

pytestmark = pytest.mark.timeout(30)


def _post(server, path, body, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("POST", path, body=json.dumps(body), headers=dict({"Content-Type": "application/json"}, **(headers or {})))
    resp = conn.getresponse()
    return conn, resp


def _sse_payloads(raw):
    out = []
    for block in raw.decode().replace("\r\n", "\n").split("\n\n"):
        for line in block.split("\n"):
            if line.startswith("data: "):
                data = line[6:]
                out.append(data if data == "[DONE]" else json.loads(data))
    return out


def test_responses_stream_and_recording():
    with ModelServer() as server:
        server.enqueue(Turn().reasoning("think").text("hello world").function_call("shell", {"command": ["ls"]}, call_id="c9").usage(7, 3))
        conn, resp = _post(server, "/v1/responses", {"model": "m", "stream": True, "input": []}, {"Authorization": "Bearer k"})
        assert resp.status == 200
        assert resp.getheader("Content-Type") == "text/event-stream"
        events = _sse_payloads(resp.read())
        types = [e["type"] for e in events]
        assert types[0] == "response.created" and types[-1] == "response.completed"
        text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
        assert text == "hello world"
        done = [e["item"] for e in events if e["type"] == "response.output_item.done"]
        assert [d["type"] for d in done] == ["reasoning", "message", "function_call"]
        assert done[2]["call_id"] == "c9" and json.loads(done[2]["arguments"]) == {"command": ["ls"]}
        assert events[-1]["response"]["usage"]["input_tokens"] == 7
        req = server.requests[0]
        assert req.api == "responses" and req.headers["authorization"] == "Bearer k" and req.body["model"] == "m"


def test_chat_stream_parallel_calls():
    with ModelServer() as server:
        server.enqueue(Turn().function_call("a", {"x": 1}, call_id="c1").function_call("b", {"y": 2}, call_id="c2"))
        conn, resp = _post(server, "/v1/chat/completions?api-version=2025", {"stream": True, "messages": []})
        chunks = _sse_payloads(resp.read())
        assert chunks[-1] == "[DONE]"
        by_index = {}
        for c in chunks[:-1]:
            for tc in c["choices"][0]["delta"].get("tool_calls", []):
                by_index.setdefault(tc["index"], "")
                by_index[tc["index"]] += tc["function"].get("arguments", "")
        assert {k: json.loads(v) for k, v in by_index.items()} == {0: {"x": 1}, 1: {"y": 2}}
        assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
        assert server.requests[0].query == {"api-version": "2025"}


def test_errors_rate_limit_and_empty_queue():
    with ModelServer() as server:
        server.enqueue(Turn.rate_limited(retry_after=2, retry_after_ms=1500), Turn.http_error(401, "bad key"))
        _, resp = _post(server, "/v1/responses", {"stream": True})
        assert resp.status == 429 and resp.getheader("Retry-After") == "2" and resp.getheader("retry-after-ms") == "1500"
        resp.read()
        _, resp = _post(server, "/v1/responses", {"stream": True})
        assert resp.status == 401 and json.loads(resp.read())["error"]["message"] == "bad key"
        _, resp = _post(server, "/v1/responses", {"stream": True})
        assert resp.status == 500 and b"no scripted turn" in resp.read()
        assert len(server.wait_for_requests(3)) == 3


def test_dropped_stream_is_incomplete():
    with ModelServer() as server:
        server.enqueue(Turn().text("abcdefgh").drop_after(3))
        _, resp = _post(server, "/v1/responses", {"stream": True})
        with pytest.raises(http.client.IncompleteRead):
            resp.read()


def test_idle_and_no_completed():
    with ModelServer() as server:
        server.enqueue(Turn().text("x").idle_after(2, 0.5).no_completed())
        t0 = time.monotonic()
        _, resp = _post(server, "/v1/responses", {"stream": True})
        events = _sse_payloads(resp.read())
        assert time.monotonic() - t0 >= 0.45
        assert "response.completed" not in [e["type"] for e in events]
