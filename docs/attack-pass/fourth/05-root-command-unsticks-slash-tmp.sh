#!/bin/sh
# 05: codex run as root: a sandboxed command (workspace-write) may chmod the writable roots
# themselves, /tmp included: `chmod 0777 /tmp` drops the sticky bit for the whole machine (every
# local user may then delete or replace any other user's files in /tmp, root's included: the
# classic symlink/tmp-race playground), `chmod 0 /tmp` breaks every other user's programs.
# The command is root of its user namespace mapped to the real root, so it owns /tmp and needs
# no capability for chmod; Landlock does not cover chmod, and /tmp is mounted read-write.
# (The file mode of a shared root is not the command's to change: it is "outside" in effect.)
# Run here inside a private mount namespace with a tmpfs on /tmp: the real /tmp is untouched.
# Exit 1 while vulnerable (the private /tmp lost its sticky bit), 0 otherwise, 2 could not run.
set -u
[ "$(id -u)" = 0 ] || { echo "run as root (the CI case)"; exit 2; }
HERE=$(cd "$(dirname "$0")" && pwd)
exec unshare -m --propagation private sh -c '
mount -t tmpfs -o mode=1777 tmpfs /tmp || exit 2
python3 - "$1" <<"PY"
import os, shutil, subprocess, sys, tempfile
sys.path.insert(0, sys.argv[1]); import harness
root = tempfile.mkdtemp(prefix="a4-05-", dir="/var/tmp")
home, ch, ws = (os.path.join(root, d) for d in ("home", "codexhome", "ws"))
for d in (home, ch, ws): os.makedirs(d)
srv = harness.serve(harness.script([("shell", {"command": ["chmod", "0777", "/tmp"]})]))
harness.write_config(ch, srv, "sandbox_mode = \"workspace-write\"\napproval_policy = \"never\"")
env = dict(os.environ, HOME=home, CODEX_HOME=ch, X_KEY="dummy")
try:
    p = subprocess.run([harness.CODEX, "exec", "--skip-git-repo-check", "-C", ws, "hi"], env=env,
                       capture_output=True, text=True, timeout=120)
finally:
    srv.shutdown(); shutil.rmtree(root, ignore_errors=True)
mode = os.stat("/tmp").st_mode & 0o7777
print("codex rc=%d; /tmp mode after the session: %o" % (p.returncode, mode))
if not mode & 0o1000:
    print("VULNERABLE: a sandboxed command removed the sticky bit of /tmp"); sys.exit(1)
print("held"); sys.exit(0)
PY
' sh "$HERE"
