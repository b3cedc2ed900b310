"""Drive an MCP server over stdio with the `mcp` Python SDK (1.x or 2.x) and print JSON.

    python mcp_sdk_client.py PLAN_JSON

PLAN_JSON: {"command": str, "args": [...], "env": {...}, "cwd": str|null,
            "elicit": "accept" | "decline" | "cancel" | "accept-for-session",
            "steps": [{"tool": "codex", "arguments": {...}}, ...]}
An argument value "$SESSION" is replaced by the sessionId of the previous step's result.
Output: {"sdk": version, "protocolVersion", "serverInfo", "tools": [tool dicts],
         "results": [CallToolResult dicts], "elicitations": [params dicts]}
"""
import asyncio
import inspect
import json
import sys
from importlib import metadata

from mcp import ClientSession, StdioServerParameters, types
from mcp.client.stdio import stdio_client


def dump(model):
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


async def run(plan):
    elicitations = []

    async def on_elicit(context, params):
        elicitations.append(dump(params))
        mode = plan.get("elicit", "accept")
        if mode == "accept-for-session":
            return types.ElicitResult(action="accept", content={"decision": "approved_for_session"})
        return types.ElicitResult(action=mode, content={} if mode == "accept" else None)

    server = StdioServerParameters(command=plan["command"], args=plan.get("args", []), env=plan.get("env"),
                                   cwd=plan.get("cwd"))
    out = {"sdk": metadata.version("mcp"), "results": [], "elicitations": elicitations}
    async with stdio_client(server) as (read, write):
        # SDKs before 1.10 have no elicitation support: they answer elicitation/create with an error
        kwargs = {"elicitation_callback": on_elicit} if "elicitation_callback" in inspect.signature(ClientSession).parameters else {}
        async with ClientSession(read, write, **kwargs) as session:
            init = await session.initialize()
            out["protocolVersion"] = init.protocolVersion if hasattr(init, "protocolVersion") else init.protocol_version
            out["serverInfo"] = dump(init.serverInfo if hasattr(init, "serverInfo") else init.server_info)
            tools = await session.list_tools()
            out["tools"] = [dump(t) for t in tools.tools]
            session_id = None
            for step in plan.get("steps", []):
                args = {k: (session_id if v == "$SESSION" else v) for k, v in step["arguments"].items()}
                result = await session.call_tool(step["tool"], args)
                data = dump(result)
                out["results"].append(data)
                structured = data.get("structuredContent") or data.get("structured_content") or {}
                session_id = structured.get("sessionId", session_id)
    return out


if __name__ == "__main__":
    print(json.dumps(asyncio.run(run(json.loads(sys.argv[1])))))
