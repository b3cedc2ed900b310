"""A scripted OpenAI-compatible upstream for the proxy tests and benchmark (asyncio + h11).

Run it as a process: `python tests/support/proxy_upstream.py [--port 0] [--tls-cert PEM
--tls-key PEM]`; it prints
`PORT <n>` on stdout once it listens and serves until killed.  Routes:

    POST /v1/chat/completions   echo of the last user message, JSON or SSE (`"stream": true`)
    POST /v1/responses          the same for the Responses API
    POST /v1/files              multipart upload: hashed while streaming, FileObject back
    ANY  /v1/sink               any body: counts and hashes it, answers {"bytes", "sha256"}
    ANY  /v1/reject             answers 413 at once, drops 4 MiB of the body at most, hangs up
    ANY  /v1/echo...            answers the request line and headers it received as JSON
    GET  /v1/sse?n=&delay_ms=   n SSE events `data: <i>`, one every delay_ms (first_delay_ms:
                                a pause before the response headers)
    GET  /v1/bytes?n=           n bytes of payload, streamed in 64 KiB chunks
    GET  /v1/models             a tiny JSON answer (the latency benchmark's target)
    GET  /v1/cut?after=         promises 1000 bytes, sends `after` of them, hangs up
    GET  /_log, DELETE /_log    what was received so far (one record per request)

The `x-test-delay-ms` request header spaces SSE chunks of the chat/responses streams;
`x-test-drop-next: 1` makes the server hang up, unanswered, on the connection's next request.
Every record notes whether the client went away before the answer was complete.
"""
import argparse
import asyncio
import hashlib
import json
import sys
import time
from urllib.parse import parse_qs, urlsplit

import h11

CHUNK = 64 * 1024
PAYLOAD = bytes(range(256)) * (CHUNK // 256)
LOG = []


class Gone(Exception):
    pass


class Conn(object):
    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=256 * 1024)
        self.drop_next = False  # set by `x-test-drop-next: 1`: hang up on the next request

    async def event(self):
        while True:
            ev = self.h11.next_event()
            if ev is not h11.NEED_DATA:
                return ev
            try:
                data = await self.reader.read(CHUNK)
            except (ConnectionError, OSError):
                data = b""
            if not data and self.h11.their_state is h11.SEND_BODY:
                raise Gone()  # the client went away in the middle of its body
            self.h11.receive_data(data)

    async def send(self, ev):
        parts = self.h11.send_with_data_passthrough(ev)
        if parts:
            self.writer.write(b"".join(parts))  # writelines() skips flow control on 3.12
            try:
                await self.writer.drain()
            except (ConnectionError, OSError):
                raise Gone()
            if self.writer.is_closing():
                raise Gone()

    async def body(self, keep_limit=16 * 1024 * 1024):
        """Read the whole body: (length, sha256 hex, bytes or None when over keep_limit)."""
        h = hashlib.sha256()
        n = 0
        kept = []
        while True:
            ev = await self.event()
            if isinstance(ev, h11.Data):
                n += len(ev.data)
                h.update(ev.data)
                if n <= keep_limit:
                    kept.append(bytes(ev.data))
            elif isinstance(ev, h11.EndOfMessage):
                return n, h.hexdigest(), (b"".join(kept) if n <= keep_limit else None)
            else:
                raise Gone()

    async def reply(self, status, obj=None, raw=None, headers=()):
        body = raw if raw is not None else (json.dumps(obj).encode() if obj is not None else b"")
        hdrs = [("content-type", "application/json"), ("content-length", str(len(body)))] + list(headers)
        await self.send(h11.Response(status_code=status, headers=hdrs))
        if body:
            await self.send(h11.Data(data=body))
        await self.send(h11.EndOfMessage())

    async def start_sse(self, extra=()):
        await self.send(h11.Response(status_code=200, headers=[
            ("content-type", "text/event-stream"), ("cache-control", "no-cache")] + list(extra)))


def last_user_text(req):
    for msg in reversed(req.get("messages") or []):
        if msg.get("role") == "user":
            content = msg.get("content")
            if isinstance(content, list):
                content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
            return content or ""
    inp = req.get("input")
    if isinstance(inp, str):
        return inp
    if isinstance(inp, list):
        for item in reversed(inp):
            content = item.get("content") if isinstance(item, dict) else None
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def words(text):
    parts = ("echo: " + text).split(" ")
    return [p + (" " if i < len(parts) - 1 else "") for i, p in enumerate(parts)]


