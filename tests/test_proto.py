"""§20 `codex proto`: submissions in on stdin, events out on stdout, as a real process."""
import json
import subprocess
import sys
import time

import pytest

from conftest import REPO
from support.agent_env import MOCK_KEY_ENV, mock_cli_args
from support.model_server import ModelServer, Turn

pytestmark = pytest.mark.timeout(60)


def _start(server, codex_home, cwd, *extra):
    import os

    env = dict(os.environ, CODEX_HOME=str(codex_home), **{MOCK_KEY_ENV: "k"})
    argv = [sys.executable, str(REPO / "codex.py"), "proto", "-C", str(cwd), "-m", "gpt-5",
            "-a", "untrusted"] + mock_cli_args(server) + list(extra)
    return subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, bufsize=1)


def _read_until(proc, msg_type, sub_id=None, timeout=20):
    out = []
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        line = proc.stdout.readline()
        if not line:
            break
        ev = json.loads(line)
        out.append(ev)
        if ev["msg"]["type"] == msg_type and (sub_id is None or ev["id"] == sub_id):
            return out
    raise AssertionError("no %s; got %s" % (msg_type, [e["msg"]["type"] for e in out]))


def _send(proc, obj):
    proc.stdin.write((obj if isinstance(obj, str) else json.dumps(obj)) + "\n")
    proc.stdin.flush()


def test_proto_roundtrip_with_approval(server, codex_home, tmp_path):
    server.enqueue(
        Turn().function_call("shell", {"command": ["touch", "approved.txt"]}, call_id="c1"),
        Turn().text("made it"),
    )
    proc = _start(server, codex_home, tmp_path)
    try:
        first = json.loads(proc.stdout.readline())
        assert first["id"] == "" and first["msg"]["type"] == "session_configured"
        _send(proc, "this is not json")
        _send(proc, {"id": "s1", "op": {"type": "user_input", "items": [{"type": "text", "text": "touch it"}]}})
        events = _read_until(proc, "exec_approval_request")
        req = events[-1]
        assert req["id"] == "s1" and req["msg"]["command"] == ["touch", "approved.txt"]
        _send(proc, {"id": "a1", "op": {"type": "exec_approval", "id": "s1", "decision": "approved"}})
        events = _read_until(proc, "task_complete", "s1")
        assert events[-1]["msg"]["last_agent_message"] == "made it"
        assert (tmp_path / "approved.txt").exists()
        assert any(e["msg"]["type"] == "exec_command_end" and e["msg"]["exit_code"] == 0 for e in events)
        _send(proc, {"id": "s2", "op": {"type": "shutdown"}})
        _read_until(proc, "shutdown_complete")
        assert proc.wait(timeout=10) == 0
        assert "invalid submission skipped" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_proto_interrupt_and_stdin_eof_keeps_running(server, codex_home, tmp_path):
    server.enqueue(Turn().text("slow").idle_after(2, 30))
    proc = _start(server, codex_home, tmp_path)
    try:
        proc.stdout.readline()
        _send(proc, {"id": "t", "op": {"type": "user_input", "items": [{"type": "text", "text": "go"}]}})
        _read_until(proc, "task_started")
        server.wait_for_requests(1)
        _send(proc, {"id": "i", "op": {"type": "interrupt"}})
        events = _read_until(proc, "turn_aborted")
        assert events[-1]["id"] == "t" and events[-1]["msg"]["reason"] == "interrupted"
        _send(proc, {"id": "x", "op": {"type": "shutdown"}})
        proc.stdin.close()
        _read_until(proc, "shutdown_complete")
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_proto_refuses_a_terminal(run_codex):
    import pty
    import os

    pid_master, pid_slave = pty.openpty()
    try:
        proc = subprocess.run([sys.executable, str(REPO / "codex.py"), "proto"], stdin=pid_slave,
                              capture_output=True, text=True, timeout=30)
    finally:
        os.close(pid_master)
        os.close(pid_slave)
    assert proc.returncode == 2 and "expects stdin to be a pipe" in proc.stderr
