"""§18 the REPL in a real pseudo-terminal (pexpect), driven against a scripted Session.

These exercise keys, completion, approvals, backtrack and slash commands through
tests/support/repl_harness.py, which runs the real codex.main() with the §08 Session
contract played from a script.  test_repl_e2e.py runs the same REPL against the real
agent and the scripted model server.
"""
import json
import os
import stat
import subprocess
import sys
import time

import pytest

pexpect = pytest.importorskip("pexpect")

from support.repl_pty import UP, ReplPty, S  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HARNESS = os.path.join(REPO, "tests", "support", "repl_harness.py")

pytestmark = pytest.mark.timeout(60)


class Repl(ReplPty):
    """The REPL under the scripted-session harness; ops() reads what it submitted."""

    def __init__(self, tmp_path, codex_home, turns, args=(), cwd=None, env=None, startup_errors=()):
        self.ops_path = tmp_path / ("ops-%d.jsonl" % time.monotonic_ns())
        script = tmp_path / "script.json"
        script.write_text(json.dumps({"turns": turns, "startup_errors": list(startup_errors)}))
        full_env = dict(CODEX_HOME=str(codex_home), OPENAI_API_KEY="test-key")
        full_env.update(env or {})
        ReplPty.__init__(self, sys.executable, [HARNESS, str(script), str(self.ops_path)] + list(args),
                         full_env, cwd or tmp_path, tmp_path / "pty.log")

    def ops(self):
        if not self.ops_path.exists():
            return []
        return [json.loads(l) for l in self.ops_path.read_text().splitlines()]


def _msg(text):
    return {"type": "agent_message", "message": text}


def test_turn_renders_and_history_is_recalled_in_a_later_session(tmp_path, codex_home):
    r = Repl(tmp_path, codex_home, [[
        {"type": "agent_message_delta", "delta": "Hello **there**.\n\n- one\n"},
        {"type": "agent_message_delta", "delta": "- two\n"},
        {"type": "agent_message", "message": "ignored: deltas already shown"},
        {"type": "token_count", "input_tokens": 10, "output_tokens": 5, "total_tokens": 15},
    ]])
    header = (tmp_path / "pty.log").read_text()
    assert "codex" in header and "model:" in header and "sandbox:" in header and "workdir:" in header
    r.submit("first prompt")
    r.expect("Hello")
    r.expect("two")
    r.expect("tokens: 10 in")
    r.expect_prompt()
    assert r.quit() == 0
    path = codex_home / "history.jsonl"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    rec = json.loads(path.read_text().splitlines()[-1])
    assert rec["text"] == "first prompt" and rec["session_id"]
    assert "ignored" not in (tmp_path / "pty.log").read_text()

    r2 = Repl(tmp_path, codex_home, [[_msg("again")]])
    r2.send("\x1b[A")  # Up
    r2.expect("first prompt")
    time.sleep(0.2)
    r2.send("\r")
    r2.expect("again")
    r2.expect_prompt()
    assert [o["items"][0]["text"] for o in r2.ops() if o["type"] == "user_input"] == ["first prompt"]
    r2.quit()


def test_up_down_browse_local_then_file_history(tmp_path, codex_home):
    import codex

    for t in ["oldest", "older"]:
        codex.append_history(codex_home, "x", t)
    r = Repl(tmp_path, codex_home, [[_msg("ok1")], [_msg("ok2")], [_msg("ok3")]])
    r.submit("local one")
    r.expect("ok1")
    r.expect_prompt()
    for _ in range(4):  # local one, older, oldest, (stays at the oldest)
        r.send("\x1b[A")
        time.sleep(0.15)
    r.send("\r")
    r.expect("ok2")
    r.expect_prompt()
    for key in ["\x1b[A", "\x1b[A", "\x1b[A", "\x1b[B"]:  # oldest (this session's first), ..., back down
        r.send(key)
        time.sleep(0.15)
    r.send("\r")
    r.expect("ok3")
    r.expect_prompt()
    texts = [o["items"][0]["text"] for o in r.ops() if o["type"] == "user_input"]
    assert texts == ["local one", "oldest", "local one"]
    r.quit()


