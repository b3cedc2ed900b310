"""§18 what the REPL's screen shows, in a real terminal emulator (tmux): streamed answers,
compact markdown, interruptions.  The real agent talks to the scripted model server."""
import os
import re
import subprocess
import sys
import time

import pytest

from support.agent_env import MOCK_KEY_ENV, mock_cli_args
from support.model_server import Turn
from support.repl_screen import TmuxRepl

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CODEX = os.path.join(REPO, "codex.py")

pytestmark = pytest.mark.timeout(120)

PARAGRAPH = ("Alpha bravo charlie delta echo foxtrot golf hotel india juliett kilo lima mike november "
             "oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu.")


@pytest.fixture
def work(tmp_path):
    root = tmp_path / "work"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    return root


def tmux_repl(codex_home, server, work, *args, env=None, size=(80, 30)):
    argv = [sys.executable, CODEX, "-C", str(work), "-m", "gpt-5", "-s", "danger-full-access", "-a", "never"]
    argv += mock_cli_args(server) + list(args)
    full = {"CODEX_HOME": str(codex_home), MOCK_KEY_ENV: "test-key"}
    full.update(env or {})
    t = TmuxRepl(argv, full, work, size=size)
    t.wait_for(u"\u203a")
    return t


def words(text, per=2):
    w = text.split(" ")
    return [" ".join(w[i:i + per]) + (" " if i + per < len(w) else "") for i in range(0, len(w), per)]


def test_a_paragraph_shows_before_it_ends(codex_home, server, work):
    # one delta (two words) every 200 ms: the paragraph takes ~3 s to arrive
    server.enqueue(Turn().text(PARAGRAPH + "\n\nNext.", chunks=words(PARAGRAPH) + ["\n\nNext."]).delay(0.2))
    with tmux_repl(codex_home, server, work) as t:
        t.type("go")
        t.keys("Enter")
        screen = t.wait_for("charlie delta", timeout=10)
        assert "zulu" not in screen, "the check must come before the paragraph ends"
        assert "Working" in screen  # the status line is still there, below the text
        t0 = time.monotonic()
        screen = t.wait_for("Alpha bravo charlie delta echo foxtrot golf hotel india juliett kilo lima mike", timeout=10)
        assert "zulu" not in screen
        screen = t.wait_for("Next.", timeout=15)
        assert time.monotonic() - t0 > 0.4
        # the finished paragraph is word-wrapped at the terminal width, each line once
        lines = [l for l in screen.split("\n") if l.strip()]
        para = [l for l in lines if any(w in l for w in ("Alpha", "oscar", "zulu"))]
        assert " ".join(" ".join(para).split()) .startswith("Alpha bravo") and para[-1].endswith("zulu.")
        assert all(len(l) < 80 for l in para)
        assert screen.count("Alpha") == 1


def test_an_interrupted_answer_keeps_what_arrived_above_the_notice(codex_home, server, work):
    server.enqueue(Turn().text(PARAGRAPH, chunks=words(PARAGRAPH)).delay(0.3), Turn().text("fine"))
    with tmux_repl(codex_home, server, work) as t:
        t.type("go")
        t.keys("Enter")
        t.wait_for("delta echo", timeout=10)
        t.keys("Escape")
        screen = t.wait_for(u"interrupted \u2014", timeout=10)
        assert "zulu" not in screen
        lines = screen.split("\n")
        notice = next(i for i, l in enumerate(lines) if u"interrupted \u2014" in l)
        text_at = next(i for i, l in enumerate(lines) if "Alpha bravo charlie delta echo" in l)
        assert text_at < notice
        assert not any("Alpha" in l for l in lines[notice:])


def test_reasoning_summary_streams_too(codex_home, server, work):
    summary = "Looking at the layout of the repository and the failing test before changing anything at all."
    server.enqueue(Turn().reasoning(summary).text("done"))
    with tmux_repl(codex_home, server, work) as t:
        t.type("think")
        t.keys("Enter")
        screen = t.wait_for("done", timeout=15)
        assert "thinking" in screen and "Looking at the layout" in screen
        assert screen.count("Looking at the layout") == 1  # streamed, not printed again at the end


