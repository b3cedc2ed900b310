"""§18 the composer and slash commands as a user sees them (tmux screen checks): Ctrl-R,
long pastes, typing while a turn runs, the `/` menu, /status, /new, /resume, /mcp, `@`
freshness.  Most run the REPL against the scripted session (tests/support/repl_harness.py);
/resume, /mcp and `@` after a turn run the real agent against the scripted model server."""
import json
import os
import subprocess
import sys
import time

import pytest

from support.agent_env import MOCK_KEY_ENV, mock_cli_args
from support.model_server import Turn
from support.repl_screen import TmuxRepl

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CODEX = os.path.join(REPO, "codex.py")
HARNESS = os.path.join(REPO, "tests", "support", "repl_harness.py")
AGENT_MCP = os.path.join(REPO, "tests", "support", "agent_mcp_server.py")

pytestmark = pytest.mark.timeout(120)


class Scripted(TmuxRepl):
    """The REPL in tmux against the scripted session; ops() reads what it submitted."""

    def __init__(self, tmp_path, codex_home, turns, args=(), size=(100, 30)):
        self.ops_path = tmp_path / ("ops-%d.jsonl" % time.monotonic_ns())
        script = tmp_path / "script.json"
        script.write_text(json.dumps({"turns": turns}))
        env = {"CODEX_HOME": str(codex_home), "OPENAI_API_KEY": "test-key"}
        TmuxRepl.__init__(self, [sys.executable, HARNESS, str(script), str(self.ops_path)] + list(args), env, tmp_path, size)
        self.wait_for(u"\u203a")

    def ops(self):
        if not self.ops_path.exists():
            return []
        return [json.loads(l) for l in self.ops_path.read_text().splitlines()]

    def sent(self):
        return [op["items"][0]["text"] for op in self.ops() if op.get("type") == "user_input" and op["items"]]

    def wait_ops(self, n, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.sent()) < n:
            time.sleep(0.05)
        return self.sent()


def _msg(text):
    return {"type": "agent_message", "message": text}


def write_history(codex_home, texts):
    path = codex_home / "history.jsonl"
    with open(str(path), "w") as fh:
        for i, text in enumerate(texts):
            fh.write(json.dumps({"session_id": "old", "ts": 1700000000 + i, "text": text}) + "\n")
    os.chmod(str(path), 0o600)


def test_ctrl_r_searches_this_session_then_history_jsonl(tmp_path, codex_home):
    write_history(codex_home, ["deploy to staging", "fix the flaky test", "deploy to production"])
    with Scripted(tmp_path, codex_home, [[_msg("one")], [_msg("two")]]) as t:
        t.type("deploy notes for today")
        t.keys("Enter")
        t.wait_for("one")
        t.wait_composer()
        t.keys("C-r")
        t.wait_for("reverse search:")
        t.type("depl")
        t.wait_for(u"\u203a deploy notes for today")  # this session's prompt comes first
        t.keys("C-r")
        t.wait_for(u"\u203a deploy to production")  # then history.jsonl, newest first
        t.keys("C-r")
        t.wait_for(u"\u203a deploy to staging")
        t.type("x")  # "deplx" matches nothing
        t.wait_for("no match")
        t.keys("BSpace")
        t.keys("Enter")  # takes the match into the composer (not sent yet)
        screen = t.wait_for("Ctrl-R history")
        assert u"\u203a deploy" in screen
        t.keys("Escape")
        t.keys("C-u")
        t.keys("C-r")
        t.type("flaky")
        t.wait_for(u"\u203a fix the flaky test")
        t.keys("Enter")
        t.wait_for("Ctrl-R history")
        t.keys("Enter")
        t.wait_for("two")
        assert t.wait_ops(2) == ["deploy notes for today", "fix the flaky test"]


