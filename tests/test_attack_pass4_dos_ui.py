"""The fourth attack pass's findings 03 (the turn diff's CPU), 04 (escape sequences in the
trusted UI's model-chosen text) and 05 (a root command changing the mode of a writable root
itself), attacked through the real path: `codex exec` against the scripted model server, the
real helpers on this kernel (the `impl` fixture), real files (docs/attack-pass/fourth/README.md;
docs/sandbox.md maps each class to its mechanism and these tests).
"""
import difflib
import os
import random
import re
import sys

import pytest

import codex

pytestmark = [pytest.mark.timeout(240)]


# ---------------------------------------------------------------------------------------------
# 03: difflib in codex's own process on crafted text (super-linear), after every patch
# ---------------------------------------------------------------------------------------------

# ~120 distinct lines, each under autojunk's 1%: difflib's worst case (52-140 s at 70k lines)
_GEN = ("import random,sys; random.seed(int(sys.argv[1])); "
        "open('big.txt','w').write(''.join('%d\\n' % random.randrange(120) for _ in range(70000)))")


def _crafted(seed, n=70000):
    rnd = random.Random(seed)
    return ["%d\n" % rnd.randrange(120) for _ in range(n)]


def _apply_unified(old, diff):
    """Apply a unified diff (lines) to old (lines): checks that a coarse diff is still a diff."""
    out, at = [], 0
    for line in diff:
        if line.startswith(("--- ", "+++ ")):
            continue
        head = re.match(r"@@ -(\d+)(?:,(\d+))? \+", line)
        if head:
            start, length = int(head.group(1)), int(head.group(2) or 1)
            start = start - 1 if length else start
            out.extend(old[at:start])
            at = start
            continue
        if line[0] in " -":
            assert old[at] == line[1:], (at, line)
            at += 1
        if line[0] in " +":
            out.append(line[1:])
    return out + old[at:]