MIXED = u"""# Summary

The fix touches **two files** and keeps `parse()` unchanged; see \u3010F:a.txt\u2020L1-L2\u3011.

## Steps
1. Read the config
2. Patch the parser
   - keep the old API

| file | lines |
|---|---:|
| a.txt | 12 |
| src/parser.py | 240 |

```python
def parse(text):
    return text.split()
```

Done.
"""


@pytest.mark.parametrize("term", ["xterm-256color", "dumb"])
def test_mixed_markdown_is_compact(codex_home, server, work, term):
    server.enqueue(Turn().text(MIXED, chunk_size=7).usage(10, 5))
    with tmux_repl(codex_home, server, work, env={"TERM": term}, size=(100, 40)) as t:
        t.type("show me")
        t.keys("Enter")
        screen = t.wait_for("tokens:", timeout=15)
    body = screen[screen.index("show me"):screen.index("tokens:")].split("\n")[1:]
    body = [l for l in body]
    text = "\n".join(body)
    heading = "# Summary" if term == "dumb" else "Summary"
    assert body[1] == heading and not body[1].startswith(" ")  # left-aligned
    assert "see a.txt:1-2." in text  # the range kept, no stray space before the period
    assert "\n\n\n" not in text  # at most one blank line between blocks
    assert "1. Read the config\n2. Patch the parser\n" in text  # tight
    assert u"a.txt         \u2502    12\nsrc/parser.py \u2502   240" in text  # aligned, in place
    assert "| a.txt |" not in text
    assert "```python\ndef parse(text):\n    return text.split()\n```" in text  # set off by fences


def shell_call(script, **extra):
    return Turn().function_call("shell", dict({"command": ["bash", "-lc", script]}, **extra), call_id="c1")


def test_an_interrupted_command_keeps_its_cell_with_partial_output(codex_home, server, work):
    server.enqueue(shell_call("echo out-$((6*7))-put; sleep 30"), Turn().text("unused"))
    with tmux_repl(codex_home, server, work) as t:
        t.type("run it")
        t.keys("Enter")
        t.wait_for("out-42-put", timeout=15)  # in the status line while it runs
        t.keys("Escape")
        screen = t.wait_for(u"interrupted \u2014", timeout=15)
    lines = screen.split("\n")
    cell = next(i for i, l in enumerate(lines) if u"\u2717 echo out-$((6*7))-put; sleep 30" in l)
    assert lines[cell].endswith(u"\u00b7 interrupted")
    assert "out-42-put" in lines[cell + 1]
    assert cell < next(i for i, l in enumerate(lines) if u"interrupted \u2014" in l)


def test_a_timeout_says_so(codex_home, server, work):
    server.enqueue(shell_call("echo going; sleep 20", timeout_ms=1000), Turn().text("it timed out"))
    with tmux_repl(codex_home, server, work) as t:
        t.type("run it")
        t.keys("Enter")
        screen = t.wait_for("it timed out", timeout=20)
    assert re.search(u"\u2717 echo going; sleep 20 \u00b7 [0-9.]+s \u00b7 timed out after 1 s", screen), screen


def test_on_failure_shows_the_failure_before_asking(codex_home, server, work):
    server.enqueue(shell_call("echo trying; echo x > /usr/codex-denied-$$.txt"), Turn().text("ok then"))
    with tmux_repl(codex_home, server, work, "-a", "on-failure", "-s", "workspace-write", size=(100, 40)) as t:
        t.type("write there")
        t.keys("Enter")
        screen = t.wait_for("Allow command?", timeout=20)
        lines = screen.split("\n")
        cell = next(i for i, l in enumerate(lines) if u"\u2717 echo trying" in l)
        assert "failed in the sandbox" in lines[cell]
        ask = next(i for i, l in enumerate(lines) if "Allow command?" in l)
        assert cell < ask and "trying" in "\n".join(lines[cell + 1:ask])
        assert "retry without sandbox" in screen
        t.type("n")
        t.wait_for("ok then", timeout=15)
