"""§18 rendering: citations, streamed markdown, cells, terminal capabilities."""
import io
import time
from pathlib import Path

import pytest

import codex


class _Cfg(object):
    file_opener = "vscode"
    cwd = Path("/home/user/project")
    model = "m"
    model_reasoning_effort = None
    approval_policy = "on-request"
    sandbox_mode = "read-only"

    class provider(object):
        id = "mock"


def test_citation_rewrite_keeps_the_range_and_adds_no_space():
    out = codex.rewrite_citations(u"see \u3010F:/src/main.rs\u2020L42-L50\u3011.", "vscode", "/workspace")
    assert out == "see [/src/main.rs:42-50](vscode://file/src/main.rs:42)."
    out = codex.rewrite_citations(u"\u3010F:lib/mod.rs\u2020L5\u3011", "windsurf", "/home/user/project")
    assert out == "[lib/mod.rs:5](windsurf://file/home/user/project/lib/mod.rs:5)"


def test_citation_rewrite_schemes_cleaning_and_none():
    raw = u"a \u3010F:./x/../y z.py\u2020L7-L?\u3011 b"
    assert codex.rewrite_citations(raw, "none", "/w") == raw
    assert codex.rewrite_citations(raw, "cursor", "/w") == "a [./x/../y z.py:7](cursor://file/w/y%20z.py:7) b"
    assert codex.rewrite_citations(raw, "vscode-insiders", "/w").count("vscode-insiders://file/w/y%20z.py:7") == 1
    assert codex.rewrite_citations(raw, "vscode", "/w", links=False) == "a ./x/../y z.py:7 b"
    assert codex.rewrite_citations(u"\u3010F:a.txt\u2020L1-L2\u3011", "vscode", "/w", links=False) == "a.txt:1-2"


def _renderer(env=None, tty=False):
    out = io.StringIO()
    if tty:
        out.isatty = lambda: True
    r = codex.ReplRenderer(_Cfg(), out=out, environ=dict(env or {"TERM": "xterm"}))
    return r, out


def test_plain_output_when_not_a_terminal():
    r, out = _renderer()
    r.answer(u"Some **bold** and \u3010F:lib/a.py\u2020L3-L4\u3011, here")
    text = out.getvalue()
    assert "\x1b" not in text
    assert "Some bold and lib/a.py:3-4, here" in text


def test_hyperlinks_as_osc8_when_the_terminal_supports_them():
    r, out = _renderer({"TERM": "xterm-kitty"}, tty=True)
    r.answer(u"open \u3010F:lib/a.py\u2020L3\u3011")
    text = out.getvalue()
    assert "\x1b]8;" in text and "vscode://file/home/user/project/lib/a.py:3" in text


def test_no_color_and_dumb_terminal():
    r, out = _renderer({"TERM": "xterm-256color", "NO_COLOR": "1"}, tty=True)
    r.exec_cell(["false"], 1, 0.5, "boom")
    assert "\x1b[3" not in out.getvalue() and "\x1b[9" not in out.getvalue()  # no colours
    r, out = _renderer({"TERM": "dumb"}, tty=True)
    r.exec_cell(["false"], 1, 0.5, "boom")
    r.start_status("Working")
    r.stop_status()
    assert "\x1b" not in out.getvalue()
    assert codex._terminal_caps(io.StringIO(), {"TERM": "dumb"})["color"] is False


def test_exec_cell_truncates_and_strips_bash_wrapper():
    r, out = _renderer()
    r.exec_cell(["bash", "-lc", "seq 1 100"], 0, 1.234, "\n".join(str(i) for i in range(1, 101)))
    text = out.getvalue()
    assert "\u2713 seq 1 100 \u00b7 1.2s" in text
    assert "1\n" in text and "100" in text and "\u2026 +94 lines" in text
    assert "50\n" not in text
    r.exec_cell(["ls", "a b"], 2, 0.1, "no such file")
    assert "\u2717 ls 'a b' \u00b7 0.1s \u00b7 exit 2" in out.getvalue()


