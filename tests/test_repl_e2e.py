"""§18 the REPL end to end: real `codex` processes in a pty, the real agent (§15), and the
scripted model server (tests/support/model_server.py) on 127.0.0.1."""
import json
import os
import stat
import subprocess
import sys
import time

import pytest

pexpect = pytest.importorskip("pexpect")

from support.agent_env import MOCK_KEY_ENV, mock_cli_args  # noqa: E402
from support.model_server import ModelServer, Turn  # noqa: E402
from support.repl_pty import DOWN, ESC, UP, ReplPty, S  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CODEX = os.path.join(REPO, "codex.py")

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def work(tmp_path):
    root = tmp_path / "work"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    return root


def spawn(tmp_path, codex_home, server, work, *args, approval="never", wire="responses", name="pty.log"):
    argv = [CODEX, "-C", str(work), "-m", "gpt-5", "-s", "danger-full-access", "-a", approval]
    argv += mock_cli_args(server, wire) + list(args)
    env = {"CODEX_HOME": str(codex_home), MOCK_KEY_ENV: "test-key"}
    return ReplPty(sys.executable, argv, env, work, tmp_path / name)


def user_texts(request):
    """The user messages (not context messages) of a Responses request."""
    out = []
    for item in request.body.get("input", []):
        if item.get("type") == "message" and item.get("role") == "user":
            text = "".join(p.get("text", "") for p in item.get("content", []))
            if not text.startswith(("<user_instructions>", "<environment_context>")):
                out.append(text)
    return out


@pytest.mark.parametrize("wire", ["responses", "chat"])
def test_a_turn_renders_and_history_is_recalled_later(tmp_path, codex_home, server, work, wire):
    server.enqueue(
        Turn().text("Here is **the plan**:\n\n1. read\n2. write\n\n```python\nprint('hi')\n```\n").usage(1234, 56),
        Turn().text("second answer"),
    )
    r = spawn(tmp_path, codex_home, server, work, wire=wire)
    assert "workdir:" in r.log() and str(work) in r.log() and "mock" in r.log()
    r.submit("make a plan")
    r.expect("the plan")
    r.expect("print")
    if wire == "responses":
        r.expect("tokens: 1,234 in")
    r.expect_prompt()
    assert r.quit() == 0
    hist = codex_home / "history.jsonl"
    assert stat.S_IMODE(os.stat(hist).st_mode) == 0o600
    record = json.loads(hist.read_text().splitlines()[-1])
    assert record["text"] == "make a plan" and len(record["session_id"]) == 36

    r = spawn(tmp_path, codex_home, server, work, wire=wire, name="pty2.log")
    r.send(UP)
    r.expect("make a plan")
    time.sleep(0.2)
    r.send("\r")
    r.expect("second answer")
    r.expect_prompt()
    r.quit()
    reqs = server.model_requests()
    assert len(reqs) == 2
    if wire == "responses":
        assert user_texts(reqs[1]) == ["make a plan"]
    else:
        assert reqs[1].body["messages"][-1] == {"role": "user", "content": "make a plan"}


@pytest.mark.slow
def test_concurrent_sessions_lose_no_history(tmp_path, codex_home, work):
    with ModelServer(default=Turn().text("ok")) as srv:
        repls = [spawn(tmp_path, codex_home, srv, work, name="pty%d.log" % i) for i in range(3)]
        for n in range(4):
            for i, r in enumerate(repls):
                r.submit("session %d prompt %d" % (i, n))
            for r in repls:
                r.expect("ok")
                r.expect_prompt()
        for r in repls:
            assert r.quit() == 0
    lines = (codex_home / "history.jsonl").read_text().splitlines()
    texts = sorted(json.loads(l)["text"] for l in lines)
    assert texts == sorted("session %d prompt %d" % (i, n) for i in range(3) for n in range(4))
    assert len({json.loads(l)["session_id"] for l in lines}) == 3


def test_at_completes_a_path_into_the_message(tmp_path, codex_home, server, work):
    (work / "src" / "deep").mkdir(parents=True)
    (work / "src" / "deep" / "widget.py").write_text("x = 1\n")
    (work / "README.md").write_text("hello\n")
    server.enqueue(Turn().text("read it"))
    r = spawn(tmp_path, codex_home, server, work)
    r.send("explain @widg")
    r.expect(r"src/deep/(?:\x1b\[[0-9;]*m)*widg")
    time.sleep(0.3)
    r.send("\r")  # Enter takes the highlighted path
    time.sleep(0.3)
    r.send("briefly\r")
    r.expect("read it")
    r.expect_prompt()
    r.quit()
    assert user_texts(server.model_requests()[0]) == ["explain src/deep/widget.py briefly"]


