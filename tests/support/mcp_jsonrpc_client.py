"""A minimal line-oriented JSON-RPC client for driving `codex mcp` byte by byte in tests."""
import json
import queue
import subprocess
import threading
import time


class RawMcpClient(object):
    """Spawns a server process; .send()/.request() write lines, .messages collects replies."""

    def __init__(self, argv, env=None, cwd=None):
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=env, cwd=cwd)
        self.inbox = queue.Queue()
        self.messages = []
        self._arrived = threading.Condition()
        self._next = 1000
        threading.Thread(target=self._read, daemon=True).start()
        self.stderr_lines = []
        threading.Thread(target=self._read_err, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            msg = json.loads(line)
            with self._arrived:
                self.messages.append(msg)
                self._arrived.notify_all()
            self.inbox.put(msg)
        self.inbox.put(None)
        with self._arrived:
            self._arrived.notify_all()

    def _read_err(self):
        for line in self.proc.stderr:
            self.stderr_lines.append(line.decode("utf-8", "replace"))

    def send(self, msg):
        self.proc.stdin.write((json.dumps(msg) + "\n").encode())
        self.proc.stdin.flush()

    def send_raw(self, line):
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def request(self, method, params=None, id=None):
        if id is None:
            self._next += 1
            id = self._next
        msg = {"jsonrpc": "2.0", "id": id, "method": method}
        if params is not None:
            msg["params"] = params
        self.send(msg)
        return id

    def notify(self, method, params=None):
        msg = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            msg["params"] = params
        self.send(msg)

    def next(self, pred, timeout=10, on_other=None):
        """The next message matching pred (others go to on_other); AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no matching message within %ss; got %r" % (timeout, self.messages[-5:]))
            try:
                msg = self.inbox.get(timeout=left)
            except queue.Empty:
                continue
            if msg is None:
                raise AssertionError("server closed stdout; stderr: %s" % "".join(self.stderr_lines[-10:]))
            if pred(msg):
                return msg
            if on_other is not None:
                on_other(msg)

    def response(self, id, timeout=10):
        """The response to request `id`, whenever it arrived (responses can come out of order)."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while time.monotonic() < deadline:
                for m in self.messages:
                    if m.get("id") == id and "method" not in m:
                        return m
                if self.proc.poll() is not None and self.inbox.empty():
                    break
                self._arrived.wait(min(0.2, max(0.0, deadline - time.monotonic())))
        raise AssertionError("no response to %r within %ss; stderr: %s" % (id, timeout, "".join(self.stderr_lines[-10:])))

    def call(self, method, params=None, timeout=10):
        return self.response(self.request(method, params), timeout)

    def initialize(self, version="2025-06-18", capabilities=None):
        r = self.call("initialize", {"protocolVersion": version, "capabilities": capabilities or {"elicitation": {}},
                                     "clientInfo": {"name": "raw-test", "version": "1"}})
        self.notify("notifications/initialized")
        return r

    def close(self, timeout=10):
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("server did not exit after stdin closed")