def test_patch_cell_counts_and_shapes():
    r, out = _renderer()
    r.patch_cell({
        "new.txt": {"add": {"content": "a\nb\n"}},
        "old.txt": {"type": "delete", "content": "x\n"},
        "mod.py": {"update": {"unified_diff": "@@ -1 +1 @@\n-old\n+new\n", "move_path": None}},
    }, "proposed patch")
    text = out.getvalue()
    assert "new.txt (added +2 -0)" in text
    assert "old.txt (deleted +0 -1)" in text
    assert "mod.py (modified +1 -1)" in text and "-old" in text and "+new" in text


def test_token_usage_line():
    r, out = _renderer()
    r.tokens({"input_tokens": 1200, "cached_input_tokens": 200, "output_tokens": 40, "total_tokens": 1240},
             {"total_tokens": 5000})
    assert "tokens: 1,200 in (200 cached) \u00b7 40 out \u00b7 1,240 total (session 5,000)" in out.getvalue()


class _Sink(object):
    """A MarkdownStream sink that records what a terminal would show."""

    def __init__(self, terminal=False):
        self.can_live = self.can_rewrite = terminal
        self.lines, self.live_text, self.rewrites = [], None, []

    def commit(self, lines):
        self.lines += lines

    def live(self, text):
        self.live_text = text

    def rewrite(self, count, lines):
        self.rewrites.append((count, list(lines)))
        self.lines[-count:] = lines
        return True

    def code_line(self, line, lexer):
        return line


def _md(text, width=60, terminal=False, step=3, styled=False):
    sink = _Sink(terminal)
    s = codex.MarkdownStream(sink, width=width, styled=styled, file_opener="vscode", cwd="/w")
    for i in range(0, len(text), step):
        s.push(text[i:i + step])
    s.finish()
    return sink