def test_at_completes_a_path(tmp_path, codex_home):
    work = tmp_path / "work"
    (work / "lib").mkdir(parents=True)
    (work / "lib" / "mod.rs").write_text("fn main() {}")
    (work / "README.md").write_text("x")
    r = Repl(tmp_path, codex_home, [[_msg("seen")]], cwd=work)
    r.send("look at @zzzq")
    r.expect(S("no matches among 2 files"))
    for _ in range(4):
        r.send("\x7f")  # backspace
    r.send("modr")
    r.expect(r"lib/(?:\x1b\[[0-9;]*m)*mod")  # the popup, matched letters highlighted
    time.sleep(0.3)
    r.send("\t")
    time.sleep(0.3)
    r.send("please\r")
    r.expect("seen")
    r.expect_prompt()
    texts = [o["items"][0]["text"] for o in r.ops() if o["type"] == "user_input"]
    assert texts == ["look at lib/mod.rs please"]
    r.quit()


def test_approval_prompt_single_key_is_obeyed(tmp_path, codex_home):
    ask = {"type": "exec_approval_request", "call_id": "c1", "command": ["bash", "-lc", "rm -rf build"],
           "cwd": "/tmp/w", "reason": "clean the build"}
    r = Repl(tmp_path, codex_home, [
        [ask, {"await": "exec_approval"}, _msg("after yes")],
        [ask, {"await": "exec_approval"}, _msg("after no")],
        [ask, {"await": "exec_approval"}, _msg("never shown")],
    ])
    r.submit("one")
    r.expect("Allow command")
    r.expect("rm -rf build")
    r.expect(r"\[Esc\]")
    r.send("y")
    r.expect("You approved codex to run rm -rf build this time")
    r.expect("after yes")
    r.expect_prompt()
    r.submit("two")
    r.expect(r"\[Esc\]")
    r.send("n")
    r.expect("You did not approve")
    r.expect("after no")
    r.expect_prompt()
    r.submit("three")
    r.expect(r"\[Esc\]")
    r.send("\x1b")
    r.expect("You canceled the request")
    r.expect("interrupted")
    r.expect_prompt()
    decisions = [o["decision"] for o in r.ops() if o["type"] == "exec_approval"]
    assert decisions == ["approved", "denied", "abort"]
    assert all(o["id"] for o in r.ops() if o["type"] == "exec_approval")
    assert "never shown" not in (tmp_path / "pty.log").read_text()
    r.quit()


def test_patch_approval_shows_diff(tmp_path, codex_home):
    r = Repl(tmp_path, codex_home, [[
        {"type": "apply_patch_approval_request", "call_id": "p1", "reason": None,
         "changes": {"a.txt": {"update": {"unified_diff": "@@ -1 +1 @@\n-old line\n+new line\n"}}}},
        {"await": "patch_approval"}, _msg("patched"),
    ]])
    r.submit("edit")
    r.expect("Apply these changes")
    r.expect(r"\[Esc\]")
    r.send("a")  # not offered for patches: ignored
    time.sleep(0.3)
    r.send("y")
    r.expect("You approved codex to apply the patch")
    r.expect("patched")
    r.expect_prompt()
    assert [o["decision"] for o in r.ops() if o["type"] == "patch_approval"] == ["approved"]
    log = (tmp_path / "pty.log").read_text()
    assert "a.txt" in log and "-old line" in log and "+new line" in log
    r.quit()


def test_esc_and_ctrl_c_interrupt_a_running_turn(tmp_path, codex_home):
    r = Repl(tmp_path, codex_home, [[{"sleep": 20}], [{"sleep": 20}]])
    r.submit("slow")
    r.expect("Working")
    r.send("\x1b")
    r.expect("interrupted")
    r.expect_prompt()
    r.submit("slow again")
    r.expect("Working")
    r.send("\x03")
    r.expect("interrupted")
    r.expect_prompt()
    assert len([o for o in r.ops() if o["type"] == "interrupt"]) == 2
    r.quit()