def test_esc_esc_forks_the_conversation(tmp_path, codex_home, server, work):
    server.enqueue(Turn().text("answer one"), Turn().text("answer two"), Turn().text("answer three"))
    r = spawn(tmp_path, codex_home, server, work)
    r.submit("question one")
    r.expect("answer one")
    r.expect_prompt()
    r.submit("question two")
    r.expect("answer two")
    r.expect_prompt()
    r.send(ESC)
    r.expect(S("Esc again to edit"))
    r.send(ESC)
    r.expect("Edit a previous message")
    time.sleep(0.3)
    r.send(UP)  # from question two (highlighted) to question one
    time.sleep(0.3)
    r.send("\r")
    r.expect("forked before message 1 of 2")
    r.expect("question one")
    time.sleep(0.3)
    r.send(", rephrased\r")
    r.expect("answer three")
    r.expect_prompt()
    r.quit()
    reqs = server.model_requests()
    assert user_texts(reqs[2]) == ["question one, rephrased"]  # question two and its answer are gone
    assert "answer one" not in json.dumps(reqs[2].body["input"])
    assert reqs[2].headers.get("session_id") != reqs[0].headers.get("session_id")


@pytest.mark.parametrize("key,created", [("y", True), ("n", False)])
def test_approval_prompt_answer_is_obeyed(tmp_path, codex_home, server, work, key, created):
    target = work / "made.txt"
    server.enqueue(
        Turn().function_call("shell", {"command": ["bash", "-lc", "echo made > made.txt"]}, call_id="c1"),
        Turn().text("finished"),
    )
    r = spawn(tmp_path, codex_home, server, work, approval="untrusted")
    r.submit("make the file")
    r.expect("Allow command")
    r.expect("echo made > made.txt")
    r.expect(r"\[Esc\]")
    r.send(key)
    r.expect("You approved" if created else "You did not approve")
    r.expect("finished")
    r.expect_prompt()
    r.quit()
    assert target.exists() == created
    output = [it for it in server.model_requests()[1].body["input"] if it.get("type") == "function_call_output"]
    assert output and output[0]["call_id"] == "c1"
    if created:
        import re

        assert re.search("\u2713 (?:\x1b\\[[0-9;]*m)*echo made > made.txt", r.log())


def test_slash_commands(tmp_path, codex_home, server, work):
    (work / "tracked.txt").write_text("v1\n")
    subprocess.run(["git", "-C", str(work), "add", "tracked.txt"], check=True)
    subprocess.run(["git", "-C", str(work), "-c", "user.email=a@b", "-c", "user.name=n", "commit", "-qm", "x"], check=True)
    (work / "tracked.txt").write_text("v2\n")
    (work / "untracked.txt").write_text("fresh\n")
    server.enqueue(Turn().text("hello").usage(100, 10), Turn().text("summary of it all"), Turn().text("agents written"),
                   Turn().text("model switched"))
    r = spawn(tmp_path, codex_home, server, work)
    r.submit("hi")
    r.expect("hello")
    r.expect_prompt()
    r.submit("/status")
    r.expect("provider:")
    r.expect("mock")
    r.expect("approval:")
    r.expect(r"\(flag\)")
    r.expect("session:")
    r.expect(r"[0-9a-f]{8}-[0-9a-f]{4}")
    r.expect("100 in")
    r.expect_prompt()
    r.submit("/diff")
    r.expect("-v1")
    r.expect("\\+v2")
    r.expect("\\+fresh")
    r.expect_prompt()
    r.submit("/compact")
    r.expect("summary of it all")
    r.expect_prompt()
    r.submit("/init")
    r.expect("agents written")
    r.expect_prompt()
    r.submit("/model o3")
    r.expect("model: o3")
    r.expect_prompt()
    r.submit("after switch")
    r.expect("model switched")
    r.expect_prompt()
    r.submit("/new")
    r.expect("new chat")
    r.expect_prompt()
    r.submit("/quit")
    assert r.wait_exit() == 0
    reqs = server.model_requests()
    assert len(reqs) == 4
    assert "AGENTS.md" in user_texts(reqs[2])[-1]
    assert reqs[3].body["model"] == "o3"


@pytest.mark.parametrize("key", ["y", "esc"])
def test_patch_approval_shows_the_diff_and_is_obeyed(tmp_path, codex_home, server, work, key):
    (work / "notes.txt").write_text("alpha\nbeta\n")
    patch = "*** Begin Patch\n*** Update File: notes.txt\n@@\n alpha\n-beta\n+gamma\n*** End Patch"
    server.enqueue(Turn().function_call("apply_patch", {"input": patch}, call_id="p1"), Turn().text("patched it"))
    argv = [CODEX, "-C", str(work), "-m", "gpt-5", "-s", "read-only", "-a", "untrusted"] + mock_cli_args(server)
    r = ReplPty(sys.executable, argv, {"CODEX_HOME": str(codex_home), MOCK_KEY_ENV: "test-key"}, work,
                tmp_path / "pty.log")
    r.submit("change beta")
    r.expect("proposed patch")
    r.expect(r"notes\.txt")
    r.expect(r"modified")
    r.expect("-beta")
    r.expect(r"\+gamma")
    r.expect("Apply these changes")
    r.expect(r"\[Esc\]")
    r.send(ESC if key == "esc" else key)
    if key == "y":
        r.expect("You approved codex to apply the patch")
        r.expect("patched it")
    else:
        r.expect("You canceled the request to apply the patch")
        r.expect("interrupted")
    r.expect_prompt()
    r.quit()
    assert (work / "notes.txt").read_text() == ("alpha\ngamma\n" if key == "y" else "alpha\nbeta\n")
    assert len(server.model_requests()) == (2 if key == "y" else 1)