MIXED = u"""# Summary

The fix touches **two files** and keeps `parse()` unchanged; see \u3010F:a.txt\u2020L1-L2\u3011.



## Steps
1. Read the config
2. Patch the parser
   - keep the old API
   - add a test

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


def test_compact_markdown_plain():
    lines = _md(MIXED, width=100).lines
    assert lines == [
        "# Summary",  # left-aligned; in plain text the marks say it is a heading
        "The fix touches two files and keeps `parse()` unchanged; see a.txt:1-2.",
        "",  # at most one blank line, whatever the source had
        "## Steps",
        "1. Read the config",  # tight list, nested items under the text of their parent
        "2. Patch the parser",
        u"   \u25e6 keep the old API",
        u"   \u25e6 add a test",
        "",
        u"file          \u2502 lines",  # aligned, numbers right-aligned as the delimiter row says
        u"\u2500" * 14 + u"\u253c" + u"\u2500" * 6,
        u"a.txt         \u2502    12",
        u"src/parser.py \u2502   240",
        "",
        "```python",  # code is set off by its fences even without colour
        "def parse(text):",
        "    return text.split()",
        "```",
        "",
        "Done.",
    ]
    assert not any(l != l.rstrip() for l in lines), "no trailing spaces"


def test_compact_markdown_styled_heading_is_bold_and_left_aligned():
    lines = _md(MIXED, width=100, styled=True).lines
    assert lines[0] == "\x1b[1mSummary\x1b[0m"
    assert "\x1b[1mtwo files\x1b[0m" in lines[1] and "\x1b[36mparse()\x1b[0m" in lines[1]


def test_a_paragraph_shows_word_by_word_and_wraps_as_it_streams():
    sink = _Sink(terminal=True)
    s = codex.MarkdownStream(sink, width=31, styled=False)
    s.push("one two thr")
    assert sink.lines == [] and sink.live_text == "one two thr"  # the unfinished word shows live
    s.push("ee four five six seven eight nine")
    assert sink.lines == ["one two three four five six"]  # a full line is final at once
    assert sink.live_text == "seven eight nine"
    s.push(" ten\n")
    assert sink.lines[-1] == "seven eight nine ten" and sink.live_text is None
    s.push("**bo")
    s.finish()
    assert sink.lines[-1] == "bo"  # an interrupted answer keeps what arrived


def test_a_table_is_aligned_in_place_when_it_ends():
    sink = _Sink(terminal=True)
    s = codex.MarkdownStream(sink, width=60, styled=False)
    s.push("| a | bb |\n|---|---|\n| ccc | d |\n")
    assert sink.lines == ["| a | bb |", "|---|---|", "| ccc | d |"]  # shown raw as rows arrive
    s.push("\nafter\n")
    s.finish()
    assert sink.rewrites and sink.rewrites[0][0] == 3
    assert sink.lines[:3] == [u"a   \u2502 bb", u"\u2500" * 4 + u"\u253c" + u"\u2500" * 3, u"ccc \u2502 d"]
    assert sink.lines[-1] == "after"
    held = _md("| a | b |\n|---|---|\n| 1 | 2 |\n", terminal=False)
    assert held.rewrites == [] and len(held.lines) == 3  # no terminal: rows wait for the end


def test_markdown_stream_cost_is_linear():
    def run(n):
        sink = _Sink(terminal=True)
        s = codex.MarkdownStream(sink, width=80, styled=True)
        t0 = time.perf_counter()
        for i in range(n):
            s.push("word%d **b** " % i)
            if i % 50 == 49:
                s.push("\n\n")
        s.finish()
        return time.perf_counter() - t0, len(sink.lines)

    small_t, small_lines = run(5000)
    big_t, big_lines = run(50000)
    assert big_lines > 9 * small_lines
    assert big_t < 25 * max(small_t, 1e-3)  # 10x the input must not cost ~100x


def test_one_long_line_without_newlines_is_linear_too():
    sink = _Sink(terminal=True)
    s = codex.MarkdownStream(sink, width=80, styled=False)
    t0 = time.perf_counter()
    for i in range(40000):
        s.push("w%d " % i)
    s.finish()
    assert time.perf_counter() - t0 < 10
    assert " ".join(sink.lines).split() == ["w%d" % i for i in range(40000)]


def test_display_command_and_durations():
    assert codex._display_command(["bash", "-lc", "echo hi && ls"]) == "echo hi && ls"
    assert codex._display_command(["git", "commit", "-m", "a b"]) == "git commit -m 'a b'"
    assert codex._seconds({"secs": 1, "nanos": 500000000}) == 1.5
    assert codex._seconds("250ms") == 0.25
    assert codex.format_elapsed(75, spaced=True) == "1m 15s"


def test_mcp_cell_ok_and_error():
    r, out = _renderer()
    r.mcp_cell({"server": "docs", "tool": "search", "arguments": {"q": "x"}}, 0.25,
               {"Ok": {"content": [{"type": "text", "text": "found 3 pages"}], "isError": False}})
    r.mcp_cell({"server": "docs", "tool": "fetch", "arguments": {}}, 1.0, {"Err": "connection closed"})
    text = out.getvalue()
    assert '\u2713 tool docs.search({"q": "x"}) \u00b7 0.2s' in text and "found 3 pages" in text
    assert "\u2717 tool docs.fetch() \u00b7 1.0s" in text and "connection closed" in text


def test_mcp_cell_shows_images_by_size_and_kind():
    import base64
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 640, 480, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(b"\x00" * (640 * 3 + 1) * 480)) + chunk(b"IEND", b""))
    r, out = _renderer()
    r.mcp_cell({"server": "shots", "tool": "screen", "arguments": {}}, 0.5,
               {"Ok": {"content": [{"type": "image", "data": base64.b64encode(png).decode(), "mimeType": "image/png"},
                                   {"type": "text", "text": "the screen"}]}})
    text = out.getvalue()
    assert "[image: 640x480 png]" in text and "the screen" in text and "iVBOR" not in text


def test_plan_and_reasoning_cells():
    r, out = _renderer()
    r.plan("two steps", [{"step": "read code", "status": "completed"}, {"step": "fix bug", "status": "in_progress"},
                         {"step": "test", "status": "pending"}])
    r.reasoning("**Scanning** the repo")
    text = out.getvalue()
    assert "\u2714 read code" in text and "\u25cf fix bug" in text and "\u25a1 test" in text
    assert "thinking\nScanning the repo" in text


def test_status_line_redraws_only_itself():
    import threading

    r, out = _renderer({"TERM": "xterm"}, tty=True)
    r.start_status("Working")
    time.sleep(0.35)
    r.note("a finished cell")
    time.sleep(0.15)
    r.stop_status()
    text = out.getvalue()
    assert text.count("Working (") >= 3  # redrawn by the ticker
    # every redraw starts by returning to column 0 and clearing the line; no cursor-up moves
    assert "\x1b[A" not in text and "\x1b[1A" not in text
    assert "a finished cell" in text and text.endswith("\r\x1b[2K")
    assert not any(t.name == "codex-status" for t in threading.enumerate())


def test_code_lines_stream_before_the_fence_closes():
    r, out = _renderer({"TERM": "xterm-256color"}, tty=True)
    s = r.start_answer()
    s.push("Intro\n\n```python\ndef f(x):\n    return x")
    import re

    plain = lambda: re.sub(r"\x1b\[[0-9;]*[mAJK]", "", out.getvalue())
    assert "def" in plain() and "return x + 1" not in plain()
    s.push(" + 1\n")
    assert "return x + 1" in plain()
    s.push("```\n\nAfter **that**.")
    s.finish()
    text = plain()
    assert "```python\ndef f(x):\n" in text and "\r    return x + 1\n```\n" in text and "\rAfter that.\n" in text


def test_dumb_terminal_code_blocks_keep_their_fences():
    r, out = _renderer({"TERM": "dumb"}, tty=True)
    r.answer("Run:\n\n```sh\nmake test\n```\nok")
    assert out.getvalue() == "\nRun:\n\n```sh\nmake test\n```\n\nok\n"


def test_unknown_code_language_still_renders():
    r, out = _renderer()
    r.answer("```no-such-language-xyz\nsome code\n```\n")
    assert "some code" in out.getvalue()


def test_desktop_notifications_only_when_configured():
    r, out = _renderer({"TERM": "xterm"}, tty=True)
    r.cfg.tui = {}
    r.desktop_notification("agent-turn-complete", "done")
    assert "\x1b]9;" not in out.getvalue()
    r.cfg.tui = {"notifications": ["approval-requested"]}
    r.desktop_notification("agent-turn-complete", "done")
    r.desktop_notification("approval-requested", "run\x1b]evil\x07 rm")
    assert out.getvalue().count("\x1b]9;") == 1 and "\x1b]9;run ]evil  rm\x07" in out.getvalue()
    r.cfg.tui = {"notifications": True}
    r.desktop_notification("agent-turn-complete", "all done")
    assert "\x1b]9;all done\x07" in out.getvalue()


def test_commands_cannot_hide_part_of_themselves():
    """ESC sequences, CR, backspace and bidi overrides in a model-chosen argv are shown, not obeyed."""
    import codex

    shown = codex._display_command(["bash", "-lc", "echo safe\rrm -rf ~ \x1b[2K\x08"])
    assert "\r" not in shown and "\x1b" not in shown and "\x08" not in shown
    assert "\\x0d" in shown and "\\x1b" in shown and "rm -rf ~" in shown
    shown = codex._display_command(["cat", u"notes\u202etxt.exe"])
    assert u"\u202e" not in shown and "\\u202e" in shown
    assert codex._display_command(["bash", "-lc", "a\n\tb"]) == "a\n\tb"


def test_a_live_line_too_wide_is_cut_without_breaking_an_escape_sequence():
    r, out = _renderer({"TERM": "xterm-kitty"}, tty=True)
    r.caps["width"] = 20
    r._columns = lambda: 20
    link = "\x1b]8;;vscode://file/w/a.txt:1\x1b\\a.txt:1-2\x1b]8;;\x1b\\"
    r.live(link + " and more words here")
    text = out.getvalue()
    assert "a.txt:1-2 and more\u2026" in text and "\x1b]8;;vscode" not in text
    r.live(link)  # fits: the link stays
    assert out.getvalue().endswith(link)
