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
