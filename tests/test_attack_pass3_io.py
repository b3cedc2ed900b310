"""The third attack pass's findings about what codex's OWN (unsandboxed) process reads and prints
for the model (docs/attack-pass/third/README.md: 01, 02, 05, 09), each attacked through the real
path: a real session or `codex exec` against the scripted model, real files, FIFOs and
symlinks, the real sandbox for the commands that plant them.  docs/sandbox.md maps each class
to its mechanism and these tests.
"""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import codex

REPO = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.timeout(300), pytest.mark.skipif(not codex._LINUX, reason="Linux sandbox")]

NO_LIMITS = {"max_tool_calls_per_turn": 0, "max_repeated_tool_calls": 0, "follow_up_nudges": 0}
NO_TMP = {"sandbox_workspace_write": {"exclude_slash_tmp": True, "exclude_tmpdir_env_var": True}}


def outputs_by_call(items):
    """call_id -> the output of each function call in a request's `input` (the `output` of a
    JSON envelope, else the text)."""
    out = {}
    for item in items:
        if item.get("type") == "function_call_output":
            o = item["output"]
            try:
                o = json.loads(o)["output"]
            except (ValueError, TypeError, KeyError):
                pass
            out[item["call_id"]] = o
    return out


def _outputs(server, calls, cfg, handler=None, timeout=150):
    """Run one model turn making `calls` [(name, args)] (call ids c0, c1...), then "done";
    {call_id: the output the model got} and the session's events."""
    from support.agent_env import drain_until, user_input
    from support.model_server import Turn

    turn = Turn()
    for i, (name, args) in enumerate(calls):
        turn.function_call(name, args, call_id="c%d" % i)
    server.enqueue(turn, Turn().text("done"))
    session = codex.Session(cfg, approval_handler=handler).start()
    try:
        session.submit(user_input("go"))
        msgs = drain_until(session, "task_complete", timeout=timeout)
    finally:
        session.shutdown()
    second = [r for r in server.requests if r.method == "POST"][-1].body["input"]
    out = outputs_by_call(second)
    return out, msgs


# ---------------------------------------------------------------------------------------------
# 01: edit_file / write_file / apply_patch answered differently by the content of a file the
# model cannot read (auth.json, codex's own /proc/self/environ, a file outside the roots)
# ---------------------------------------------------------------------------------------------


def _probes(target, right, wrong, right_line, wrong_line):
    """Pairs of calls that differ only in whether a guess about `target`'s content is right."""
    name = str(target)
    return [
        ("edit_file", {"path": name, "old_text": right, "new_text": right}),
        ("edit_file", {"path": name, "old_text": wrong, "new_text": wrong}),
        ("write_file", {"path": name, "content": right}),
        ("write_file", {"path": name, "content": wrong}),
        ("apply_patch", {"input": "*** Begin Patch\n*** Update File: %s\n@@\n-%s\n+%s\n*** End Patch\n"
                                  % (name, right_line, right_line)}),
        ("apply_patch", {"input": "*** Begin Patch\n*** Update File: %s\n@@\n-%s\n+%s\n*** End Patch\n"
                                  % (name, wrong_line, wrong_line)}),
    ]


def _targets(tmp_path, home, ws):
    """(path, its whole content) of files the model's commands cannot read (or write)."""
    auth = home / "auth.json"
    auth.write_text('{\n  "OPENAI_API_KEY": "sk-oracle-1234"\n}\n')
    os.chmod(str(auth), 0o600)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("password=hunter2\nsecond line\n")
    os.symlink(str(auth), str(ws / "link-to-auth.json"))  # what a sandboxed `ln -s` plants
    with open("/proc/self/environ", "rb") as fh:
        environ = fh.read().split(b"\0")[0].decode("utf-8", "replace")
    return {"auth": (auth, auth.read_text()), "link": (ws / "link-to-auth.json", auth.read_text()),
            "outside": (outside / "secret.txt", (outside / "secret.txt").read_text()),
            "environ": (Path("/proc/self/environ"), environ)}


@pytest.mark.parametrize("sandbox,approval", [("read-only", "never"), ("workspace-write", "never"),
                                              ("workspace-write", "on-request"), ("danger-full-access", "never")])