def test_a_long_paste_is_shown_collapsed_and_sent_whole(tmp_path, codex_home):
    pasted = "\n".join("line %d of the log" % i for i in range(1234))
    (tmp_path / "paste.txt").write_text(pasted)
    with Scripted(tmp_path, codex_home, [[_msg("got it")], [_msg("again")]]) as t:
        t.type("look at this: ")
        t._tmux("load-buffer", str(tmp_path / "paste.txt"))
        t._tmux("paste-buffer", "-p")  # bracketed paste, as a terminal sends it
        screen = t.wait_for("[pasted 1,234 lines]")
        assert "line 5 of the log" not in screen
        assert "Ctrl-O expands" in screen
        t.type(" thanks")
        t.keys("Enter")
        t.wait_for("got it")
        assert t.wait_ops(1) == ["look at this: " + pasted + " thanks"]
        t.wait_composer()
        t._tmux("paste-buffer", "-p")
        t.wait_for("[pasted 1,234 lines]")
        t.keys("C-o")  # expands in place
        t.wait_for("line 1233 of the log")
        t.keys("Enter")
        t.wait_for("again")
        assert t.wait_ops(2)[1] == pasted


def test_text_typed_while_a_turn_runs_is_shown_and_queued(tmp_path, codex_home):
    with Scripted(tmp_path, codex_home, [[{"sleep": 4}, _msg("first done")], [_msg("second done")]]) as t:
        t.type("first")
        t.keys("Enter")
        t.wait_for("Esc to interrupt")
        t.type("second question")
        t.wait_for("typing: second question")
        t.keys("Enter")
        screen = t.wait_for("queued: second question")
        assert "first done" not in screen
        (tmp_path / "p.txt").write_text("pasted one\npasted two")
        t._tmux("load-buffer", str(tmp_path / "p.txt"))
        t._tmux("paste-buffer", "-p")  # a paste while the turn runs: its newlines are not Enter
        t.wait_for(u"typing: pasted one \u23ce pasted two")
        screen = t.wait_for("second done", timeout=20)
        assert "queued:" not in screen  # the status rows are gone with the turn
        assert t.wait_ops(2) == ["first", "second question"]
        screen = t.wait_for(u"\u203a pasted one")  # the paste waits in the composer, unsent
        assert "pasted two" in screen
        time.sleep(0.5)
        assert t.sent() == ["first", "second question"]


def test_slash_menu_lists_every_command_with_its_description(tmp_path, codex_home):
    import codex

    with Scripted(tmp_path, codex_home, [], size=(100, 40)) as t:
        t.type("/")
        screen = t.wait_for("/quit")
        for name, description in codex.SLASH_COMMANDS:
            assert "/" + name in screen and description in screen, name


def test_slash_menu_scrolls_in_a_short_terminal(tmp_path, codex_home):
    import codex

    with Scripted(tmp_path, codex_home, [], size=(100, 12)) as t:
        t.type("/")
        screen = t.wait_for("/new")
        assert "/quit" not in screen  # it does not fit
        for _ in range(len(codex.SLASH_COMMANDS)):
            t.keys("Down")
            time.sleep(0.1)
        screen = t.wait_for("exit Codex")  # the last command and its description, scrolled to
        assert "/new " not in screen


@pytest.mark.parametrize("effort", [None, "high"])
def test_status_echoes_once_and_agrees_with_the_exec_header(tmp_path, codex_home, server, effort):
    args = ["-m", "gpt-5"] + (["-c", "model_reasoning_effort=%s" % effort] if effort else [])
    with Scripted(tmp_path, codex_home, [], args=args + mock_cli_args(server), size=(100, 40)) as t:
        screen = t.wait_for("model:")
        t.type("/status")
        t.keys("Enter")
        screen = t.wait_for("tokens:")
    assert screen.count("/status") == 1
    server.enqueue(Turn().text("ok"))
    exec_run = subprocess.run([sys.executable, CODEX, "exec", "--skip-git-repo-check"] + args + mock_cli_args(server) + ["hi"],
                              capture_output=True, text=True, timeout=60, cwd=str(tmp_path),
                              env=dict(os.environ, CODEX_HOME=str(codex_home), **{MOCK_KEY_ENV: "k"}))
    assert exec_run.returncode == 0, exec_run.stderr
    header = [l for l in exec_run.stderr.splitlines() if "reasoning effort" in l]
    expected = effort or "medium"
    assert header and header[0].split()[-1] == expected  # what the exec header says ...
    assert "effort %s" % expected in screen  # ... /status says
    assert "(reasoning %s)" % expected in screen  # and so does the REPL's own header