def test_zipapp_opens_the_session(tmp_path, codex_home, server, work, dist_codex):
    server.enqueue(Turn().text("from the zipapp"))
    argv = ["-C", str(work), "-m", "gpt-5"] + mock_cli_args(server)
    r = ReplPty(str(dist_codex), argv, {"CODEX_HOME": str(codex_home), MOCK_KEY_ENV: "test-key"}, work,
                tmp_path / "pty.log")
    r.submit("hello")
    r.expect("from the zipapp")
    r.expect_prompt()
    assert r.quit() == 0


def test_mcp_tool_calls_render_with_their_result(tmp_path, codex_home, server, work):
    import codex

    if not hasattr(codex, "McpConnectionManager"):
        pytest.skip("the MCP client (§14) has not landed")
    mcp = os.path.join(REPO, "tests", "support", "agent_mcp_server.py")
    server.enqueue(
        Turn().function_call("tester__echo", {"text": "hi there"}, call_id="m1").function_call("tester__boom", {}, call_id="m2"),
        Turn().text("tools done"),
    )
    table = 'mcp_servers.tester={command=%s, args=[%s]}' % (json.dumps(sys.executable), json.dumps(mcp))
    r = spawn(tmp_path, codex_home, server, work, "-c", table)
    time.sleep(1.5)  # let the MCP server start and list its tools
    r.submit("use the tools")
    r.expect("tester.echo")
    r.expect("echo: hi there")
    r.expect("tester.boom")
    r.expect("tools done")
    r.expect_prompt()
    r.quit()
    import re

    log = re.sub(r"\x1b\[[0-9;]*m", "", r.log())
    assert '\u2713 tool tester.echo({"text": "hi there"})' in log
    assert "\u2717 tool tester.boom()" in log


def test_esc_interrupts_a_streaming_turn_and_the_next_turn_works(tmp_path, codex_home, server, work):
    server.enqueue(Turn().text("slow " * 40, chunk_size=5).delay(0.3), Turn().text("after the interrupt"))
    r = spawn(tmp_path, codex_home, server, work)
    r.submit("talk slowly")
    r.expect("Working")
    time.sleep(0.8)
    r.send(ESC)
    r.expect("interrupted")
    r.expect_prompt()
    r.submit("again")
    r.expect("after the interrupt")
    r.expect_prompt()
    r.quit()
    assert user_texts(server.model_requests()[1])[-1] == "again"


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGHUP"])
def test_a_signal_to_codex_kills_the_running_command(tmp_path, codex_home, server, work, signame):
    import signal

    marker = work / "survivor"
    server.enqueue(
        Turn().function_call("shell", {"command": ["bash", "-c", "touch started; sleep 3; touch survivor"],
                                       "timeout": 60000}, call_id="c1"),
        Turn().text("never reached"),
    )
    r = spawn(tmp_path, codex_home, server, work)
    r.submit("run it")
    deadline = time.monotonic() + 20
    while not (work / "started").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (work / "started").exists()
    r.child.kill(getattr(signal, signame))
    r.child.expect(pexpect.EOF, timeout=20)
    r.child.close()
    assert r.child.exitstatus == 128 + getattr(signal, signame) or r.child.signalstatus == getattr(signal, signame)
    time.sleep(4)
    assert not marker.exists()


@pytest.mark.parametrize("delay", [0.0, 0.4])
def test_a_prompt_typed_while_codex_starts_is_sent(tmp_path, codex_home, server, work, delay):
    """Type-ahead: the keys and the Enter typed before the composer is drawn are not lost
    (typed before codex runs at all, or while it imports)."""
    server.enqueue(Turn().text("got it"))
    argv = [CODEX, "-C", str(work), "-m", "gpt-5", "-s", "danger-full-access", "-a", "never"] + mock_cli_args(server)
    r = ReplPty(sys.executable, argv, {"CODEX_HOME": str(codex_home), MOCK_KEY_ENV: "test-key"}, work,
                tmp_path / "pty.log", wait_prompt=False)
    time.sleep(delay)
    r.send("typed early\r")
    r.expect("got it")
    r.expect_prompt()
    r.quit()
    assert user_texts(server.model_requests()[0]) == ["typed early"]
    assert not [l for l in open(tmp_path / "pty.log", encoding="utf-8", errors="replace") if "Traceback" in l]
