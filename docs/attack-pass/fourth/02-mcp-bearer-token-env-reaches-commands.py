#!/usr/bin/env python3
"""02: the variable an MCP server's bearer token is read from (`mcp_servers.NAME.bearer_token_env_var`,
what `codex mcp add NAME --url URL --bearer-token-env-var VAR` writes) and the variables of an
MCP server's `env_http_headers` are passed to every sandboxed command.  codex *knows* they
hold credentials (it drops every model provider's `env_key` and `env_http_headers` variables
from the command environment, build_command_env), but not the MCP ones: under a name the
default patterns miss (LINEAR_MCP, NOTION_MCP_BEARER, ...) the token reaches the model with
one `env`.  Exit 1 while vulnerable, 0 otherwise, 2 could not run."""
import os, shutil, subprocess, sys, tempfile
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness

SECRET1 = "lin_oauth_8d1f0c55e2"
SECRET2 = "hdr_7a1be2c0"
root = tempfile.mkdtemp(prefix="a4-02-", dir="/var/tmp")
home, ch, ws = (os.path.join(root, d) for d in ("home", "codexhome", "ws"))
for d in (home, ch, ws):
    os.makedirs(d)
outs_seen = []
def decide(outs):
    outs_seen[:] = outs
    return ("shell", {"command": ["env"]}) if not outs else None
srv = harness.serve(decide)
harness.write_config(ch, srv, 'sandbox_mode = "workspace-write"\napproval_policy = "never"\n'
                     '[mcp_servers.linear]\nurl = "http://127.0.0.1:9/mcp"\nbearer_token_env_var = "LINEAR_MCP"\n'
                     'env_http_headers = { "X-Workspace" = "LINEAR_WORKSPACE_HDR" }\n')
env = dict(os.environ, HOME=home, CODEX_HOME=ch, X_KEY="dummy", LINEAR_MCP=SECRET1, LINEAR_WORKSPACE_HDR=SECRET2)
try:
    p = subprocess.run([harness.CODEX, "exec", "--skip-git-repo-check", "-C", ws, "hi"], env=env,
                       capture_output=True, text=True, timeout=120)
except subprocess.TimeoutExpired:
    print("timeout"); sys.exit(2)
finally:
    srv.shutdown()
    shutil.rmtree(root, ignore_errors=True)
seen = "\n".join(outs_seen)
if not outs_seen:
    print("the command did not run:", p.returncode, p.stderr[-2000:]); sys.exit(2)
leaked = [s for s in (SECRET1, SECRET2) if s in seen]
print("codex rc=%d; secrets in the model's view of `env`: %s" % (p.returncode, leaked))
if leaked:
    print("VULNERABLE: the MCP bearer token / header variables reach sandboxed commands (and the model)")
    sys.exit(1)
print("held"); sys.exit(0)