def test_file_tools_and_patches_are_no_oracle_on_unreadable_files(tmp_path, server, sandbox, approval):
    """Every probe pair (a right and a wrong guess about the content) gets the same answer, the
    files stay as they were, and what the user is asked shows nothing codex read from them."""
    from support.agent_env import mock_config

    home, ws = tmp_path / "home", tmp_path / "ws"
    home.mkdir()
    ws.mkdir()
    targets = _targets(tmp_path, home, ws)
    names = ["auth", "link", "environ"] + (["outside"] if sandbox != "danger-full-access" else [])
    calls = []
    for key in names:
        path, content = targets[key]
        first = content.split("\n")[0]
        calls += _probes(path, content[:8], content[:7] + "\x01", first, first + "x")
    asked = []

    def deny(msg):
        asked.append(msg)
        return "denied"

    cfg = mock_config(server, home, ws, approval=approval, sandbox=sandbox, file_tools=True,
                      tools={"apply_patch": True}, **dict(NO_LIMITS, **NO_TMP))
    before = {k: targets[k][0].read_bytes() for k in ("auth", "outside")}
    out, _ = _outputs(server, calls, cfg, handler=deny)
    assert len(out) == len(calls), out
    for i in range(0, len(calls), 2):
        right, wrong = out["c%d" % i], out["c%d" % (i + 1)]
        assert right == wrong, (calls[i], right, wrong)  # the same answer: no oracle
        assert "patch rejected" in right, (calls[i], right)  # refused (never) or asked and denied
    assert {k: targets[k][0].read_bytes() for k in ("auth", "outside")} == before
    if approval == "on-request":
        assert len(asked) == len(calls), [m.get("type") for m in asked]
    shown = json.dumps(asked)
    for secret in ("sk-oracle-1234", "second line"):  # in the files, in no probe
        assert secret not in shown, shown[shown.find(secret) - 600:shown.find(secret) + 100]


def test_the_file_opened_is_judged_again_by_its_real_path(tmp_path):
    """A target that passed the check and was swapped for a link to auth.json before codex
    opened it (a process outliving its command): the read judges the file it opened (its real
    path from /proc/self/fd), so it is refused with a text that says nothing of the content."""
    home, ws = tmp_path / "home", tmp_path / "ws"
    home.mkdir()
    ws.mkdir()
    (home / "auth.json").write_text('{"OPENAI_API_KEY": "sk-x"}\n')
    cfg = codex.load_config(codex.ConfigOverrides(approval_policy="never", sandbox_mode="workspace-write", cwd=str(ws)),
                            ["sandbox_workspace_write.exclude_slash_tmp=true",
                             "sandbox_workspace_write.exclude_tmpdir_env_var=true"], home=home, environ={"HOME": str(tmp_path)})
    (ws / "a.txt").write_text("a\n")
    assert codex.model_file_refusal(ws / "a.txt", cfg) is None  # the check passes...
    os.unlink(str(ws / "a.txt"))
    os.symlink(str(home / "auth.json"), str(ws / "a.txt"))  # ...then the swap
    allow = lambda real: codex.model_file_refusal(real, cfg)  # noqa: E731
    answers = set()
    for guess in ('{"OPENAI_API_KEY": "sk-x"}', "wrong"):
        with pytest.raises(codex.PatchError) as err:
            codex.plan_patch("*** Begin Patch\n*** Update File: a.txt\n@@\n-%s\n+%s\n*** End Patch\n" % (guess, guess),
                             ws, allow=allow)
        answers.add(str(err.value).replace(guess, ""))
    assert len(answers) == 1 and "$CODEX_HOME" in answers.pop()


def test_edit_file_is_not_dispatched_when_not_offered(tmp_path, server):
    """gpt-5 is offered shell and no file tools: an edit_file call is an unsupported call, as
    any name the model invents (the file is neither read nor written)."""
    from support.agent_env import mock_config

    home, ws = tmp_path / "home", tmp_path / "ws"
    home.mkdir()
    ws.mkdir()
    (ws / "a.txt").write_text("old\n")
    cfg = mock_config(server, home, ws, approval="never", sandbox="workspace-write", **NO_TMP)
    out, _ = _outputs(server, [("edit_file", {"path": "a.txt", "old_text": "old", "new_text": "new"}),
                               ("write_file", {"path": "a.txt", "content": "x"})], cfg)
    assert out == {"c0": "unsupported call: edit_file", "c1": "unsupported call: write_file"}
    assert (ws / "a.txt").read_text() == "old\n"
    tools = [t.get("name") for t in server.requests[0].body["tools"]]
    assert "edit_file" not in tools and "shell" in tools