def test_esc_esc_forks_from_an_earlier_message(tmp_path, codex_home):
    r = Repl(tmp_path, codex_home, [[_msg("a1")], [_msg("a2")], [_msg("a3")]])
    r.submit("first question")
    r.expect("a1")
    r.expect_prompt()
    r.submit("second question")
    r.expect("a2")
    r.expect_prompt()
    r.send("\x1b")
    r.expect(S("Esc again to edit"))
    r.send("\x1b")
    r.expect("Edit a previous message")
    time.sleep(0.3)
    r.send("\x1b")  # one step older
    time.sleep(0.3)
    r.send("\r")
    r.expect("forked before message 1 of 2")
    r.expect("first question")  # pre-filled in the composer
    time.sleep(0.3)
    r.send(" edited\r")
    r.expect("a3")
    r.expect_prompt()
    ops = r.ops()
    fork = [o for o in ops if o["type"] == "fork"]
    assert fork == [{"type": "fork", "drop": 2, "kept": []}]
    texts = [o["items"][0]["text"] for o in ops if o["type"] == "user_input"]
    assert texts[-1] == "first question edited"
    r.quit()


def test_slash_commands(tmp_path, codex_home):
    work = tmp_path / "repo"
    work.mkdir()
    subprocess.run(["git", "init", "-q", str(work)], check=True)
    (work / "new_file.txt").write_text("brand new\n")
    (work / "AGENTS.md").write_text("be nice\n")
    r = Repl(tmp_path, codex_home, [[_msg("compacted")]], cwd=work)
    r.send("/sta")
    r.expect("show current session configuration")  # the popup with descriptions
    time.sleep(0.3)
    r.send("\r")
    r.expect("approval:")
    r.expect("sandbox:")
    r.expect_prompt()
    r.submit("/diff")
    r.expect("new_file.txt")
    r.expect("brand new")
    r.expect_prompt()
    r.submit("/init")
    r.expect("AGENTS.md already exists")
    r.expect_prompt()
    r.submit("/model gpt-5 high")
    r.expect("model: gpt-5 \\(reasoning high\\)")
    r.expect_prompt()
    r.submit("/approvals")
    r.expect("Full Access")
    time.sleep(0.2)
    r.send("2")
    r.expect("approvals: Auto")
    r.expect_prompt()
    r.submit("/compact")
    r.expect("compacted")
    r.expect_prompt()
    r.submit("/new")
    r.expect("new chat")
    r.expect_prompt()
    r.submit("/mention")
    r.expect("AGENTS.md")  # the file popup opened on '@'
    r.send("\x1b")
    time.sleep(0.5)
    r.control("c")  # clears the composer
    time.sleep(0.3)
    r.submit("/quit")
    r.child.expect(pexpect.EOF)
    ops = r.ops()
    overrides = [o for o in ops if o["type"] == "override_turn_context"]
    assert overrides[0] == {"type": "override_turn_context", "model": "gpt-5", "effort": "high"}
    assert overrides[1]["approval_policy"] == "on-request"
    assert overrides[1]["sandbox_policy"]["mode"] == "workspace-write"
    assert [o["type"] for o in ops].count("compact") == 1
    assert [o["type"] for o in ops].count("shutdown") == 2  # /new, then /quit


def test_ctrl_c_clears_then_quits_and_initial_prompt_runs(tmp_path, codex_home):
    r = Repl(tmp_path, codex_home, [[_msg("answer to argv prompt")]], args=["explain this repo"])
    r.expect("answer to argv prompt")
    r.expect_prompt()
    r.send("some text")
    time.sleep(0.2)
    r.control("c")
    time.sleep(0.2)
    r.control("c")
    r.expect(S("Ctrl-C again to quit"))
    r.control("c")
    r.child.expect(pexpect.EOF)
    assert [o["items"][0]["text"] for o in r.ops() if o["type"] == "user_input"] == ["explain this repo"]


