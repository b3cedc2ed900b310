#!/usr/bin/env python3
"""05: terminal_safe() sanitizes dict VALUES, not KEYS; patch events carry file paths as the keys
of `changes`, so `codex exec` prints a model-chosen file name raw: OSC 52 (sets the user's
clipboard), CSI 2J/1A/2K (clears/rewrites earlier lines, e.g. hides what ran), lone CR.
Bypass of the second pass's fix 12. Exit 1 while vulnerable."""
import os, shutil, subprocess, sys, tempfile
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import CODEX, serve, write_config, script

E = "\x1b]52;c;cHduZWQ=\x07\x1b[1A\x1b[2K"
root = tempfile.mkdtemp(prefix="a3-05-", dir="/var/tmp")
home, ch, ws = (os.path.join(root, d) for d in ("home", "codexhome", "ws"))
for d in (home, ch, ws): os.makedirs(d)
srv = serve(script([("apply_patch", {"input": "*** Begin Patch\n*** Add File: f%s.txt\n+x\n*** End Patch\n" % E})]))
write_config(ch, srv)
env = dict(os.environ, HOME=home, CODEX_HOME=ch, X_KEY="dummy")
p = subprocess.run([CODEX, "exec", "-s", "workspace-write", "-c", 'approval_policy="never"',
                    "--skip-git-repo-check", "-C", ws, "hi"], env=env, capture_output=True, timeout=120)
srv.shutdown(); shutil.rmtree(root, ignore_errors=True)
bad = [l for l in (p.stdout + p.stderr).split(b"\n") if b"\x1b]52" in l or b"\x1b[2K" in l]
for l in bad: print(repr(l))
# the REPL's patch approval question ("proposed patch"), driven through a pty
import pty, select, time
root = tempfile.mkdtemp(prefix="a3-05r-", dir="/var/tmp")
home, ch, ws = (os.path.join(root, d) for d in ("home", "codexhome", "ws"))
for d in (home, ch, ws): os.makedirs(d)
srv = serve(script([("apply_patch", {"input": "*** Begin Patch\n*** Add File: %s/../x%s.txt\n+x\n*** End Patch\n" % (ws, E)})]))
write_config(ch, srv)
env = dict(os.environ, HOME=home, CODEX_HOME=ch, X_KEY="dummy", TERM="xterm-256color")
pid, fd = pty.fork()
if pid == 0:
    os.execve(CODEX, [CODEX, "-a", "on-request", "-s", "workspace-write", "-C", ws, "--skip-git-repo-check", "go"], env)
buf, end = b"", time.time() + 30
while time.time() < end and b"Apply these changes" not in buf:
    if select.select([fd], [], [], 0.5)[0]:
        try:
            d = os.read(fd, 65536)
        except OSError:
            break
        if not d:
            break
        buf += d
try:
    os.write(fd, b"n"); time.sleep(0.5); os.kill(pid, 9); os.waitpid(pid, 0)
except OSError:
    pass
srv.shutdown(); shutil.rmtree(root, ignore_errors=True)
q = buf[buf.find(b"proposed patch"):] if b"proposed patch" in buf else b""
if b"\x1b]52" in q or b"\x1b[2K.txt" in q:
    print("REPL approval question:", repr(q[:160]))
    bad.append(q)
if bad:
    print("VULNERABLE: raw escape sequences from a model-chosen path reached the terminal"); sys.exit(1)
print("held"); sys.exit(0)
