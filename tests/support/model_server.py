"""A scripted model server on 127.0.0.1 that speaks both OpenAI wire APIs (stdlib only).

Every test that needs "a model" starts one of these, points a provider's `base_url` at
`server.url`, queues the turns the model should answer with, runs codex, and then asserts
on what was requested.  It is real HTTP/1.1 over a real socket: streamed answers use
chunked transfer encoding and Server-Sent Events exactly like the real services.

Quick start::

    from support.model_server import ModelServer, Turn

    with ModelServer() as server:                  # or server.start() / server.stop()
        server.enqueue(
            Turn().function_call("shell", {"command": ["echo", "hi"]}, call_id="c1"),
            Turn().text("done"),
        )
        cfg_args = ["-c", 'model_provider="mock"',
                    "-c", 'model_providers.mock.base_url="%s"' % server.url,
                    "-c", 'model_providers.mock.wire_api="responses"']  # or "chat"
        ... run codex ...
        req = server.requests[1]                    # RecordedRequest
        assert req.path == "/v1/responses"
        assert req.body["input"][-1]["type"] == "function_call_output"
        assert req.headers["authorization"] == "Bearer test-key"

Endpoints
    POST /v1/responses          Responses API; SSE events `response.*` (stream:true) or a
                                JSON response object (stream:false).
    POST /v1/chat/completions   Chat Completions; SSE `chat.completion.chunk`s ending in
                                `data: [DONE]` (stream:true) or a JSON completion.
    GET  /v1/models             a small model list.
    .routes[(METHOD, PATH)] = obj   answer that exact path with 200 and the JSON `obj` (servers'
                                own endpoints: llama.cpp's GET /props, Ollama's POST /api/show).
    The `/v1` prefix is optional (any path ending in `/responses` or `/chat/completions`
    works, so Azure-style `/openai/deployments/x/chat/completions?api-version=...` does too).
    Anything else answers 404.

Server API
    ModelServer(host="127.0.0.1", port=0, default=None, tls=None)
        default: a Turn (or callable) served whenever the queue is empty; without one an
        empty queue answers HTTP 500 {"error": {"message": "model_server: no scripted turn
        left"}} so a test that asks more than it scripted fails loudly.
        tls: (certfile, keyfile) to serve HTTPS instead (then .url starts with https://);
        make_self_signed_cert(dir) -> (certfile, keyfile) creates a pair with openssl.
    .start() / .stop() / context manager;  .url == "http://127.0.0.1:PORT/v1";  .base == without /v1
    .enqueue(*turns)        append Turns (or callables `f(RecordedRequest) -> Turn`) to the queue;
                            one turn is consumed per model request (POST to either API).
    .requests               list of RecordedRequest, in arrival order (model requests and others).
    .model_requests()       only the POSTs to /responses or /chat/completions.
    .wait_for_requests(n, timeout=5) -> list   block until at least n model requests arrived.
    .pending()              number of turns still queued.
    .clear()                drop queued turns and recorded requests.

RecordedRequest
    .method, .path (without query), .query (dict of str -> str), .headers (dict, lowercased
    names), .raw (bytes), .body (parsed JSON or None), .api ("responses" | "chat" | None),
    .time (time.monotonic() at arrival).

Turn builder (methods return self so they chain).  Output items are emitted in the order
they are added, on either wire:
    .text(s, chunks=None, chunk_size=None)   assistant message; streamed as deltas (`chunks`
                                 = explicit list of delta strings, else split every
                                 `chunk_size` chars, default: about 4 deltas)
    .reasoning(summary, encrypted="enc-<n>")  reasoning item (Responses: summary deltas and a
                                 reasoning item with encrypted_content; Chat: `delta.reasoning`)
    .function_call(name, arguments, call_id=None)  arguments: dict (JSON-encoded) or raw str.
                                 Several calls in one turn = parallel tool calls (Chat: one
                                 tool_calls entry per `index`, arguments split over chunks).
    .usage(input_tokens=, output_tokens=, cached_input_tokens=0, reasoning_output_tokens=0)
                                 usage reported in response.completed (Responses) and, when
                                 `chat_usage=True` was given, a final chat usage chunk.
    .response_id(rid)            id of the response (default resp_<n>).
Errors and stream faults:
    Turn.http_error(status, message="...", headers=None, body=None, error_type=None, code=None)
                                 a plain HTTP error with a JSON error body (or `body` verbatim).
    Turn.rate_limited(retry_after=None, retry_after_ms=None, message="Rate limit reached")
                                 429 with `Retry-After` (seconds) / `retry-after-ms` headers.
    .failed(message, code=None)  end the stream with `response.failed` instead of completed.
    .drop_after(n)               send n SSE events, then close the socket mid-stream (no
                                 terminating chunk: the client sees a transport error).
    .no_completed()              end the stream cleanly without `response.completed`
                                 (Chat: without finish_reason and without [DONE]).
    .bad_data(text)              send `data: <text>` (not JSON) as the stream's last event.
    .delay(seconds)              sleep between every SSE event (slow stream).
    .idle_after(n, seconds)      after n events, send nothing for `seconds` (idle stream),
                                 then carry on.
    .headers(**h) / .status(code)  extra response headers / another 2xx status.
    .crlf()                      frame the SSE with CRLF line endings.
    .chat_usage()                also send a usage chunk on the chat wire.
Events emitted on /v1/responses for a turn: response.created, response.in_progress, then per
item output_item.added, its deltas (output_text.delta / reasoning_summary_part.added +
reasoning_summary_text.delta / function_call_arguments.delta), the matching *.done events
and output_item.done, then response.completed (with `output` and `usage`).
"""
import itertools
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

