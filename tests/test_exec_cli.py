"""§17 `codex exec` end to end: real processes against the scripted model server."""
import json
import os
import re

import pytest

from support.agent_env import MOCK_KEY_ENV, mock_cli_args
from support.model_server import ModelServer, Turn

pytestmark = pytest.mark.timeout(90)


def test_human_output_final_message_on_stdout(exec_codex, server, repo):
    server.enqueue(
        Turn().text("Checking.").function_call("shell", {"command": ["bash", "-lc", "echo hi from shell"]}, call_id="c"),
        Turn().text("All good.").usage(1000, 50, 200),
    )
    proc = exec_codex("say hi")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "All good.\n"
    err = proc.stderr
    assert "\x1b[" not in err
    for needle in ("workdir: %s" % repo, "model: gpt-5", "provider: mock", "approval: never",
                   "sandbox: danger-full-access", "reasoning effort: medium", "User instructions:", "say hi",
                   "exec echo hi from shell in %s" % repo, "hi from shell", "codex\nAll good.", "tokens used: 850"):
        assert needle in err, needle
    assert re.search(r"^\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\] echo hi from shell succeeded in \d+(ms|\.\d\ds):$", err, re.M)


def test_json_output_schema(exec_codex, server, repo):
    patch = "*** Begin Patch\n*** Add File: made.txt\n+x\n*** End Patch"
    plan = {"plan": [{"step": "one", "status": "in_progress"}]}
    server.enqueue(
        Turn().reasoning("hmm").function_call("update_plan", plan)
              .function_call("shell", {"command": ["bash", "-lc", "exit 4"]}, call_id="c")
              .function_call("apply_patch", {"input": patch}).usage(10, 5, 4),
        Turn().text("done").usage(20, 5),
    )
    proc = exec_codex("--json", "work")
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(l) for l in proc.stdout.splitlines()]
    types = [l["type"] for l in lines]
    assert types[0] == "thread.started" and re.match(r"[0-9a-f-]{36}$", lines[0]["thread_id"])
    assert types[1] == "turn.started" and types[-1] == "turn.completed"
    assert lines[-1]["usage"] == {"input_tokens": 30, "cached_input_tokens": 4, "cache_write_input_tokens": 0,
                                  "output_tokens": 10, "reasoning_output_tokens": 0}
    items = [l["item"] for l in lines if l["type"].startswith("item.")]
    by_type = {}
    for it in items:
        by_type.setdefault(it["type"], []).append(it)
    assert by_type["reasoning"][0]["text"] == "hmm"
    cmd = by_type["command_execution"]
    assert cmd[0]["status"] == "in_progress" and cmd[-1]["status"] == "failed" and cmd[-1]["exit_code"] == 4
    assert cmd[0]["id"] == cmd[-1]["id"] and cmd[-1]["command"] == "exit 4"
    fc = by_type["file_change"]
    started = [l for l in lines if l["type"] == "item.started" and l["item"]["type"] == "file_change"]
    assert len(fc) == 2 and started and fc[0]["status"] == "in_progress" and fc[0]["id"] == fc[1]["id"]
    assert fc[1]["status"] == "completed" and fc[1]["changes"] == [{"path": str(repo / "made.txt"), "kind": "add"}]
    assert by_type["todo_list"][0]["items"] == [{"text": "one", "completed": False}]
    assert by_type["agent_message"][-1]["text"] == "done"
    assert all(re.match(r"item_\d+$", it["id"]) for it in items)


def test_failed_turn_exits_1_with_turn_failed(exec_codex, server):
    server.enqueue(Turn.http_error(401, "bad key"))
    proc = exec_codex("--json", "x")
    assert proc.returncode == 1
    lines = [json.loads(l) for l in proc.stdout.splitlines()]
    assert lines[-1]["type"] == "turn.failed" and "401" in lines[-1]["error"]["message"]
    assert any(l["type"] == "error" for l in lines)
    proc = exec_codex("x")
    assert proc.returncode == 1 and "ERROR:" in proc.stderr and "Traceback" not in proc.stderr


def test_prompt_from_stdin_and_usage_errors(exec_codex, server, repo, tmp_path):
    server.enqueue(Turn().text("from stdin ok"))
    proc = exec_codex(input="the piped prompt\n")
    assert proc.returncode == 0 and proc.stdout == "from stdin ok\n"
    assert "Reading prompt from stdin" in proc.stderr
    assert server.requests[0].body["input"][-1]["content"][0]["text"] == "the piped prompt\n"
    proc = exec_codex("-", input="   \n")
    assert proc.returncode == 2 and "No prompt provided via stdin." in proc.stderr
    outside = tmp_path / "not-a-repo"
    outside.mkdir()
    proc = exec_codex("hi", cwd=outside)
    assert proc.returncode == 2 and "--skip-git-repo-check" in proc.stderr
    assert "workdir:" not in proc.stderr and "session id" not in proc.stderr  # refused before any session
    server.enqueue(Turn().text("fine"))
    proc = exec_codex("--skip-git-repo-check", "hi", cwd=outside)
    assert proc.returncode == 0 and proc.stdout == "fine\n"