def test_large_paste_is_kept_intact(tmp_path, codex_home):
    r = Repl(tmp_path, codex_home, [[_msg("got it")]])
    pasted = "\n".join("line %04d of a long paste with `code` and @at and /slash" % i for i in range(300))
    r.send("\x1b[200~" + pasted + "\x1b[201~")
    time.sleep(1.0)
    r.send("\r")
    r.expect("got it")
    r.expect_prompt()
    texts = [o["items"][0]["text"] for o in r.ops() if o["type"] == "user_input"]
    assert texts == [pasted]
    r.quit()


def test_newline_key_and_no_mouse_capture_by_default(tmp_path, codex_home):
    r = Repl(tmp_path, codex_home, [[_msg("two lines seen")]])
    r.send("first line")
    r.child.sendcontrol("j")
    r.send("second line")
    time.sleep(0.2)
    r.send("\r")
    r.expect("two lines seen")
    r.expect_prompt()
    assert [o["items"][0]["text"] for o in r.ops() if o["type"] == "user_input"] == ["first line\nsecond line"]
    r.quit()
    log = (tmp_path / "pty.log").read_text()
    assert "\x1b[?1000h" not in log and "\x1b[?1049h" not in log  # no mouse capture, no alternate screen


def test_mouse_capture_only_when_asked(tmp_path, codex_home):
    r = Repl(tmp_path, codex_home, [], args=["-c", "tui.disable_mouse_capture=false"])
    r.quit()
    assert "\x1b[?1000h" in (tmp_path / "pty.log").read_text()


def test_dumb_terminal_and_no_color_are_plain(tmp_path, codex_home):
    turns = [[{"type": "agent_message", "message": "**bold** answer"},
              {"type": "exec_command_begin", "call_id": "c", "command": ["ls"], "cwd": "/"},
              {"type": "exec_command_end", "call_id": "c", "stdout": "out", "stderr": "", "exit_code": 0,
               "duration": {"secs": 1, "nanos": 0}}]]
    r = Repl(tmp_path, codex_home, turns, env={"TERM": "dumb"})
    r.submit("go")
    r.expect("ls \u00b7 1.0s")
    r.expect_prompt()
    r.quit()
    log = (tmp_path / "pty.log").read_text()
    body = log[log.index("bold answer") - 10:log.index("ls \u00b7 1.0s")]
    assert "\x1b" not in body and "bold answer" in body
    (tmp_path / "pty.log").unlink()
    r = Repl(tmp_path, codex_home, turns, env={"NO_COLOR": "1"})
    r.submit("go")
    r.expect("1.0s")
    r.expect_prompt()
    r.quit()
    import re
    colours = re.findall(r"\x1b\[[0-9;]*(?:3[0-9]|9[0-7]|38;5;\d+)m", (tmp_path / "pty.log").read_text())
    assert colours == []


def test_reasoning_shown_dimmed_or_hidden(tmp_path, codex_home):
    turn = [{"type": "agent_reasoning", "text": "**Planning** the change"}, _msg("done thinking")]
    r = Repl(tmp_path, codex_home, [turn])
    r.submit("go")
    r.expect("thinking")
    r.expect("Planning")
    r.expect("done thinking")
    r.expect_prompt()
    r.quit()
    (tmp_path / "pty.log").unlink()
    r = Repl(tmp_path, codex_home, [turn], args=["-c", "hide_agent_reasoning=true"])
    r.submit("go")
    r.expect("done thinking")
    r.expect_prompt()
    r.quit()
    assert "Planning the change" not in r.log().replace("**", "")