def _real(codex_home, server, work, *args, size=(100, 40)):
    argv = [sys.executable, CODEX, "-C", str(work), "-m", "gpt-5", "-s", "danger-full-access", "-a", "never"]
    argv += mock_cli_args(server) + list(args)
    t = TmuxRepl(argv, {"CODEX_HOME": str(codex_home), MOCK_KEY_ENV: "test-key"}, work, size=size)
    t.wait_for(u"\u203a")
    return t


@pytest.fixture
def work(tmp_path):
    root = tmp_path / "work"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    return root


def test_resume_picker_replays_the_session_and_the_token_count_goes_on(codex_home, server, work):
    server.enqueue(Turn().text("the first answer").usage(1000, 200), Turn().text("a later answer").usage(10, 5),
                   Turn().text("continued answer").usage(3000, 100))
    with _real(codex_home, server, work) as t:
        t.type("remember the number 42")
        t.keys("Enter")
        t.wait_for("the first answer")
        t.wait_for("tokens:")
        t.type("/new")
        t.keys("Enter")
        screen = t.wait_for("new chat")
        assert "started a new session" in screen and "/resume returns to it" in screen
        t.type("unrelated")
        t.keys("Enter")
        t.wait_for("a later answer")
        t.type("/resume")
        t.keys("Enter")
        screen = t.wait_for("Resume a session")
        today = time.strftime("%Y-%m-%d")
        rows = [l for l in screen.split("\n") if today in l]
        assert len(rows) == 1 and "remember the number 42" in rows[0]  # not the session we are in
        assert " . " in rows[0] or str(work) in rows[0]  # the directory
        t.keys("Enter")  # (the picker reads single keys before it draws its title)
        screen = t.wait_for("resumed session")
        assert "remember the number 42" in screen.split("resumed session")[1]
        assert "the first answer" in screen.split("resumed session")[1]
        assert "tokens so far: 1,200 total" in screen
        t.type("go on")
        t.keys("Enter")
        screen = t.wait_for("continued answer")
        screen = t.wait_for("(session 4,300)")
    body = json.dumps(server.model_requests()[2].body["input"])
    assert "remember the number 42" in body and "unrelated" not in body


def test_mcp_lists_servers_state_and_tools(codex_home, server, work):
    mcp = ['mcp_servers.agent.command="%s"' % sys.executable, 'mcp_servers.agent.args=["%s"]' % AGENT_MCP,
           'mcp_servers.broken.command="/nonexistent/mcp-server"']
    args = []
    for item in mcp:
        args += ["-c", item]
    with _real(codex_home, server, work, *args) as t:
        t.type("/mcp")
        t.keys("Enter")
        screen = t.wait_for("broken", timeout=30)
        deadline = time.monotonic() + 20
        while "2 tools" not in screen and time.monotonic() < deadline:  # it may still be starting
            t.wait_composer()
            t.type("/mcp")
            t.keys("Enter")
            screen = t.wait_composer()
    assert "agent ready \u00b7 2 tools: echo, boom" in screen
    assert "broken failed" in screen


def test_at_search_finds_files_made_during_the_session(codex_home, server, work):
    (work / "old_module.py").write_text("x = 1\n")
    server.enqueue(Turn().function_call("shell", {"command": ["bash", "-lc", "touch fresh_widget.py"]}, call_id="c1"),
                   Turn().text("made it"))
    with _real(codex_home, server, work) as t:
        t.type("@old")
        screen = t.wait_for("old_module.py")
        assert "1 match" in screen  # the footer counts matches, not the index
        t.keys("C-u")
        t.type("make a file")
        t.keys("Enter")
        t.wait_for("made it")
        assert (work / "fresh_widget.py").exists()
        t.wait_composer()
        t.type("@fresh_wid")
        screen = t.wait_for("@ 1 match", timeout=10)
        assert [l for l in screen.split("\n") if l.strip() == "fresh_widget.py"]  # in the menu