def test_file_tools_still_edit_the_workspace_and_ask_first_outside_it(tmp_path, server):
    """What the gate keeps working: in the workspace (workspace-write, never) edit_file and
    write_file change files and their helpful errors stay; in read-only mode the user is asked
    BEFORE codex reads the file, and an approved edit is made."""
    from support.agent_env import mock_config

    home, ws = tmp_path / "home", tmp_path / "ws"
    home.mkdir()
    ws.mkdir()
    (ws / "a.txt").write_text("alpha\nbeta\n")
    cfg = mock_config(server, home, ws, approval="never", sandbox="workspace-write", file_tools=True,
                      **dict(NO_LIMITS, **NO_TMP))
    out, _ = _outputs(server, [("edit_file", {"path": "a.txt", "old_text": "nope", "new_text": "x"}),
                               ("edit_file", {"path": "a.txt", "old_text": "beta", "new_text": "gamma"}),
                               ("write_file", {"path": "new.txt", "content": "fresh\n"})], cfg)
    assert out["c0"].startswith("error: old_text was not found in a.txt"), out
    assert (ws / "a.txt").read_text() == "alpha\ngamma\n" and (ws / "new.txt").read_text() == "fresh\n", out
    asked = []

    def approve(msg):
        asked.append(msg)
        return "approved"

    cfg = mock_config(server, home, ws, approval="on-request", sandbox="read-only", file_tools=True, **NO_LIMITS)
    out, _ = _outputs(server, [("edit_file", {"path": "a.txt", "old_text": "gamma", "new_text": "delta"})], cfg,
                      handler=approve)
    assert (ws / "a.txt").read_text() == "alpha\ndelta\n", out
    assert [m["type"] for m in asked] == ["apply_patch_approval_request"], asked
    diff = asked[0]["changes"][str(ws / "a.txt")]["update"]["unified_diff"]
    assert "alpha" not in diff and "-gamma" in diff and "+delta" in diff  # the arguments, not the file


# ---------------------------------------------------------------------------------------------
# 09: AGENTS.md -> ~/.codex/auth.json when the git root (a dotfiles repo at ~) holds $CODEX_HOME
# ---------------------------------------------------------------------------------------------


def test_agents_md_planted_into_codex_home_is_never_sent(tmp_path, server):
    """~ is a git repository holding ~/.codex; the workspace ~/proj has no repository of its
    own.  Session 1's model plants `AGENTS.md -> ~/.codex/auth.json` with a sandboxed `ln -s`;
    session 2 (the user's next start there) does not send the key as instructions."""
    from support.agent_env import drain_until, mock_config, user_input
    from support.model_server import Turn

    home = tmp_path / "home"
    ch, ws = home / ".codex", home / "proj"
    ch.mkdir(parents=True)
    ws.mkdir()
    subprocess.run(["git", "init", "-q", str(home)], check=True)
    (ch / "auth.json").write_text('{"OPENAI_API_KEY": "sk-home-repo-7731"}')
    (home / "AGENTS.md").write_text("home rules\n")
    (ws / "AGENTS.md").write_text("project rules\n")
    server.enqueue(Turn().function_call("shell", {"command": ["ln", "-sf", str(ch / "auth.json"), "AGENTS.md"]},
                                        call_id="c0"), Turn().text("done"), Turn().text("done"))
    for n in range(2):
        cfg = mock_config(server, ch, ws, approval="never", sandbox="workspace-write", **NO_TMP)
        session = codex.Session(cfg).start()
        try:
            session.submit(user_input("session %d" % n))
            drain_until(session, "task_complete", timeout=120)
        finally:
            session.shutdown()
    assert os.path.islink(str(ws / "AGENTS.md")), "the sandboxed ln -s did not run"
    bodies = [json.dumps(r.body) for r in server.requests if r.method == "POST"]
    assert len(bodies) == 3 and "project rules" in bodies[0] and "home rules" in bodies[2]
    assert not any("sk-home-repo-7731" in b for b in bodies)
    # the same refusal for a doc found at the root itself (~/AGENTS.md) and for a link out of
    # its directory; a link to a file below the doc's own directory still counts
    os.unlink(str(home / "AGENTS.md"))
    os.symlink(str(ch / "auth.json"), str(home / "AGENTS.md"))
    assert codex.read_project_docs(ws, home=str(ch)) is None
    os.unlink(str(ws / "AGENTS.md"))
    (ws / "docs").mkdir()
    (ws / "docs" / "agents.md").write_text("linked rules\n")
    os.symlink("docs/agents.md", str(ws / "AGENTS.md"))
    assert codex.read_project_docs(ws, home=str(ch)) == "linked rules\n"