def test_piped_stdin_reads_one_message_per_line(tmp_path, codex_home):
    script = tmp_path / "script.json"
    script.write_text(json.dumps({"turns": [[_msg("answer A")], [_msg("answer B")]]}))
    ops = tmp_path / "ops.jsonl"
    proc = subprocess.run([sys.executable, HARNESS, str(script), str(ops)], input="first line\n/status\nsecond line\n",
                          capture_output=True, text=True, timeout=30,
                          env=dict(os.environ, CODEX_HOME=str(codex_home), OPENAI_API_KEY="k", TERM="xterm"))
    assert proc.returncode == 0, proc.stderr
    assert "answer A" in proc.stdout and "answer B" in proc.stdout and "session:" in proc.stdout
    assert "\x1b" not in proc.stdout
    texts = [json.loads(l)["items"][0]["text"] for l in ops.read_text().splitlines() if '"user_input"' in l]
    assert texts == ["first line", "second line"]


def test_history_persistence_none_and_max_bytes(tmp_path, codex_home):
    r = Repl(tmp_path, codex_home, [[_msg("answer-one")]], args=["-c", 'history.persistence="none"'])
    r.submit("not recorded")
    r.expect("answer-one")
    r.expect_prompt()
    r.send(UP)  # this session's own prompt is still browsable
    r.expect("not recorded")
    r.control("c")
    time.sleep(0.2)
    r.quit()
    assert not (codex_home / "history.jsonl").exists()

    import codex

    for i in range(40):
        codex.append_history(codex_home, "old", "old prompt %02d %s" % (i, "z" * 40))
    inode = os.stat(codex_home / "history.jsonl").st_ino
    r = Repl(tmp_path, codex_home, [[_msg("answer-two")]], args=["-c", "history.max_bytes=1000"])
    r.submit("newest prompt")
    r.expect("answer-two")
    r.expect_prompt()
    r.quit()
    path = codex_home / "history.jsonl"
    assert os.path.getsize(path) <= 1000 and os.stat(path).st_ino != inode
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert json.loads(path.read_text().splitlines()[-1])["text"] == "newest prompt"


def test_keys_typed_during_a_turn_land_in_the_composer(tmp_path, codex_home):
    r = Repl(tmp_path, codex_home, [[{"sleep": 1.0}, _msg("slow answer")], [_msg("typed ahead")]])
    r.submit("first")
    r.expect("Working")
    r.send("next question")
    r.expect("slow answer")
    r.expect_prompt()
    time.sleep(0.3)
    r.send("\r")
    r.expect("typed ahead")
    r.expect_prompt()
    texts = [o["items"][0]["text"] for o in r.ops() if o["type"] == "user_input"]
    assert texts == ["first", "next question"]
    r.quit()


def test_a_startup_error_does_not_end_the_first_turn(tmp_path, codex_home):
    r = Repl(tmp_path, codex_home, [[{"sleep": 1.8}, _msg("answer after the error")]],
             startup_errors=["MCP server `x` failed to start"])
    r.submit("go")
    r.expect("failed to start")
    r.expect("answer after the error")
    r.expect_prompt()
    r.quit()


def test_running_command_shows_its_latest_output_line(tmp_path, codex_home):
    import base64

    chunk = base64.b64encode(b"step 1\nstep 2 of 3\n").decode()
    r = Repl(tmp_path, codex_home, [[
        {"type": "exec_command_begin", "call_id": "c", "command": ["make", "all"], "cwd": "/w"},
        {"type": "exec_command_output_delta", "call_id": "c", "stream": "stdout", "chunk": chunk},
        {"sleep": 0.6},
        {"type": "exec_command_end", "call_id": "c", "stdout": "step 1\nstep 2 of 3\n", "stderr": "",
         "exit_code": 0, "duration": {"secs": 0, "nanos": 600000000}},
        _msg("built"),
    ]])
    r.submit("build it")
    r.expect("Running make all \u2014 step 2 of 3")
    r.expect("built")
    r.expect_prompt()
    r.quit()
