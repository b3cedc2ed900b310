"""Shared scripted Responses-API model for the repro scripts (copied nowhere else; imported)."""
import json, os, subprocess, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

REPO = os.environ.get("CODEX_REPO", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))
CODEX = os.environ.get("CODEX_BIN", os.path.join(REPO, "dist/codex"))

def serve(decide):
    """decide(outputs_so_far:list[str]) -> (tool_name, args_dict) or None (final message)."""
    n = [0]
    class H(BaseHTTPRequestHandler):
        def log_message(self, *a): pass
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            outs = []
            for it in body.get("input", []):
                if it.get("type") in ("function_call_output", "custom_tool_call_output"):
                    o = it.get("output")
                    outs.append(o if isinstance(o, str) else json.dumps(o))
            nxt = decide(outs)
            self.send_response(200); self.send_header("Content-Type", "text/event-stream"); self.end_headers()
            n[0] += 1
            if nxt is None:
                item = {"type": "message", "role": "assistant", "id": "m%d" % n[0],
                        "content": [{"type": "output_text", "text": "done"}]}
            else:
                item = {"type": "function_call", "name": nxt[0], "call_id": "c%d" % n[0],
                        "arguments": json.dumps(nxt[1]), "id": "fc%d" % n[0]}
            for e in ({"type": "response.created", "response": {"id": "r"}},
                      {"type": "response.output_item.done", "item": item},
                      {"type": "response.completed", "response": {"id": "r", "usage": {
                          "input_tokens": 1, "output_tokens": 1, "total_tokens": 2}}}):
                self.wfile.write(("event: %s\ndata: %s\n\n" % (e["type"], json.dumps(e))).encode())
    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv

def write_config(codex_home, srv, extra=""):
    with open(os.path.join(codex_home, "config.toml"), "w") as f:
        f.write('model = "gpt-5"\nmodel_provider = "x"\n%s\n[model_providers.x]\nname="x"\n'
                'base_url = "http://127.0.0.1:%d/v1"\nwire_api = "responses"\nenv_key = "X_KEY"\n'
                % (extra, srv.server_address[1]))

def script(calls):
    """A fixed list of calls, one per model request."""
    def decide(outs):
        i = len(outs)
        return calls[i] if i < len(calls) else None
    return decide