def test_project_doc_fifo_or_device_does_not_hang(tmp_path):
    """A FIFO, /dev/zero or /dev/tty as AGENTS.md (or behind a link): nothing blocks, nothing is
    read.  In a child process with a bound: a hang is a failure, not a stuck test."""
    ws = tmp_path / "ws"
    ws.mkdir()
    subprocess.run(["git", "init", "-q", str(ws)], check=True)
    for sub, kind in (("a", "fifo"), ("a/b", "/dev/zero"), ("a/b/c", "/dev/tty")):
        (ws / sub).mkdir()
        target = ws / sub / "AGENTS.md"
        if kind == "fifo":
            os.mkfifo(str(target))
        else:
            os.symlink(kind, str(target))
    code = "import sys; sys.path.insert(0, %r); import codex; print(repr(codex.read_project_docs(%r)))" % (
        str(REPO), str(ws / "a" / "b" / "c"))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "None", proc.stdout + proc.stderr[-2000:]


# ---------------------------------------------------------------------------------------------
# 02: a FIFO (or /dev/zero, /dev/stdin, /dev/tty) as a patch target hung codex
# ---------------------------------------------------------------------------------------------


def _patch(op, path, body="@@\n-a\n+b\n"):
    return ("apply_patch", {"input": "*** Begin Patch\n*** %s File: %s\n%s*** End Patch\n" % (op, path, body)})


