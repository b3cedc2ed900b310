"""An MCP server built with the `mcp` Python SDK, used as a real peer of codex's MCP client.

    python mcp_sdk_server.py [--tools N] [--page-size K] [--stderr TEXT] [--startup-delay S]

--startup-delay S sleeps S seconds before serving, so `initialize` is answered that late (a
server that is slow to start: npx downloads, heavy imports).

Tools:
  echo(text: string)                  -> text block with the text
  add(a: integer, b: integer)         -> text block with a+b (integer schema)
  pick(choice: anyOf string|integer, where: $ref Location) -> JSON of its arguments
  image()                             -> an image block and a text block
  resource()                          -> an embedded text resource and a resource link
  fail()                              -> isError result
  sleep(seconds: number)              -> sleeps, then "slept"
  env(name: string)                   -> the value of an environment variable ("<unset>")
  grow()                              -> adds tool `grown` and sends tools/list_changed
  bulk_0 .. bulk_{N-1}                -> with --tools N (pagination: --page-size K per page)
"""
import argparse
import asyncio
import json
import os
import sys

import mcp_types as types
from mcp.server.lowlevel import NotificationOptions, Server
from mcp.server.stdio import stdio_server

LOCATION_SCHEMA = {
    "type": "object",
    "properties": {
        "choice": {"anyOf": [{"type": "string"}, {"type": "integer", "minimum": 0}]},
        "where": {"$ref": "#/$defs/Location"},
    },
    "required": ["choice"],
    "$defs": {
        "Location": {
            "type": "object",
            "properties": {"lat": {"type": "number"}, "lon": {"type": "number"}},
            "required": ["lat", "lon"],
        }
    },
}
PNG_1PX = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def build_tools(bulk):
    tools = [
        types.Tool(name="echo", description="Echo the text back", input_schema={
            "type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}),
        types.Tool(name="add", description="Add two integers", input_schema={
            "type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
            "required": ["a", "b"]}),
        types.Tool(name="pick", description="Schema with anyOf and $ref", input_schema=LOCATION_SCHEMA),
        types.Tool(name="image", description="Return a tiny PNG", input_schema={"type": "object"}),
        types.Tool(name="resource", description="Return an embedded resource and a link", input_schema={"type": "object"}),
        types.Tool(name="fail", description="Always reports an error", input_schema={"type": "object"}),
        types.Tool(name="sleep", description="Sleep for a while", input_schema={
            "type": "object", "properties": {"seconds": {"type": "number"}}}),
        types.Tool(name="env", description="Read an environment variable", input_schema={
            "type": "object", "properties": {"name": {"type": "string"}}}),
        types.Tool(name="grow", description="Add a tool and announce it", input_schema={"type": "object"}),
    ]
    for i in range(bulk):
        tools.append(types.Tool(name="bulk_%d" % i, description="bulk tool %d" % i, input_schema={
            "type": "object", "properties": {"n": {"type": "integer"}}}))
    return tools


def make_server(bulk=0, page_size=0, extra_tools=None):
    """The SDK Server with the tools above; `extra_tools` maps name -> (Tool, async fn(ctx, args))."""
    tools = build_tools(bulk)
    extra_tools = extra_tools or {}
    tools.extend(tool for tool, _fn in extra_tools.values())

    async def list_tools(ctx, params):
        cursor = getattr(params, "cursor", None) if params is not None else None
        if not page_size:
            return types.ListToolsResult(tools=tools)
        start = int(cursor or 0)
        end = start + page_size
        return types.ListToolsResult(tools=tools[start:end], next_cursor=str(end) if end < len(tools) else None)

    def text(t):
        return types.TextContent(type="text", text=t)

    async def call_tool(ctx, params):
        name, args = params.name, params.arguments or {}
        if name in extra_tools:
            return await extra_tools[name][1](ctx, args)
        if name == "echo":
            return types.CallToolResult(content=[text(str(args.get("text", "")))])
        if name == "add":
            return types.CallToolResult(content=[text(str(int(args["a"]) + int(args["b"])))])
        if name == "pick":
            return types.CallToolResult(content=[text(json.dumps(args, sort_keys=True))])
        if name == "image":
            return types.CallToolResult(content=[
                types.ImageContent(type="image", data=PNG_1PX, mime_type="image/png"), text("an image")])
        if name == "resource":
            return types.CallToolResult(content=[
                types.EmbeddedResource(type="resource", resource=types.TextResourceContents(
                    uri="file:///notes.txt", mime_type="text/plain", text="resource body")),
                types.ResourceLink(type="resource_link", uri="file:///other.txt", name="other"),
            ])
        if name == "fail":
            return types.CallToolResult(content=[text("it went wrong")], is_error=True)
        if name == "sleep":
            await asyncio.sleep(float(args.get("seconds", 1)))
            return types.CallToolResult(content=[text("slept")])
        if name == "env":
            return types.CallToolResult(content=[text(os.environ.get(str(args.get("name")), "<unset>"))])
        if name == "grow":
            if not any(t.name == "grown" for t in tools):
                tools.append(types.Tool(name="grown", description="added at run time", input_schema={"type": "object"}))
            await ctx.session.send_tool_list_changed()
            return types.CallToolResult(content=[text("grew")])
        if name.startswith("bulk_"):
            return types.CallToolResult(content=[text(name)])
        return types.CallToolResult(content=[text("unknown tool %s" % name)], is_error=True)

    return Server("codex-test-sdk-server", version="1.0", on_list_tools=list_tools, on_call_tool=call_tool)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tools", type=int, default=0)
    ap.add_argument("--page-size", type=int, default=0)
    ap.add_argument("--stderr", default="")
    ap.add_argument("--startup-delay", type=float, default=0.0)
    opts = ap.parse_args()
    if opts.stderr:
        sys.stderr.write(opts.stderr + "\n")
        sys.stderr.flush()
    server = make_server(opts.tools, opts.page_size)

    async def run():
        await asyncio.sleep(opts.startup_delay)
        async with stdio_server() as (read, write):
            init = server.create_initialization_options(NotificationOptions(tools_changed=True))
            await server.run(read, write, init)

    asyncio.run(run())


if __name__ == "__main__":
    main()