async def chat(conn, req, delay, rec):
    model = req.get("model", "m")
    text = "echo: " + last_user_text(req)
    if not req.get("stream"):
        return await conn.reply(200, {
            "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": model,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
        })
    await conn.start_sse()
    chunks = words(last_user_text(req))
    for i, piece in enumerate(chunks):
        delta = {"content": piece} if i else {"role": "assistant", "content": piece}
        ev = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 0, "model": model,
              "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
        await conn.send(h11.Data(data=b"data: " + json.dumps(ev).encode() + b"\n\n"))
        rec["events_sent"] = i + 1
        if delay:
            await asyncio.sleep(delay)
    end = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 0, "model": model,
           "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    await conn.send(h11.Data(data=b"data: " + json.dumps(end).encode() + b"\n\ndata: [DONE]\n\n"))
    await conn.send(h11.EndOfMessage())


def response_obj(model, text, status="completed"):
    return {
        "id": "resp_1", "object": "response", "created_at": 0, "status": status, "model": model,
        "output": [{"type": "message", "id": "msg_1", "status": "completed", "role": "assistant",
                    "content": [{"type": "output_text", "text": text, "annotations": []}]}]
        if status == "completed" else [],
        "parallel_tool_calls": True, "tool_choice": "auto", "tools": [], "error": None,
        "incomplete_details": None, "instructions": None, "metadata": {},
        "temperature": 1.0, "top_p": 1.0,
        "usage": {"input_tokens": 1, "output_tokens": 2, "total_tokens": 3,
                  "input_tokens_details": {"cached_tokens": 0},
                  "output_tokens_details": {"reasoning_tokens": 0}},
    }


async def responses(conn, req, delay, rec):
    model = req.get("model", "m")
    text = "echo: " + last_user_text(req)
    if not req.get("stream"):
        return await conn.reply(200, response_obj(model, text))
    await conn.start_sse()
    seq = [0]

    async def emit(kind, **fields):
        fields.update(type=kind, sequence_number=seq[0])
        seq[0] += 1
        await conn.send(h11.Data(data=("event: %s\ndata: %s\n\n" % (kind, json.dumps(fields))).encode()))

    await emit("response.created", response=response_obj(model, "", "in_progress"))
    item = {"type": "message", "id": "msg_1", "status": "in_progress", "role": "assistant", "content": []}
    await emit("response.output_item.added", output_index=0, item=item)
    for i, piece in enumerate(words(last_user_text(req))):
        await emit("response.output_text.delta", item_id="msg_1", output_index=0, content_index=0,
                   delta=piece, logprobs=[])
        rec["events_sent"] = i + 1
        if delay:
            await asyncio.sleep(delay)
    await emit("response.output_text.done", item_id="msg_1", output_index=0, content_index=0,
               text=text, logprobs=[])
    await emit("response.completed", response=response_obj(model, text))
    await conn.send(h11.EndOfMessage())


def multipart_summary(content_type, body):
    """(filename, sha256 of the file part, purpose) from a small multipart body."""
    from email.parser import BytesParser
    from email.policy import HTTP

    msg = BytesParser(policy=HTTP).parsebytes(
        b"content-type: " + content_type.encode() + b"\r\n\r\n" + body)
    out = {"filename": None, "file_sha256": None, "purpose": None}
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True) or b""
        if name == "file":
            out["filename"] = part.get_filename()
            out["file_sha256"] = hashlib.sha256(payload).hexdigest()
        elif name == "purpose":
            out["purpose"] = payload.decode()
    return out