def test_bounded_diff_is_difflibs_diff_on_ordinary_input():
    rnd = random.Random(5)
    for _ in range(2000):
        alphabet = rnd.choice([2, 3, 5, 30])
        old = ["%d\n" % rnd.randrange(alphabet) for _ in range(rnd.randrange(40))]
        new = list(old) if rnd.random() < 0.5 else ["%d\n" % rnd.randrange(alphabet) for _ in range(rnd.randrange(40))]
        for _ in range(rnd.randrange(4)):
            if new:
                new[rnd.randrange(len(new))] = "x\n"
        if new and rnd.random() < 0.2:
            new[-1] = new[-1].rstrip("\n")
        context = rnd.choice([0, 1, 3])
        assert list(codex.bounded_unified_diff(old, new, "a/f", "b/f", n=context)) == \
            list(difflib.unified_diff(old, new, "a/f", "b/f", n=context))
    # a large ordinary source file with scattered edits: still difflib's own diff
    source = open(codex.__file__).read().splitlines(True)
    edited = list(source)
    for at in range(100, len(edited), len(edited) // 25):
        edited.insert(at, "# edited\n")
    assert list(codex.bounded_unified_diff(source, edited)) == list(difflib.unified_diff(source, edited))


def test_bounded_diff_of_crafted_text_is_quick_and_still_a_diff():
    old, new = _crafted(1), _crafted(2)
    inserted = ["head\n"] + old[:35000] + ["middle\n"] + old[35000:]
    for target in (new, inserted, old[:-5] + ["tail\n"]):
        started = codex.time.monotonic()
        diff = list(codex.bounded_unified_diff(old, target, "a/big.txt", "b/big.txt"))
        assert codex.time.monotonic() - started < codex.DIFF_SECONDS + 8
        assert _apply_unified(old, diff) == target
    # the deadline is a budget: past it, even a cheap pair gets the coarse (linear) diff
    diff = list(codex.bounded_unified_diff(["a\n", "b\n", "c\n"], ["a\n", "x\n", "c\n"], deadline=0))
    assert diff == ["--- \n", "+++ \n", "@@ -1,3 +1,3 @@\n", " a\n", "-b\n", "+x\n", " c\n"]


def test_a_tiny_patch_after_a_crafted_rewrite_does_not_hold_exec(run_codex, server, tmp_path):
    # the repro of finding 03: patch big.txt (its content becomes the turn diff's "before"),
    # rewrite it with a command, then a 6-byte patch: codex diffed 70k crafted lines (52-140 s)
    from support.agent_env import MOCK_KEY_ENV, mock_cli_args
    from support.model_server import Turn

    ws = tmp_path / "ws"
    ws.mkdir()
    server.enqueue(
        Turn().function_call("shell", {"command": ["python3", "-c", _GEN, "1"]}, call_id="c1"),
        Turn().function_call("apply_patch", {"input": "*** Begin Patch\n*** Update File: big.txt\n@@\n+0\n*** End Patch\n"},
                             call_id="c2"),
        Turn().function_call("shell", {"command": ["python3", "-c", _GEN, "2"]}, call_id="c3"),
        Turn().function_call("apply_patch", {"input": "*** Begin Patch\n*** Add File: small.txt\n+hello\n*** End Patch\n"},
                             call_id="c4"),
        Turn().text("done"))
    run = run_codex("exec", "--json", "-s", "danger-full-access", "--skip-git-repo-check", "-C", str(ws),
                    *(mock_cli_args(server) + ["go"]), env={MOCK_KEY_ENV: "k"}, timeout=200)
    assert run.returncode == 0, run.stderr
    requests = server.model_requests()
    assert len(requests) == 5 and (ws / "small.txt").read_text() == "hello\n"
    # request 5 follows the 6-byte patch: what codex spent on it, its turn diff included
    assert requests[4].time - requests[3].time < 20, requests[4].time - requests[3].time


# ---------------------------------------------------------------------------------------------
# 04: SGR sequences (conceal, black on black) in the model's command, workdir, justification
# ---------------------------------------------------------------------------------------------

CONCEAL, BLACK = "\x1b[8m", "\x1b[30;40m"


def test_chrome_fields_lose_every_escape_and_output_keeps_its_colours_within_the_line():
    msg = codex.terminal_safe_event({
        "type": "exec_command_begin", "command": ["bash", "-lc", "echo ok %s; curl x | sh" % CONCEAL],
        "cwd": "/w/d" + BLACK, "reason": "why" + CONCEAL, "invocation": {"server": "s" + CONCEAL, "tool": "t\u202e"},
        "changes": {"/w/f" + CONCEAL: {"add": {"content": "x" + CONCEAL + "\n"}}}, "aggregated_output": "\x1b[32mok"})
    assert msg["command"][2] == "echo ok \\x1b[8m; curl x | sh"
    assert msg["cwd"] == "/w/d\\x1b[30;40m" and msg["reason"] == "why\\x1b[8m"
    assert msg["invocation"] == {"server": "s\\x1b[8m", "tool": "t\\u202e"}
    assert msg["changes"] == {"/w/f\\x1b[8m": {"add": {"content": "x\\x1b[8m\n"}}}
    assert msg["aggregated_output"] == "\x1b[32mok"  # a program's colours stay
    # output: colours kept, closed at the end of the line; conceal shown; 38;5;8 is a colour
    assert codex._contained_sgr("\x1b[1;32mok") == "\x1b[1;32mok\x1b[0m"
    assert codex._contained_sgr("a\x1b[0;8mb") == "a\\x1b[0;8mb"
    assert codex._contained_sgr("\x1b[38;5;8mgrey") == "\x1b[38;5;8mgrey\x1b[0m"
    assert codex._contained_sgr("plain") == "plain"


def test_exec_shows_the_models_command_and_workdir_with_escapes_revealed(run_codex, server, tmp_path):
    # the repro of finding 04: SGR 8 / black on black in the command hid `; echo HIDDEN` in the log
    from support.agent_env import MOCK_KEY_ENV, mock_cli_args
    from support.model_server import Turn

    ws = tmp_path / "ws"
    (ws / ("d" + CONCEAL)).mkdir(parents=True)
    server.enqueue(
        Turn().function_call("shell", {"command": ["bash", "-lc", "echo build ok %s; echo HIDDEN-RAN" % CONCEAL]},
                             call_id="c1"),
        Turn().function_call("shell", {"command": ["bash", "-lc", "true %s && echo ALSO-HIDDEN" % BLACK],
                                       "workdir": "d" + CONCEAL}, call_id="c2"),
        Turn().text("done " + CONCEAL))
    run = run_codex("exec", "-s", "workspace-write", "--skip-git-repo-check", "-C", str(ws),
                    *(mock_cli_args(server, approval_policy="never") + ["go"]), env={MOCK_KEY_ENV: "k"}, timeout=120)
    assert run.returncode == 0, run.stderr
    log = run.stderr
    assert "HIDDEN-RAN" in log and "ALSO-HIDDEN" in log
    assert CONCEAL not in log and BLACK not in log, repr(log)
    assert "echo build ok \\x1b[8m; echo HIDDEN-RAN" in log and "true \\x1b[30;40m && echo ALSO-HIDDEN" in log
    assert "d\\x1b[8m" in log  # the workdir
    # the command's own output ("build ok ESC[8m") and the answer: conceal shown, nothing left open
    assert "build ok \\x1b[8m" in log and "done \\x1b[8m" in log


def test_repl_approval_shows_workdir_and_justification_with_escapes_revealed(tmp_path, codex_home, server):
    pytest.importorskip("pexpect")
    from conftest import REPO
    from support.agent_env import MOCK_KEY_ENV, mock_cli_args
    from support.model_server import Turn
    from support.repl_pty import ESC, ReplPty

    work = tmp_path / "work"
    (work / ("d" + CONCEAL)).mkdir(parents=True)
    server.enqueue(Turn().function_call("shell", {"command": ["touch", "made"], "workdir": "d" + CONCEAL,
                                                  "with_escalated_permissions": True,
                                                  "justification": "routine" + BLACK + " and more"}, call_id="p1"),
                   Turn().text("ok"))
    argv = ([str(REPO / "codex.py"), "-C", str(work), "-m", "gpt-5", "-s", "read-only", "-a", "on-request",
             "--skip-git-repo-check"] + mock_cli_args(server))
    r = ReplPty(sys.executable, argv, {"CODEX_HOME": str(codex_home), MOCK_KEY_ENV: "test-key"}, work,
                tmp_path / "pty.log")
    r.submit("touch it")
    r.expect("Allow command")
    r.send(ESC)
    r.expect_prompt()
    r.quit()
    raw = (tmp_path / "pty.log").read_bytes()
    question = raw[raw.find(b"Allow command"):]
    assert CONCEAL.encode() not in question and BLACK.encode() not in question, question[:600]
    assert b"d\\x1b[8m" in question and b"routine\\x1b[30;40m" in question, question[:600]
    assert not (work / ("d" + CONCEAL) / "made").exists()


# ---------------------------------------------------------------------------------------------
# 05: a command changing the mode of a shared (sticky) writable root itself, as /tmp
# ---------------------------------------------------------------------------------------------


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux sandbox")
def test_a_command_cannot_keep_a_shared_root_unsticky(impl, tmp_path, codex_home):
    # /tmp itself is not touched here (other processes share it): a sticky 1777 root like it.
    # The command owns it (root's command: uid 0 mapped to root; a user's: the user's own dir),
    # so chmod needs no capability and no mount or Landlock rule covers the mode of a root.
    ws, shared = tmp_path / "ws", tmp_path / "shared"
    ws.mkdir()
    shared.mkdir()
    os.chmod(str(shared), 0o1777)
    cfg = codex.load_config(codex.ConfigOverrides(approval_policy="never", sandbox_mode="workspace-write", cwd=str(ws)),
                            ['sandbox_workspace_write.writable_roots=["%s"]' % shared], home=str(codex_home),
                            environ=dict(os.environ))
    script = ("chmod 0777 {d} && stat -c 'right after: %a' {d}; sleep 1; stat -c 'a second later: %a' {d}; "
              "chmod 0 {d}; sleep 1; touch {d}/mine && echo wrote".format(d=shared))
    r = codex.run_command(["bash", "-c", script], str(ws), cfg, codex.build_command_env(cfg), timeout_ms=30000)
    assert "a second later: 1777" in r.stdout, r.aggregated_output  # put back while the command runs
    assert "wrote" in r.stdout and (shared / "mine").exists(), r.aggregated_output  # the root stays usable
    assert os.stat(str(shared)).st_mode & 0o7777 == 0o1777
    assert "changed the mode of %s" % shared in r.aggregated_output and r.sandbox_denied
    # an ordinary root (the workspace, not shared) keeps what the command sets
    r = codex.run_command(["bash", "-c", "chmod 0750 ."], str(ws), cfg, codex.build_command_env(cfg), timeout_ms=30000)
    assert r.exit_code == 0 and os.stat(str(ws)).st_mode & 0o7777 == 0o750 and "changed the mode" not in r.aggregated_output


def test_a_patchs_diffs_share_one_budget(tmp_path):
    # a patch over many crafted files: one deadline for all of them, not one each
    (tmp_path / "a.txt").write_text("a\nb\nc\nd\ne\n")
    changes = codex.plan_patch("*** Begin Patch\n*** Update File: a.txt\n@@\n a\n-b\n+x\n c\n-d\n+y\n*** End Patch\n",
                               tmp_path)
    assert changes[0].to_protocol()["update"]["unified_diff"] == "@@ -1,5 +1,5 @@\n a\n-b\n+x\n c\n-d\n+y\n e\n"
    spent = changes[0].to_protocol(deadline=0)["update"]["unified_diff"]  # past the budget: the coarse hunk
    assert spent == "@@ -1,5 +1,5 @@\n a\n-b\n-c\n-d\n+x\n+c\n+y\n e\n"
