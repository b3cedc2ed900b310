"""Tiny scripted Responses-API model server (loopback). Usage:
   python3 fakemodel.py SCRIPT.json PORTFILE
SCRIPT.json: list of turns; each turn is a list of items:
   {"shell": [argv...], "workdir":..., "escalate": bool} | {"sh": "script"} | {"patch": "..."} | {"text": "..."}
Each POST returns the next turn; when the script is exhausted returns text "done"."""
import json, sys, threading, itertools
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

script = json.load(open(sys.argv[1]))
portfile = sys.argv[2]
log = open(portfile + ".log", "a")
idx = itertools.count()
lock = threading.Lock()

def items_for(turn, n):
    out = []
    for i, it in enumerate(turn):
        cid = "call_%d_%d" % (n, i)
        if "shell" in it:
            args = {"command": it["shell"]}
            if it.get("workdir"): args["workdir"] = it["workdir"]
            if it.get("timeout"): args["timeout"] = it["timeout"]
            if it.get("escalate"):
                args["with_escalated_permissions"] = True
                args["justification"] = it.get("justification", "need it")
            out.append({"type": "function_call", "name": "shell", "call_id": cid, "arguments": json.dumps(args), "id": "fc_" + cid})
        elif "sh" in it:
            out.append({"type": "function_call", "name": "shell", "call_id": cid,
                        "arguments": json.dumps(dict({"command": ["bash", "-c", it["sh"]]}, **({"timeout": it["timeout"]} if it.get("timeout") else {}))), "id": "fc_" + cid})
        elif "patch" in it:
            args = {"input": it["patch"]}
            out.append({"type": "function_call", "name": "apply_patch", "call_id": cid, "arguments": json.dumps(args), "id": "fc_" + cid})
        elif "raw" in it:
            out.append(it["raw"])
        else:
            out.append({"type": "message", "role": "assistant", "id": "msg_%s" % cid,
                        "content": [{"type": "output_text", "text": it["text"]}]})
    return out

class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_GET(self):
        body = b'{"data":[{"id":"gpt-5"}]}'
        self.send_response(200); self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        req = self.rfile.read(n)
        with lock:
            k = next(idx)
        log.write("REQ %d %s\n" % (k, req.decode("utf-8", "replace"))); log.flush()
        turn = script[k] if k < len(script) else [{"text": "done"}]
        evs = []
        evs.append({"type": "response.created", "response": {"id": "resp_%d" % k}})
        for it in items_for(turn, k):
            evs.append({"type": "response.output_item.done", "item": it})
        evs.append({"type": "response.completed", "response": {"id": "resp_%d" % k, "usage": {"input_tokens": 1, "output_tokens": 1, "total_tokens": 2}}})
        body = "".join("event: %s\ndata: %s\n\n" % (e["type"], json.dumps(e)) for e in evs).encode()
        self.send_response(200); self.send_header("Content-Type", "text/event-stream")
        self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)

srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
open(portfile, "w").write(str(srv.server_address[1]))
srv.serve_forever()