@pytest.mark.parametrize("sandbox", ["workspace-write", "danger-full-access"])
def test_fifos_and_devices_named_in_patches_do_not_hang_codex(tmp_path, server, run_codex, sandbox):
    """`codex exec` (a real process, bounded) where the model makes FIFOs and device links with
    its commands and names them in patches and file tools, and turns a file its patch wrote
    into a FIFO before the next patch (the turn diff reads it again): every call gets an
    answer, the session ends."""
    from support.agent_env import MOCK_KEY_ENV, mock_cli_args
    from support.model_server import Turn

    ws = tmp_path / "ws"
    ws.mkdir()
    calls = [("shell", {"command": ["bash", "-c", "mkfifo f && ln -s /dev/zero z && ln -s /dev/tty t && echo made"]}),
             _patch("Update", "f"), _patch("Update", "z"), _patch("Update", "t"), _patch("Update", "/dev/stdin"),
             _patch("Delete", "f", ""), ("edit_file", {"path": "f", "old_text": "a", "new_text": "b"}),
             ("write_file", {"path": "z", "content": "x\n"}),
             _patch("Add", "g.txt", "+one\n"),
             ("shell", {"command": ["bash", "-c", "rm g.txt && mkfifo g.txt && echo swapped"]}),
             _patch("Add", "h.txt", "+two\n")]
    server.enqueue(*[Turn().function_call(n, a, call_id="c%d" % i) for i, (n, a) in enumerate(calls)] + [Turn().text("done")])
    argv = (["exec", "-C", str(ws), "-m", "gpt-5", "-s", sandbox, "--skip-git-repo-check"]
            + mock_cli_args(server, file_tools=True, tools={"apply_patch": True}, approval_policy="never",
                            **dict(NO_LIMITS, **NO_TMP)) + ["go"])
    started = time.monotonic()
    proc = run_codex(*argv, env={MOCK_KEY_ENV: "test-key"}, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert time.monotonic() - started < 100
    posts = [r for r in server.requests if r.method == "POST"]
    assert len(posts) == len(calls) + 1
    out = outputs_by_call(posts[-1].body["input"])
    assert "made" in out["c0"] and "swapped" in out["c9"], out
    assert "not a regular file" in out["c1"], out  # the FIFO: refused by fstat, nothing blocked
    for i in (2, 3, 4, 7):  # links to devices and /dev/stdin: /dev is never read before a question
        assert "patch rejected" in out["c%d" % i] or "not a regular file" in out["c%d" % i], (i, out)
    assert os.path.exists(str(ws / "f")) and (ws / "h.txt").read_text() == "two\n"


# ---------------------------------------------------------------------------------------------
# 05: escape sequences in a patch's file names reached the terminal (exec, the REPL's approval)
# ---------------------------------------------------------------------------------------------

OSC52 = "\x1b]52;c;cHduZWQ=\x07"  # sets the user's clipboard to "pwned"
ERASE = "\x1b[1A\x1b[2K"  # moves up and erases a line that was shown
ESCAPES = OSC52 + ERASE


def test_patch_paths_with_control_characters_are_refused_at_parse_time():
    for path in ("f%s.txt" % ESCAPES, "a\tb", "x\u202eg.txt", "c\x9bd"):
        with pytest.raises(codex.PatchError, match="control character") as err:
            codex.parse_patch("*** Begin Patch\n*** Add File: %s\n+x\n*** End Patch\n" % path)
        assert "\x1b" not in str(err.value) and "\u202e" not in str(err.value)
    with pytest.raises(codex.PatchError, match="control character"):
        codex.parse_patch("*** Begin Patch\n*** Update File: a\n*** Move to: b%s\n@@\n-a\n+b\n*** End Patch\n" % ERASE)
    assert codex.terminal_safe({"k%s" % ESCAPES: {"n\x1b[2J": "v\x1b]0;t\x07"}}) == {
        "k\\x1b]52;c;cHduZWQ=\\x07\\x1b[1A\\x1b[2K": {"n\\x1b[2J": "v\\x1b]0;t\\x07"}}


def test_exec_shows_patch_paths_escaped(tmp_path, server, run_codex):
    """`codex exec` (a real process): a patch naming a file with escape sequences is refused;
    one applied in a workdir whose name holds them (a directory of a cloned repository) prints
    the file name escaped; the raw sequences never reach the output."""
    from support.agent_env import MOCK_KEY_ENV, mock_cli_args
    from support.model_server import Turn

    ws = tmp_path / "ws"
    (ws / ("d" + ESCAPES)).mkdir(parents=True)
    add = "*** Begin Patch\n*** Add File: %s\n+x\n*** End Patch\n"
    server.enqueue(Turn().function_call("apply_patch", {"input": add % ("f%s.txt" % ESCAPES)}, call_id="c0"),
                   Turn().function_call("shell", {"command": ["apply_patch", add % "ok.txt"], "workdir": "d" + ESCAPES},
                                        call_id="c1"),
                   Turn().text("done"))
    argv = (["exec", "-C", str(ws), "-m", "gpt-5", "-s", "workspace-write", "--skip-git-repo-check"]
            + mock_cli_args(server, tools={"apply_patch": True}, approval_policy="never", **NO_TMP) + ["go"])
    proc = run_codex(*argv, env={MOCK_KEY_ENV: "test-key"}, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (ws / ("d" + ESCAPES) / "ok.txt").read_text() == "x\n"
    assert not [n for n in os.listdir(str(ws)) if n.startswith("f")]
    both = proc.stdout + proc.stderr
    assert "\x1b]52" not in both and "\x1b[2K" not in both and "\x1b[1A" not in both, repr(both[-2000:])
    assert "d\\x1b]52;c;cHduZWQ=\\x07\\x1b[1A\\x1b[2K/ok.txt" in both, both[-2000:]


def test_repl_patch_approval_shows_paths_escaped(tmp_path, codex_home, server):
    """The REPL's "proposed patch" question (through a pty) for a patch in such a workdir: the
    file name is shown escaped, the clipboard sequence never reaches the terminal."""
    pytest.importorskip("pexpect")
    from support.agent_env import MOCK_KEY_ENV, mock_cli_args
    from support.model_server import Turn
    from support.repl_pty import ESC, ReplPty

    work = tmp_path / "work"
    (work / ("d" + ESCAPES)).mkdir(parents=True)
    add = "*** Begin Patch\n*** Add File: ok.txt\n+x\n*** End Patch\n"
    server.enqueue(Turn().function_call("shell", {"command": ["apply_patch", add], "workdir": "d" + ESCAPES},
                                        call_id="p1"), Turn().text("ok"))
    argv = ([str(REPO / "codex.py"), "-C", str(work), "-m", "gpt-5", "-s", "read-only", "-a", "untrusted",
             "--skip-git-repo-check"] + mock_cli_args(server))
    r = ReplPty(sys.executable, argv, {"CODEX_HOME": str(codex_home), MOCK_KEY_ENV: "test-key"}, work,
                tmp_path / "pty.log")
    r.submit("add it")
    r.expect("proposed patch")
    r.expect("Apply these changes")
    r.send(ESC)
    r.expect_prompt()
    r.quit()
    raw = (tmp_path / "pty.log").read_bytes()
    assert b"\x1b]52" not in raw, raw[raw.find(b"proposed"):][:400]
    assert b"cHduZWQ=" in raw  # the name was shown, escaped
    assert not (work / ("d" + ESCAPES) / "ok.txt").exists()