_ids = itertools.count(1)


class RecordedRequest(object):
    """One HTTP request the server received."""

    def __init__(self, method, path, query, headers, raw):
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.raw = raw
        self.time = time.monotonic()
        try:
            self.body = json.loads(raw.decode("utf-8")) if raw else None
        except ValueError:
            self.body = None
        if path.endswith("/responses"):
            self.api = "responses"
        elif path.endswith("/chat/completions"):
            self.api = "chat"
        else:
            self.api = None

    def __repr__(self):
        return "RecordedRequest(%s %s)" % (self.method, self.path)


class Turn(object):
    """One scripted model answer (or a scripted failure)."""

    def __init__(self):
        self.items = []
        self._usage = None
        self._rid = "resp_%d" % next(_ids)
        self._status = 200
        self._headers = {}
        self._error_body = None
        self._failed = None
        self._drop_after = None
        self._no_completed = False
        self._delay = 0.0
        self._idle = None
        self._crlf = False
        self._chat_usage = False
        self._bad_data = None

    # -- content --
    def text(self, s, chunks=None, chunk_size=None):
        """Add an assistant message streamed as deltas."""
        if chunks is None:
            size = chunk_size or max(1, (len(s) + 3) // 4)
            chunks = [s[i:i + size] for i in range(0, len(s), size)] or [""]
        self.items.append({"kind": "message", "text": s, "chunks": list(chunks), "id": "msg_%d" % next(_ids)})
        return self

    def reasoning(self, summary, encrypted=None):
        """Add a reasoning item with one summary part."""
        n = next(_ids)
        self.items.append({"kind": "reasoning", "text": summary, "id": "rs_%d" % n,
                           "encrypted": encrypted if encrypted is not None else "enc-%d" % n})
        return self

    def function_call(self, name, arguments, call_id=None):
        """Add a function call (several in one turn are parallel calls)."""
        n = next(_ids)
        args = arguments if isinstance(arguments, str) else json.dumps(arguments)
        self.items.append({"kind": "function_call", "name": name, "arguments": args,
                           "call_id": call_id or "call_%d" % n, "id": "fc_%d" % n})
        return self

    def usage(self, input_tokens=10, output_tokens=5, cached_input_tokens=0, reasoning_output_tokens=0):
        """Report token usage at the end of the turn."""
        self._usage = {
            "input_tokens": input_tokens,
            "input_tokens_details": {"cached_tokens": cached_input_tokens},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": reasoning_output_tokens},
            "total_tokens": input_tokens + output_tokens,
        }
        return self

    def response_id(self, rid):
        """Set the response id."""
        self._rid = rid
        return self

    # -- faults --
    @classmethod
    def http_error(cls, status, message="scripted error", headers=None, body=None, error_type=None, code=None):
        """A non-streamed HTTP error answer."""
        t = cls()
        t._status = status
        t._headers = dict(headers or {})
        if body is None:
            err = {"message": message, "type": error_type or "invalid_request_error", "code": code}
            body = json.dumps({"error": err})
        t._error_body = body if isinstance(body, bytes) else body.encode("utf-8")
        return t

    @classmethod
    def rate_limited(cls, retry_after=None, retry_after_ms=None, message="Rate limit reached", error_type="requests"):
        """A 429 with Retry-After (seconds) and/or retry-after-ms headers."""
        headers = {}
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        if retry_after_ms is not None:
            headers["retry-after-ms"] = str(retry_after_ms)
        return cls.http_error(429, message, headers=headers, error_type=error_type, code="rate_limit_exceeded")

    def failed(self, message, code=None):
        """End the stream with response.failed."""
        self._failed = {"message": message, "code": code}
        return self

    def drop_after(self, n):
        """Close the connection after n SSE events."""
        self._drop_after = n
        return self

    def no_completed(self):
        """End the stream without response.completed / finish_reason."""
        self._no_completed = True
        return self

    def delay(self, seconds):
        """Sleep between SSE events."""
        self._delay = seconds
        return self

    def idle_after(self, n, seconds):
        """Go quiet for `seconds` after n events."""
        self._idle = (n, seconds)
        return self

    def headers(self, **h):
        """Extra response headers (underscores become dashes)."""
        for k, v in h.items():
            self._headers[k.replace("_", "-")] = str(v)
        return self

    def status(self, code):
        """Another success status."""
        self._status = code
        return self

    def crlf(self):
        """Use CRLF line endings in the SSE framing."""
        self._crlf = True
        return self

    def bad_data(self, text):
        """End the stream with an event whose data is `text` (not JSON)."""
        self._bad_data = text
        return self

    def chat_usage(self):
        """Send a usage chunk on the chat wire too."""
        self._chat_usage = True
        return self

    # -- rendering: Responses --
    def responses_events(self, model="mock-model"):
        """The list of (event name, payload) the Responses wire sends for this turn."""
        ev = []
        base = {"id": self._rid, "object": "response", "model": model, "status": "in_progress", "output": []}
        ev.append(("response.created", {"type": "response.created", "response": base}))
        ev.append(("response.in_progress", {"type": "response.in_progress", "response": base}))
        output = []
        for idx, it in enumerate(self.items):
            kind = it["kind"]
            if kind == "message":
                added = {"type": "message", "id": it["id"], "role": "assistant", "status": "in_progress", "content": []}
                ev.append(("response.output_item.added", {"type": "response.output_item.added", "output_index": idx, "item": added}))
                ev.append(("response.content_part.added", {"type": "response.content_part.added", "item_id": it["id"],
                                                           "output_index": idx, "content_index": 0,
                                                           "part": {"type": "output_text", "text": "", "annotations": []}}))
                for chunk in it["chunks"]:
                    ev.append(("response.output_text.delta", {"type": "response.output_text.delta", "item_id": it["id"],
                                                              "output_index": idx, "content_index": 0, "delta": chunk}))
                ev.append(("response.output_text.done", {"type": "response.output_text.done", "item_id": it["id"],
                                                         "output_index": idx, "content_index": 0, "text": it["text"]}))
                part = {"type": "output_text", "text": it["text"], "annotations": []}
                ev.append(("response.content_part.done", {"type": "response.content_part.done", "item_id": it["id"],
                                                          "output_index": idx, "content_index": 0, "part": part}))
                done = {"type": "message", "id": it["id"], "role": "assistant", "status": "completed", "content": [part]}
            elif kind == "reasoning":
                added = {"type": "reasoning", "id": it["id"], "summary": []}
                ev.append(("response.output_item.added", {"type": "response.output_item.added", "output_index": idx, "item": added}))
                ev.append(("response.reasoning_summary_part.added", {"type": "response.reasoning_summary_part.added",
                                                                     "item_id": it["id"], "output_index": idx, "summary_index": 0,
                                                                     "part": {"type": "summary_text", "text": ""}}))
                ev.append(("response.reasoning_summary_text.delta", {"type": "response.reasoning_summary_text.delta",
                                                                     "item_id": it["id"], "output_index": idx,
                                                                     "summary_index": 0, "delta": it["text"]}))
                ev.append(("response.reasoning_summary_text.done", {"type": "response.reasoning_summary_text.done",
                                                                    "item_id": it["id"], "output_index": idx,
                                                                    "summary_index": 0, "text": it["text"]}))
                done = {"type": "reasoning", "id": it["id"], "summary": [{"type": "summary_text", "text": it["text"]}],
                        "encrypted_content": it["encrypted"]}
            else:
                added = {"type": "function_call", "id": it["id"], "call_id": it["call_id"], "name": it["name"],
                         "arguments": "", "status": "in_progress"}
                ev.append(("response.output_item.added", {"type": "response.output_item.added", "output_index": idx, "item": added}))
                ev.append(("response.function_call_arguments.delta", {"type": "response.function_call_arguments.delta",
                                                                      "item_id": it["id"], "output_index": idx,
                                                                      "delta": it["arguments"]}))
                ev.append(("response.function_call_arguments.done", {"type": "response.function_call_arguments.done",
                                                                     "item_id": it["id"], "output_index": idx,
                                                                     "arguments": it["arguments"]}))
                done = {"type": "function_call", "id": it["id"], "call_id": it["call_id"], "name": it["name"],
                        "arguments": it["arguments"], "status": "completed"}
            output.append(done)
            ev.append(("response.output_item.done", {"type": "response.output_item.done", "output_index": idx, "item": done}))
        if self._failed is not None:
            resp = dict(base, status="failed", error=self._failed)
            ev.append(("response.failed", {"type": "response.failed", "response": resp}))
        elif not self._no_completed:
            resp = dict(base, status="completed", output=output, usage=self._usage)
            ev.append(("response.completed", {"type": "response.completed", "response": resp}))
        return ev

    def responses_json(self, model="mock-model"):
        """The non-streamed Responses answer."""
        output = [e[1]["item"] for e in self.responses_events(model) if e[0] == "response.output_item.done"]
        return {"id": self._rid, "object": "response", "model": model, "status": "completed",
                "output": output, "usage": self._usage}

    # -- rendering: Chat Completions --
    def chat_chunks(self, model="mock-model"):
        """The list of chunk payloads (dicts, or the string "[DONE]") the Chat wire sends."""
        out = []
        created = int(time.time())

        def chunk(delta, finish=None):
            return {"id": "chatcmpl-" + self._rid, "object": "chat.completion.chunk", "created": created,
                    "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

        out.append(chunk({"role": "assistant", "content": ""}))
        calls = []
        for it in self.items:
            if it["kind"] == "reasoning":
                out.append(chunk({"reasoning": it["text"]}))
            elif it["kind"] == "message":
                for piece in it["chunks"]:
                    out.append(chunk({"content": piece}))
            else:
                calls.append(it)
        for index, it in enumerate(calls):
            args = it["arguments"]
            half = len(args) // 2
            out.append(chunk({"tool_calls": [{"index": index, "id": it["call_id"], "type": "function",
                                              "function": {"name": it["name"], "arguments": args[:half]}}]}))
            out.append(chunk({"tool_calls": [{"index": index, "function": {"arguments": args[half:]}}]}))
        if self._no_completed:
            return out
        out.append(chunk({}, "tool_calls" if calls else "stop"))
        if self._chat_usage and self._usage:
            u = self._usage
            usage = {"prompt_tokens": u["input_tokens"], "completion_tokens": u["output_tokens"],
                     "total_tokens": u["total_tokens"],
                     "prompt_tokens_details": {"cached_tokens": u["input_tokens_details"]["cached_tokens"]},
                     "completion_tokens_details": {"reasoning_tokens": u["output_tokens_details"]["reasoning_tokens"]}}
            out.append({"id": "chatcmpl-" + self._rid, "object": "chat.completion.chunk", "created": created,
                        "model": model, "choices": [], "usage": usage})
        out.append("[DONE]")
        return out

    def chat_json(self, model="mock-model"):
        """The non-streamed Chat answer."""
        msg = {"role": "assistant", "content": "".join(i["text"] for i in self.items if i["kind"] == "message") or None}
        calls = [i for i in self.items if i["kind"] == "function_call"]
        if calls:
            msg["tool_calls"] = [{"id": c["call_id"], "type": "function",
                                  "function": {"name": c["name"], "arguments": c["arguments"]}} for c in calls]
        body = {"id": "chatcmpl-" + self._rid, "object": "chat.completion", "created": int(time.time()), "model": model,
                "choices": [{"index": 0, "message": msg, "finish_reason": "tool_calls" if calls else "stop"}]}
        if self._usage:
            body["usage"] = {"prompt_tokens": self._usage["input_tokens"],
                             "completion_tokens": self._usage["output_tokens"],
                             "total_tokens": self._usage["total_tokens"]}
        return body


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep pytest output clean
        pass

    def _read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            return self.rfile.read(length)
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        return b""

    def _record(self):
        parts = urlsplit(self.path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        req = RecordedRequest(self.command, parts.path, dict(parse_qsl(parts.query)), headers, self._read_body())
        self.server.owner._record(req)
        return req

    def _send_json(self, status, obj, headers=None):
        data = obj if isinstance(obj, bytes) else json.dumps(obj).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def do_GET(self):
        req = self._record()
        if ("GET", req.path) in self.server.owner.routes:
            self._send_json(200, self.server.owner.routes[("GET", req.path)])
        elif req.path.endswith("/models"):
            self._send_json(200, {"object": "list", "data": [{"id": "mock-model", "object": "model", "owned_by": "mock"}]})
        else:
            self._send_json(404, {"error": {"message": "not found: %s" % req.path}})

    def do_POST(self):
        req = self._record()
        if ("POST", req.path) in self.server.owner.routes:
            self._send_json(200, self.server.owner.routes[("POST", req.path)])
            return
        if req.api is None:
            self._send_json(404, {"error": {"message": "not found: %s" % req.path}})
            return
        turn = self.server.owner._next_turn(req)
        if turn is None:
            self._send_json(500, {"error": {"message": "model_server: no scripted turn left", "type": "server_error"}})
            return
        if turn._error_body is not None:
            self._send_json(turn._status, turn._error_body, turn._headers)
            return
        model = (req.body or {}).get("model") or "mock-model"
        if not (req.body or {}).get("stream"):
            body = turn.responses_json(model) if req.api == "responses" else turn.chat_json(model)
            self._send_json(turn._status, body, turn._headers)
            return
        nl = "\r\n" if turn._crlf else "\n"
        if req.api == "responses":
            frames = ["event: %s%sdata: %s%s%s" % (name, nl, json.dumps(p), nl, nl) for name, p in turn.responses_events(model)]
        else:
            frames = ["data: %s%s%s" % (p if isinstance(p, str) else json.dumps(p), nl, nl) for p in turn.chat_chunks(model)]
        if turn._bad_data is not None:
            frames.append("data: %s%s%s" % (turn._bad_data, nl, nl))
        self.send_response(turn._status)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        for k, v in turn._headers.items():
            self.send_header(k, v)
        self.end_headers()
        try:
            for n, frame in enumerate(frames):
                if turn._drop_after is not None and n >= turn._drop_after:
                    self._drop()
                    return
                if turn._idle is not None and n == turn._idle[0]:
                    self._sleep(turn._idle[1])
                elif turn._delay and n:
                    self._sleep(turn._delay)
                data = frame.encode("utf-8")
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()
            if turn._drop_after is not None and turn._drop_after >= len(frames):
                self._drop()
                return
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True

    def _sleep(self, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end and not self.server.owner._stopping.is_set():
            time.sleep(min(0.02, max(0.0, end - time.monotonic())))

    def _drop(self):
        """Close the socket without the terminating chunk (a dropped stream)."""
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class ModelServer(object):
    """The scripted model server (see the module docstring)."""

    def __init__(self, host="127.0.0.1", port=0, default=None, tls=None):
        self._tls = tls
        self._host = host
        self._port = port
        self.default = default
        self.requests = []
        self.routes = {}  # (method, path) -> JSON answered with 200 (e.g. llama.cpp's /props)
        self._queue = []
        self._lock = threading.Condition()
        self._stopping = threading.Event()
        self._httpd = None
        self._thread = None

    # -- lifecycle --
    def start(self):
        """Bind and serve in a daemon thread; returns self."""
        self._httpd = _Server((self._host, self._port), _Handler)
        self._httpd.owner = self
        if self._tls:
            import ssl

            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*self._tls)
            self._httpd.socket = ctx.wrap_socket(self._httpd.socket, server_side=True)
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="model-server", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        """Stop serving and close the socket."""
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def port(self):
        """The bound port."""
        return self._httpd.server_address[1]

    @property
    def base(self):
        """http://127.0.0.1:PORT"""
        return "%s://%s:%d" % ("https" if self._tls else "http", self._host, self.port)

    @property
    def url(self):
        """http://127.0.0.1:PORT/v1 (a provider base_url)."""
        return self.base + "/v1"

    # -- script --
    def enqueue(self, *turns):
        """Queue turns (or callables taking the RecordedRequest and returning a Turn)."""
        with self._lock:
            self._queue.extend(turns)
        return self

    def pending(self):
        """Turns still queued."""
        with self._lock:
            return len(self._queue)

    def clear(self):
        """Forget queued turns and recorded requests."""
        with self._lock:
            self._queue[:] = []
            self.requests[:] = []

    def model_requests(self):
        """The recorded POSTs to /responses or /chat/completions."""
        with self._lock:
            return [r for r in self.requests if r.api is not None and r.method == "POST"]

    def wait_for_requests(self, n, timeout=5.0):
        """Wait until n model requests arrived; return them (AssertionError on timeout)."""
        end = time.monotonic() + timeout
        with self._lock:
            while True:
                got = [r for r in self.requests if r.api is not None and r.method == "POST"]
                if len(got) >= n:
                    return got
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError("model server got %d model requests, expected %d" % (len(got), n))
                self._lock.wait(left)

    # -- used by the handler --
    def _record(self, req):
        with self._lock:
            self.requests.append(req)
            self._lock.notify_all()

    def _next_turn(self, req):
        with self._lock:
            turn = self._queue.pop(0) if self._queue else self.default
        if callable(turn) and not isinstance(turn, Turn):
            turn = turn(req)
        return turn


def make_self_signed_cert(directory, host="127.0.0.1"):
    """Create a self-signed certificate for `host` with the openssl CLI; return (cert, key) paths."""
    import os
    import subprocess

    cert = os.path.join(str(directory), "server.pem")
    key = os.path.join(str(directory), "server.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", "/CN=%s" % host, "-addext", "subjectAltName=IP:%s" % host],
                   check=True, capture_output=True, timeout=60)
    return cert, key
