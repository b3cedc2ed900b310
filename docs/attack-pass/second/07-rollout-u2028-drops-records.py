#!/usr/bin/env python3
"""Rollout records are written with json.dumps(ensure_ascii=False) (U+2028, U+2029, U+0085 stay
raw) but load_rollout() reads them back with str.splitlines(), which splits on those characters.
Any model text holding U+2028 breaks its record into non-JSON fragments that are skipped on
resume: the model's messages vanish from the resumed conversation (and from what a resumed REPL
replays).  Tool outputs survive (they are JSON inside JSON, ASCII-escaped); forging whole records
is NOT possible (quotes inside the string stay escaped).  Low severity: integrity of the record.
Exit 1 while vulnerable."""
import json, os, subprocess, sys, tempfile, time, shutil

CODEX = os.environ.get("CODEX_BIN", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "dist", "codex"))
HERE = os.path.dirname(os.path.abspath(__file__))
T = tempfile.mkdtemp(prefix="f07.", dir="/var/tmp")
home, chome, ws = (os.path.join(T, d) for d in ("home", "codexhome", "ws"))
for d in (home, chome, ws):
    os.makedirs(d)
script = [[{"shell": ["printf", "secret-exfil-step\\342\\200\\250done"]}],
          [{"text": "MODEL-SAID-THIS\u2028and this"}], [{"text": "resumed"}]]
sp = os.path.join(T, "script.json")
json.dump(script, open(sp, "w"))
pf = os.path.join(T, "port")
srv = subprocess.Popen([sys.executable, os.path.join(HERE, "fakemodel.py"), sp, pf])
for _ in range(50):
    if os.path.exists(pf) and open(pf).read():
        break
    time.sleep(0.1)
port = open(pf).read()
open(os.path.join(chome, "config.toml"), "w").write(
    'model = "gpt-5"\nmodel_provider = "fake"\n[model_providers.fake]\nname = "fake"\n'
    'base_url = "http://127.0.0.1:%s/v1"\nwire_api = "responses"\nenv_key = "FAKE_API_KEY"\n' % port)
env = dict(os.environ, HOME=home, CODEX_HOME=chome, FAKE_API_KEY="x")
run = lambda args: subprocess.run([CODEX, "exec", "--skip-git-repo-check", "--full-auto"] + args, cwd=ws, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
run(["first task"])
run(["resume", "--last", "go on"])
srv.kill()
reqs = [l for l in open(pf + ".log", encoding="utf-8") if l.startswith("REQ ")]
body = json.loads(reqs[-1].split(" ", 2)[2])
types = [(i.get("type"), i.get("role")) for i in body.get("input", [])]
has_call = any(t == "function_call" for t, _ in types)
has_out = any(t == "function_call_output" for t, _ in types)
has_msg = "MODEL-SAID-THIS" in json.dumps(body.get("input"))
print("resumed input items:", types)
print("function_call kept: %s, its output kept: %s, the model's message kept: %s" % (has_call, has_out, has_msg))
shutil.rmtree(T, ignore_errors=True)
if not has_msg:
    print("VULNERABLE: records holding U+2028 are lost on resume")
    sys.exit(1)
print("fixed")
sys.exit(0)