def test_output_last_message_and_images(exec_codex, server, repo, tmp_path):
    img = tmp_path / "pic.png"
    img.write_bytes(b"\x89PNG\r\n\x1a\nfake")
    out = tmp_path / "last.txt"
    server.enqueue(Turn().text("I see a picture"))
    proc = exec_codex("-i", str(img), "--output-last-message", str(out), "describe")
    assert proc.returncode == 0, proc.stderr
    assert out.read_text() == "I see a picture"
    content = server.requests[0].body["input"][-1]["content"]
    assert content[0] == {"type": "input_text", "text": "describe"}
    assert content[1]["type"] == "input_image" and content[1]["image_url"].startswith("data:image/png;base64,")
    server.enqueue(Turn().function_call("update_plan", {"plan": []}), Turn().reasoning("no text"))
    proc = exec_codex("--output-last-message", str(out), "quiet")
    assert proc.returncode == 0 and out.read_text() == ""
    assert "no last agent message" in proc.stderr


def test_color_always_and_no_color(exec_codex, server):
    server.enqueue(Turn().text("c"), Turn().text("c"))
    assert "\x1b[" in exec_codex("--color", "always", "x").stderr
    assert "\x1b[" not in exec_codex("--color", "auto", "x", env={"NO_COLOR": "1"}).stderr


def test_exec_resume_last(exec_codex, server, codex_home):
    server.enqueue(Turn().text("first"), Turn().text("second"))
    proc = exec_codex("--json", "remember the word kiwi")
    assert proc.returncode == 0
    thread = json.loads(proc.stdout.splitlines()[0])["thread_id"]
    proc = exec_codex("--json", "resume", "--last", "what word?")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.splitlines()[0])["thread_id"] == thread
    body = json.dumps(server.requests[1].body["input"])
    assert "remember the word kiwi" in body and "what word?" in body
    proc = exec_codex("resume", "no-such-session", "x")
    assert proc.returncode == 2 and "no recorded session" in proc.stderr


def test_notify_runs_after_exec_turn(exec_codex, server, tmp_path, codex_home):
    out = tmp_path / "n.json"
    script = codex_home / "n.py"  # not in /tmp: codex runs no program a sandboxed command could write
    script.write_text("import sys, pathlib\npathlib.Path(%r).write_text(sys.argv[-1])\n" % str(out))
    import sys as _sys
    server.enqueue(Turn().text("notified"))
    proc = exec_codex("ping", notify=[_sys.executable, str(script)])
    assert proc.returncode == 0
    for _ in range(100):
        if out.exists() and out.read_text():
            break
        import time
        time.sleep(0.05)
    assert json.loads(out.read_text())["last-assistant-message"] == "notified"


@pytest.mark.slow
def test_zipapp_exec_end_to_end(dist_codex, server, repo, codex_home):
    import subprocess
    import sys

    server.enqueue(Turn().function_call("shell", {"command": ["echo", "zipped"]}), Turn().text("zip ok"))
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(codex_home.parent),
           "CODEX_HOME": str(codex_home), MOCK_KEY_ENV: "k"}
    proc = subprocess.run([sys.executable, str(dist_codex), "exec", "--json", "-C", str(repo)] + mock_cli_args(server) + ["hi"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(l) for l in proc.stdout.splitlines()]
    assert lines[-1]["type"] == "turn.completed"
    assert any(l.get("item", {}).get("aggregated_output") == "zipped\n" for l in lines)


def test_ctrl_c_interrupts_the_running_command(server, repo, codex_home):
    import signal
    import subprocess
    import sys
    import time

    from conftest import REPO

    server.enqueue(Turn().function_call("shell", {"command": ["sleep", "30"], "timeout": 60000}, call_id="z"))
    env = dict(os.environ, CODEX_HOME=str(codex_home), **{MOCK_KEY_ENV: "k"})
    proc = subprocess.Popen([sys.executable, str(REPO / "codex.py"), "exec", "--json", "-s", "danger-full-access",
                             "-C", str(repo)] + mock_cli_args(server) + ["sleep please"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        for line in proc.stdout:
            if '"command_execution"' in line:
                break
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        rest = proc.stdout.read()
        assert proc.wait(timeout=10) == 130
        assert time.monotonic() - t0 < 5
        assert json.loads(rest.splitlines()[-1])["type"] == "turn.failed"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_codex_resume_hands_the_rollout_to_the_repl(exec_codex, server, repo, codex_home, monkeypatch):
    import codex

    server.enqueue(Turn().text("first"))
    proc = exec_codex("--json", "hello")
    thread = json.loads(proc.stdout.splitlines()[0])["thread_id"]
    seen = {}

    def fake_interactive(args, loader):
        seen["cfg"] = loader()
        seen["prompt"] = args.prompt
        return 0

    monkeypatch.setattr(codex, "_cmd_interactive", fake_interactive)
    monkeypatch.setenv(MOCK_KEY_ENV, "k")
    assert codex.main(["resume", "-C", str(repo), "--last", "go on"] + mock_cli_args(server)) == 0
    assert seen["prompt"] == "go on" and thread in seen["cfg"].experimental_resume
    assert codex.main(["resume", "-C", str(repo)]) == 2
