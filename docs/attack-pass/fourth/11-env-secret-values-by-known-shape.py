#!/usr/bin/env python3
"""11: the third pass 07 fix judges environment *values* too (URL passwords, AccountKey=,
Password=, Authorization:/Bearer, webhooks), but not the most recognisable secret shapes of all:
PEM private keys and vendors' prefixed tokens.  Under names the patterns miss (CI variables are
often named by purpose: DEPLOY_SSH, GH_ACCESS, BUNDLE_GITHUB__COM -- Bundler's own credential
variable --, LDAP_BIND_PW, SONAR_LOGIN, STRIPE_LIVE) they reach every command and the model.
Exit 1 while vulnerable (any of them reaches `env` in the sandbox), 0 otherwise."""
import os, shutil, subprocess, sys, tempfile
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness

VARS = {
    "DEPLOY_SSH": "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU=\n-----END OPENSSH PRIVATE KEY-----",
    "GH_ACCESS": "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8",
    "GITLAB_CI_PUSH": "glpat-" + "xY9zW8vU7tS6rQ5pO4nM",
    "BUNDLE_GITHUB__COM": "x-access-token:" + "ghs_" + "Zz9Yy8Xx7Ww6Vv5Uu4Tt3Ss2Rr1Qq0Pp",
    "SLACK_BOT": "xoxb-" + "1234567890-0987654321-AbCdEfGhIjKlMnOpQrStUvWx",
    "STRIPE_LIVE": "sk_live_" + "51HqLyjWDarjtT1zdp7dcXYZ",
    "AWS_ACCESS": "AKIA" + "IOSFODNN7EXAMPLE",
    "LDAP_BIND_PW": "Corr3ct-H0rse-Battery",
    "SONAR_LOGIN": "squ_" + "4f1e2d3c4b5a69788796a5b4c3d2e1f0a9b8c7d6",
}
root = tempfile.mkdtemp(prefix="a4-11-", dir="/var/tmp")
home, ch, ws = (os.path.join(root, d) for d in ("home", "codexhome", "ws"))
for d in (home, ch, ws):
    os.makedirs(d)
seen = []
def decide(outs):
    seen[:] = outs
    return ("shell", {"command": ["env"]}) if not outs else None
srv = harness.serve(decide)
harness.write_config(ch, srv, 'sandbox_mode = "workspace-write"\napproval_policy = "never"')
env = dict(os.environ, HOME=home, CODEX_HOME=ch, X_KEY="dummy", **VARS)
try:
    p = subprocess.run([harness.CODEX, "exec", "--skip-git-repo-check", "-C", ws, "hi"], env=env,
                       capture_output=True, text=True, timeout=120)
except subprocess.TimeoutExpired:
    print("timeout"); sys.exit(2)
finally:
    srv.shutdown()
    shutil.rmtree(root, ignore_errors=True)
text = "\n".join(seen).replace("\\n", "\n")
if not seen:
    print("the command did not run"); sys.exit(2)
leaked = [k for k, v in VARS.items() if v.split("\n")[0] in text]
print("codex rc=%d; reached the model: %s" % (p.returncode, ", ".join(leaked) or "none"))
if leaked:
    print("VULNERABLE: well-known secret shapes pass the environment excludes")
    sys.exit(1)
print("held"); sys.exit(0)