async def handle(conn, req):
    target = req.target.decode()
    url = urlsplit(target)
    path, query = url.path, parse_qs(url.query)
    headers = [(k.decode(), v.decode("latin-1")) for k, v in req.headers]
    hmap = dict(headers)
    method = req.method.decode()
    rec = {"method": method, "target": target, "headers": headers, "t": time.time(),
           "peer_port": (conn.writer.get_extra_info("peername") or ("", 0))[1],
           "disconnected": False, "complete": False}
    if path == "/_log":
        await conn.body()
        if method == "DELETE":
            del LOG[:]
        return await conn.reply(200, LOG)
    LOG.append(rec)
    if conn.drop_next:  # a kept-alive connection that the server had given up on
        rec["dropped"] = True
        conn.writer.close()
        raise Gone()
    conn.drop_next = hmap.get("x-test-drop-next") == "1"
    delay = float(hmap.get("x-test-delay-ms", "0")) / 1000.0
    try:
        if path == "/v1/reject":  # answer at once; then read (and drop) 4 MiB at most and hang up
            await conn.reply(413, {"error": {"message": "request too large", "type": "invalid_request_error"}},
                             headers=[("connection", "close")])
            rec["complete"] = True
            dropped = 0
            try:
                while dropped < 4 * 1024 * 1024:
                    more = await asyncio.wait_for(conn.reader.read(CHUNK), 1.0)
                    if not more:
                        break
                    dropped += len(more)
            except (asyncio.TimeoutError, ConnectionError, OSError):
                pass
            rec["dropped_bytes"] = dropped
            conn.writer.close()
            return
        n, digest, body = await conn.body()
        rec.update(body_len=n, body_sha256=digest)
        if path == "/v1/chat/completions":
            await chat(conn, json.loads(body or b"{}"), delay, rec)
        elif path == "/v1/responses":
            await responses(conn, json.loads(body or b"{}"), delay, rec)
        elif path == "/v1/files":
            ctype = hmap.get("content-type", "")
            info = multipart_summary(ctype, body) if body is not None else {}
            rec.update(info)
            await conn.reply(200, {"id": "file-1", "object": "file", "bytes": n, "created_at": 0,
                                   "filename": info.get("filename") or "upload", "status": "processed",
                                   "purpose": info.get("purpose") or "assistants"})
        elif path == "/v1/sink":
            await conn.reply(200, {"bytes": n, "sha256": digest})
        elif path.startswith("/v1/echo"):
            await conn.reply(200, {"method": method, "target": target, "headers": headers, "body_len": n},
                             headers=[("x-upstream", "yes"), ("connection", "x-drop-resp"),
                                      ("x-drop-resp", "1"), ("keep-alive", "timeout=5"),
                                      ("set-cookie", "s=1; Path=/")])
        elif path == "/v1/sse":
            count = int(query.get("n", ["5"])[0])
            gap = float(query.get("delay_ms", ["100"])[0]) / 1000.0
            await asyncio.sleep(float(query.get("first_delay_ms", ["0"])[0]) / 1000.0)
            await conn.start_sse()
            for i in range(count):
                await conn.send(h11.Data(data=b"data: %d\n\n" % i))
                rec["events_sent"] = i + 1
                await asyncio.sleep(gap)
            await conn.send(h11.EndOfMessage())
        elif path == "/v1/bytes":
            total = int(query.get("n", ["0"])[0])
            await conn.send(h11.Response(status_code=200, headers=[
                ("content-type", "application/octet-stream"), ("content-length", str(total))]))
            left = total
            while left > 0:
                piece = PAYLOAD[:min(left, CHUNK)]
                await conn.send(h11.Data(data=piece))
                left -= len(piece)
            await conn.send(h11.EndOfMessage())
        elif path == "/v1/cut":  # promise 1000 bytes, send `after`, then hang up
            await conn.send(h11.Response(status_code=200, headers=[("content-length", "1000")]))
            await conn.send(h11.Data(data=b"x" * int(query.get("after", ["10"])[0])))
            conn.writer.close()
            raise Gone()
        elif path == "/v1/models":
            await conn.reply(200, {"object": "list", "data": [{"id": "m", "object": "model", "created": 0,
                                                               "owned_by": "test"}]})
        else:
            await conn.reply(404, {"error": {"message": "no such route %s" % path}})
        rec["complete"] = True
    except Gone:
        rec["disconnected"] = True
        rec["t_gone"] = time.time()
        raise


async def serve_conn(reader, writer):
    conn = Conn(reader, writer)
    try:
        while True:
            ev = await conn.event()
            if not isinstance(ev, h11.Request):
                break
            await handle(conn, ev)
            if conn.h11.our_state is h11.DONE and conn.h11.their_state is h11.DONE:
                conn.h11.start_next_cycle()
            else:
                break
    except (Gone, h11.RemoteProtocolError, ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def main(port, cert=None, key=None):
    ctx = None
    if cert:
        import ssl

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
    server = await asyncio.start_server(serve_conn, "127.0.0.1", port, limit=2 * CHUNK, ssl=ctx)
    sys.stdout.write("PORT %d\n" % server.sockets[0].getsockname()[1])
    sys.stdout.flush()
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--tls-cert", help="serve HTTPS with this certificate (PEM)")
    ap.add_argument("--tls-key", help="the certificate's private key (PEM)")
    opts = ap.parse_args()
    try:
        asyncio.run(main(opts.port, opts.tls_cert, opts.tls_key))
    except KeyboardInterrupt:
        pass
