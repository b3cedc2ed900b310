"""Start the scripted upstream and `codex proxy` as real processes (tests and benchmark)."""
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
UPSTREAM = Path(__file__).resolve().parent / "proxy_upstream.py"


class Upstream(object):
    """The scripted upstream (tests/support/proxy_upstream.py) in its own process."""

    def __init__(self, python=sys.executable, tls=None):
        args = ["--tls-cert", str(tls["cert"]), "--tls-key", str(tls["key"])] if tls else []
        self.proc = subprocess.Popen([python, str(UPSTREAM), "--port", "0"] + args, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        self.tls = tls
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            self.stop()
            raise RuntimeError("upstream did not start: %r" % line)
        self.port = int(line.split()[1])
        self.url = ("https://localhost:%d" if tls else "http://127.0.0.1:%d") % self.port

    def _open(self, req):
        ctx = None
        if self.tls:
            import ssl

            ctx = ssl.create_default_context(cafile=str(self.tls["ca"]))
        return urllib.request.urlopen(req, timeout=10, context=ctx)

    def log(self):
        """The records of every request the upstream received since the last clear()."""
        with self._open(self.url + "/_log") as resp:
            return json.loads(resp.read())

    def clear(self):
        self._open(urllib.request.Request(self.url + "/_log", method="DELETE")).read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


class Proxy(object):
    """`codex proxy --bind 127.0.0.1:0 ARGS` with its stderr collected line by line."""

    def __init__(self, args=(), env=None, cmd=None, timeout=30):
        # CODEX_PROXY_TEST_CMD="python3.9 dist/codex" reruns the proxy tests under another runner.
        default = os.environ.get("CODEX_PROXY_TEST_CMD", "").split() or [sys.executable, str(REPO / "codex.py")]
        cmd = list(cmd or default)
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.proc = subprocess.Popen(cmd + ["proxy", "--bind", "127.0.0.1:0"] + list(args),
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=full_env)
        self.lines = []
        self._ready = threading.Event()
        self.url = None
        threading.Thread(target=self._drain, daemon=True).start()
        if not self._ready.wait(timeout) or self.url is None:
            self.stop()
            raise RuntimeError("codex proxy did not start:\n" + "".join(self.lines))

    def _drain(self):
        for line in self.proc.stderr:
            self.lines.append(line)
            if "listening on http://" in line:
                self.url = line.split("listening on ", 1)[1].split()[0]
                self._ready.set()
        self._ready.set()

    @property
    def port(self):
        return int(self.url.rsplit(":", 1)[1])

    def request_lines(self):
        """The per-request log lines printed so far."""
        return [l for l in self.lines if l.startswith("codex proxy: ") and '"' in l]

    def wait_lines(self, count, timeout=10):
        deadline = time.time() + timeout
        while len(self.request_lines()) < count and time.time() < deadline:
            time.sleep(0.02)
        return self.request_lines()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode


def provider_args(base_url, name="up", **fields):
    """`-c` arguments selecting a provider named `name` at base_url (TOML inline table)."""
    parts = ["name = %s" % json.dumps(name), "base_url = %s" % json.dumps(base_url)]
    for key, value in fields.items():
        if isinstance(value, dict):
            inner = ", ".join("%s = %s" % (json.dumps(k), json.dumps(v)) for k, v in value.items())
            parts.append("%s = { %s }" % (key, inner))
        else:
            parts.append("%s = %s" % (key, json.dumps(value)))
    return ["-c", "model_providers.%s={ %s }" % (name, ", ".join(parts)), "-c", "model_provider=%s" % name]
