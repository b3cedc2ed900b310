"""The SDK test server (mcp_sdk_server.py) served over streamable HTTP by the real `mcp` SDK.

    python mcp_http_server.py [--json-response] [--event-store] [--token TOKEN]
                              [--no-get] [--log FILE] [--tools N] [--page-size K]

Prints `PORT <n>` on stdout once it listens on 127.0.0.1 (the endpoint is /mcp).

  --json-response  answer each POST with one JSON body (else an SSE stream)
  --event-store    number SSE events and keep them (resumable streams, GET + Last-Event-ID)
  --token TOKEN    a small ASGI wrapper in front that demands `Authorization: Bearer TOKEN`
  --no-get         the wrapper answers GET with 405 (a server that offers no GET stream)
  --log FILE       the wrapper appends one JSON line per HTTP request: method, headers seen

Extra tools:
  drop()   -> with --event-store: closes its own SSE stream mid-call (the client must resume
              with Last-Event-ID), then answers "survived"; without: the wrapper cuts the
              connection after the response has started (nothing to resume from)
  notify() -> sends a log notification on the request's stream, then answers "notified"
  pingback() -> sends the client a ping request (on the GET stream) and answers once it is answered
  dropget() -> with --event-store: closes the GET stream, then sends tools/list_changed (the
              client must reconnect the GET stream with Last-Event-ID to get it)
"""
import argparse
import asyncio
import json
import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import mcp_types as types  # noqa: E402
import uvicorn  # noqa: E402
from mcp.server.streamable_http import EventMessage, EventStore  # noqa: E402
from mcp.server.transport_security import TransportSecuritySettings  # noqa: E402

from mcp_sdk_server import make_server  # noqa: E402


class MemoryEventStore(EventStore):
    """Every event kept in memory, ids counting up (the SDK's abstract interface)."""

    def __init__(self):
        self.events = []  # (event id, stream id, message)

    async def store_event(self, stream_id, message):
        event_id = str(len(self.events) + 1)
        self.events.append((event_id, stream_id, message))
        return event_id

    async def replay_events_after(self, last_event_id, send_callback):
        stream = next((sid for eid, sid, _m in self.events if eid == last_event_id), None)
        if stream is None:
            return None
        after = False
        for eid, sid, message in list(self.events):
            if eid == last_event_id:
                after = True
                continue
            if after and sid == stream and message is not None:
                await send_callback(EventMessage(message, eid))
        return stream


class Wrapper(object):
    """ASGI in front of the SDK app: bearer check, request log, GET refusal, connection cut."""

    def __init__(self, app, token=None, log_path=None, no_get=False, cut_drop=False):
        self.app, self.token, self.log_path, self.no_get, self.cut_drop = app, token, log_path, no_get, cut_drop

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        body = b""
        recv = receive
        if scope["method"] == "POST":  # read it here (to look at it) and hand it on
            more = True
            while more:
                msg = await receive()
                body += msg.get("body", b"")
                more = msg.get("more_body", False)
            sent = [False]

            async def recv():
                if not sent[0]:
                    sent[0] = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()  # http.disconnect when the client goes away
        if self.log_path:
            entry = {"method": scope["method"], "path": scope["path"],
                     "headers": {k: v for k, v in headers.items() if k in (
                         "accept", "content-type", "mcp-session-id", "mcp-protocol-version", "authorization",
                         "last-event-id", "x-team", "x-from-env")},
                     "body": json.loads(body) if body else None}
            with open(self.log_path, "a") as fh:
                fh.write(json.dumps(entry) + "\n")
        if self.token is not None and headers.get("authorization") != "Bearer " + self.token:
            await send({"type": "http.response.start", "status": 401, "headers": [
                (b"content-type", b"application/json"), (b"www-authenticate", b'Bearer realm="test"')]})
            await send({"type": "http.response.body", "body": b'{"error": "invalid_token"}'})
            return
        if self.no_get and scope["method"] == "GET":
            await send({"type": "http.response.start", "status": 405, "headers": [(b"allow", b"POST, DELETE")]})
            await send({"type": "http.response.body", "body": b""})
            return
        if self.cut_drop and scope["method"] == "POST" and b'"name":"drop"' in body.replace(b" ", b""):
            async def cutting_send(message):
                await send(message)
                if message["type"] == "http.response.start":
                    await send({"type": "http.response.body", "body": b": starting\n\n", "more_body": True})
                    raise ConnectionAbortedError("test wrapper cuts the stream mid-call")
            return await self.app(scope, recv, cutting_send)
        return await self.app(scope, recv, send)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--json-response", action="store_true")
    ap.add_argument("--event-store", action="store_true")
    ap.add_argument("--token")
    ap.add_argument("--no-get", action="store_true")
    ap.add_argument("--log")
    ap.add_argument("--tools", type=int, default=0)
    ap.add_argument("--page-size", type=int, default=0)
    opts = ap.parse_args()

    def text(t):
        return types.TextContent(type="text", text=t)

    async def drop(ctx, args):
        if ctx.close_sse_stream is not None:
            await asyncio.sleep(0.1)
            await ctx.close_sse_stream()
            await asyncio.sleep(0.3)
        else:
            await asyncio.sleep(0.2)
        return types.CallToolResult(content=[text("survived")])

    async def notify(ctx, args):
        await ctx.session.send_log_message(level="info", data="a note on the stream", related_request_id=ctx.request_id)
        return types.CallToolResult(content=[text("notified")])

    async def pingback(ctx, args):
        try:
            await asyncio.wait_for(ctx.session.send_ping(), 10)  # a server-to-client request
        except Exception as exc:
            return types.CallToolResult(content=[text("no pong: %r" % exc)], is_error=True)
        return types.CallToolResult(content=[text("pong received")])

    async def dropget(ctx, args):
        if ctx.close_standalone_sse_stream is None:
            return types.CallToolResult(content=[text("no resumable GET stream")], is_error=True)
        await ctx.session.send_log_message(level="info", data="before the drop")  # an event (with an id) on the GET stream
        await asyncio.sleep(0.2)
        await ctx.close_standalone_sse_stream()
        await ctx.session.send_tool_list_changed()  # kept in the event store for the reconnect
        return types.CallToolResult(content=[text("closed the GET stream")])

    extra = {
        "pingback": (types.Tool(name="pingback", description="Ping the client, then answer",
                                input_schema={"type": "object"}), pingback),
        "dropget": (types.Tool(name="dropget", description="Close the GET stream, then announce a change",
                               input_schema={"type": "object"}), dropget),
        "drop": (types.Tool(name="drop", description="Drop the stream mid-call", input_schema={"type": "object"}), drop),
        "notify": (types.Tool(name="notify", description="Notify, then answer", input_schema={"type": "object"}), notify),
    }
    server = make_server(opts.tools, opts.page_size, extra_tools=extra)
    app = server.streamable_http_app(
        json_response=opts.json_response,
        event_store=MemoryEventStore() if opts.event_store else None,
        retry_interval=100 if opts.event_store else None,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    wrapped = Wrapper(app, token=opts.token, log_path=opts.log, no_get=opts.no_get,
                      cut_drop=not opts.event_store)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)  # connections queue from now on: a client told the port is never refused
    sys.stdout.write("PORT %d\n" % sock.getsockname()[1])
    sys.stdout.flush()
    config = uvicorn.Config(wrapped, log_level="warning", lifespan="on")
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
