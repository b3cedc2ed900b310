"""A hand-written stdio MCP server (stdlib only) for the protocol's edge cases.

    python mcp_raw_server.py [--version V] [--silent] [--die-on-call] [--record FILE]
                             [--ping-client] [--stderr-lines N]

--version V      answer initialize with protocolVersion V (default: the client's)
--silent         read everything, never answer (a server stuck before initialize)
--die-on-call    exit with code 7 (after writing to stderr) on the first tools/call
--record FILE    append every received message to FILE as a JSON line
--ping-client    send a `ping` and a `roots/list` request to the client after initialized
--stderr-lines N write N numbered lines to stderr at startup
--hang-calls     never answer tools/call
--noise          print non-JSON-RPC lines on stdout before answering initialize
--extra-tool NAME  list one more tool (repeatable); calling it answers "called NAME"
"""
import argparse
import json
import sys


def send(msg):
    sys.stdout.write(json.dumps(msg) + "\n")
    sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--version")
    ap.add_argument("--silent", action="store_true")
    ap.add_argument("--die-on-call", action="store_true")
    ap.add_argument("--record")
    ap.add_argument("--ping-client", action="store_true")
    ap.add_argument("--stderr-lines", type=int, default=0)
    ap.add_argument("--extra-tool", action="append", default=[])
    ap.add_argument("--hang-calls", action="store_true")
    ap.add_argument("--noise", action="store_true")
    opts = ap.parse_args()
    for i in range(opts.stderr_lines):
        sys.stderr.write("stderr line %d\n" % i)
    sys.stderr.flush()
    for line in sys.stdin:
        msg = json.loads(line)
        if opts.record:
            with open(opts.record, "a") as fh:
                fh.write(json.dumps(msg) + "\n")
        if opts.silent:
            continue
        method, mid = msg.get("method"), msg.get("id")
        if method == "initialize":
            if opts.noise:  # what a chatty launcher prints on stdout
                sys.stdout.write("npm WARN exec The following package was not found\n\n[1, 2]\n")
            send({"jsonrpc": "2.0", "id": mid, "result": {
                "protocolVersion": opts.version or msg["params"]["protocolVersion"],
                "capabilities": {"tools": {}}, "serverInfo": {"name": "raw", "version": "0"}}})
        elif method == "notifications/initialized" and opts.ping_client:
            send({"jsonrpc": "2.0", "id": "srv-1", "method": "ping"})
            send({"jsonrpc": "2.0", "id": "srv-2", "method": "roots/list"})
        elif method == "tools/list":
            send({"jsonrpc": "2.0", "id": mid, "result": {"tools": [
                {"name": name, "description": "say hello", "inputSchema": {"type": "object"}}
                for name in ["hello"] + opts.extra_tool]}})
        elif method == "tools/call" and opts.hang_calls:
            continue
        elif method == "tools/call":
            if opts.die_on_call:
                sys.stderr.write("fatal: tool crashed\n")
                sys.stderr.flush()
                sys.exit(7)
            name = msg["params"]["name"]
            text = "hello" if name == "hello" else "called %s" % name
            send({"jsonrpc": "2.0", "id": mid, "result": {"content": [{"type": "text", "text": text}]}})
        elif mid is not None and method is not None:
            send({"jsonrpc": "2.0", "id": mid, "error": {"code": -32601, "message": "no"}})


if __name__ == "__main__":
    main()
