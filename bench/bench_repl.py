#!/usr/bin/env python3
"""Benchmarks for the interactive REPL (§15b history, §18 composer and `@` search).

    .venv/bin/python bench/bench_repl.py [--history-gb 1.0] [--files 100000] [--runs 5]

Measures, printing one line per figure:
  1. time to first prompt: `python codex.py` in a pseudo-terminal until the composer is
     drawn, against `python -c pass` and against the same with a huge history.jsonl;
  2. Up-arrow latency with a history.jsonl of --history-gb (generated in a temp dir and
     deleted afterwards): the snapshot at start, then each Up (newest first, 1000 presses),
     plus one Up end to end through the pty;
  3. Ctrl-R over that history: one search for a word only the oldest entries have (time-boxed
     per keypress), and one for a recent entry;
  4. rendering a streamed answer (MarkdownStream): 100 KB of mixed markdown in 20-character
     deltas, total and per delta, against 10 KB (linear cost);
  5. `@` search over a --files tree: indexing, then per-keystroke latency of a typed query.
Everything happens under a temporary directory; nothing is left behind.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
import codex  # noqa: E402

PROMPT = u"\u203a "


def _ms(seconds):
    return "%.1f ms" % (seconds * 1000)


def _spawn_codex(home, cwd, program=None, path=None):
    import pexpect

    env = dict(os.environ, CODEX_HOME=home, TERM="xterm-256color", OPENAI_API_KEY="bench", PYTHONPATH=REPO)
    if path:
        env["PATH"] = path
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # measure what users get: byte code cached after the first run
    if program == "-m":
        argv = [sys.executable, "-m", "codex"]  # cached byte code, like an installed codex
    else:
        argv = [program] if program else [sys.executable, os.path.join(REPO, "codex.py")]
    child = pexpect.spawn(argv[0], argv[1:], env=env, cwd=cwd, encoding="utf-8", timeout=30, dimensions=(40, 120))
    child.delaybeforesend = None  # pexpect otherwise sleeps 50 ms before every send
    return child


def _expect(child, pattern):
    """expect() that answers cursor position requests like a terminal does."""
    while True:
        i = child.expect([pattern, "\x1b\\[6n"])
        if i == 0:
            return
        child.send("\x1b[1;1R")


def time_to_first_prompt(home, cwd, runs, program=None, path=None):
    """Median seconds from spawn to the composer being drawn."""
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        child = _spawn_codex(home, cwd, program, path)
        _expect(child, PROMPT)
        samples.append(time.perf_counter() - t0)
        child.sendcontrol("d")
        child.expect(__import__("pexpect").EOF)
        child.close()
    return statistics.median(samples)


def bare_python(runs, argv=None):
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(argv or [sys.executable, "-c", "pass"], check=True)
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def make_history(home, gigabytes):
    """Write a history.jsonl of about `gigabytes` GB; return the number of lines."""
    path = os.path.join(home, "history.jsonl")
    target = int(gigabytes * (1 << 30))
    filler = "x" * 150
    lines = 0
    block = []
    size = 0
    with open(path, "wb") as fh:
        while size < target:
            block.clear()
            for _ in range(10000):
                rec = '{"session_id":"bench-session","ts":1720000000,"text":"entry %09d %s"}\n' % (lines, filler)
                block.append(rec)
                lines += 1
            data = "".join(block).encode()
            fh.write(data)
            size += len(data)
    os.chmod(path, 0o600)
    return lines


def up_arrow(home, lines, cwd):
    # In process: what one Up keypress costs (ComposerHistory.older -> HistorySnapshot).
    t0 = time.perf_counter()
    snap = codex.HistorySnapshot(home)
    t_snap = time.perf_counter() - t0
    hist = codex.ComposerHistory(snap)
    presses = []
    for i in range(1000):
        t1 = time.perf_counter()
        text = hist.older()
        presses.append(time.perf_counter() - t1)
        assert text.startswith("entry %09d" % (lines - 1 - i)), text
    print("history: snapshot at session start (%d lines, %.2f GB): %s" % (lines, os.path.getsize(os.path.join(home, "history.jsonl")) / 2 ** 30, _ms(t_snap)))
    print("history: Up keypress, in process: first %s, median %s, max %s over 1000 presses"
          % (_ms(presses[0]), _ms(statistics.median(presses)), _ms(max(presses))))
    # End to end: spawn codex, press Up, see the newest entry drawn.
    import pexpect

    child = _spawn_codex(home, cwd)
    _expect(child, PROMPT)
    time.sleep(0.3)
    t2 = time.perf_counter()
    child.send("\x1b[A")
    _expect(child, "entry %09d" % (lines - 1))
    t_e2e = time.perf_counter() - t2
    child.sendcontrol("c")
    child.sendcontrol("d")
    child.expect(pexpect.EOF)
    child.close()
    print("history: Up keypress end to end through the pty (newest entry drawn): %s" % _ms(t_e2e))


def reverse_search(home, lines):
    """Ctrl-R: a recent match; one keypress's worth (0.15 s) of a search with no match; the
    whole file with no match."""
    hist = codex.ComposerHistory(codex.HistorySnapshot(home))
    t0 = time.perf_counter()
    step, text = hist.search("entry %09d" % (lines - 50))
    t_recent = time.perf_counter() - t0
    assert text and step == 49, (step, text)
    step, where = hist.search("no such entry")
    assert step == "more", step
    t1 = time.perf_counter()
    step, where = hist.search("no such entry", budget=600)
    t_all = time.perf_counter() - t1
    assert step is None, step
    print("history: Ctrl-R, match 50 entries back: %s; with no match one keypress (0.15 s budget) reads %d of "
          "%d entries; the whole file: %.2f s" % (_ms(t_recent), hist.search("no such entry")[1], lines, t_all))


class _NullSink(object):
    can_live = can_rewrite = True

    def __init__(self):
        self.lines = 0

    def commit(self, lines):
        self.lines += len(lines)

    def live(self, text):
        pass

    def rewrite(self, count, lines):
        return True

    def code_line(self, line, lexer):
        return line


def stream_render():
    """MarkdownStream over 10 KB and 100 KB answers in 20-character deltas."""
    unit = ("## Step\n\nA paragraph with **bold**, `code` and a [link](https://example.com) that goes on "
            "for a while so that it wraps across the terminal width more than once.\n\n- one item\n- two "
            "items\n\n| a | b |\n|---|--:|\n| x | 1 |\n\n```py\nprint('hi')\n```\n\n")
    results = []
    for kb in (1, 10, 100):  # the first one warms up (imports, regex compilation)
        text = (unit * (kb * 1024 // len(unit) + 1))[: kb * 1024]
        sink = _NullSink()
        stream = codex.MarkdownStream(sink, width=100, styled=True)
        t0 = time.perf_counter()
        for i in range(0, len(text), 20):
            stream.push(text[i:i + 20])
        stream.finish()
        results.append((kb, time.perf_counter() - t0, len(text) // 20))
    for kb, took, deltas in results[1:]:
        print("render: streamed answer of %d KB in %d deltas: %s total, %.1f us per delta"
              % (kb, deltas, _ms(took), took / deltas * 1e6))


def file_search(root, nfiles):
    per_dir = 1000
    for d in range(max(1, nfiles // per_dir)):
        sub = os.path.join(root, "pkg%03d" % d, "module")
        os.makedirs(sub)
        for f in range(per_dir):
            open(os.path.join(sub, "file_%04d_%s.py" % (f, "abcdefghij"[f % 10])), "w").close()
    for label, setup in (("walk (no git)", None), ("git ls-files", "git")):
        if setup == "git":
            subprocess.run(["git", "init", "-q", root], check=True)
            subprocess.run(["git", "-C", root, "add", "-A"], check=True)
        fs = codex.FileSearch(root)
        t0 = time.perf_counter()
        fs.wait()
        t_index = time.perf_counter() - t0
        query = "pkg042 file_0999"
        keys = []
        for i in range(1, len(query) + 1):
            t1 = time.perf_counter()
            res = fs.search(query[:i])
            keys.append(time.perf_counter() - t1)
        assert res and res[0][0] == "pkg042/module/file_0999_j.py", res
        print("@ search, %d files, %s: index %s; per keystroke typing %r: median %s, max %s"
              % (fs.file_count, label, _ms(t_index), query, _ms(statistics.median(keys)), _ms(max(keys))))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--history-gb", type=float, default=1.0)
    ap.add_argument("--files", type=int, default=100000)
    ap.add_argument("--runs", type=int, default=5)
    opts = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="codex-bench-")
    try:
        home = os.path.join(tmp, "home")
        work = os.path.join(tmp, "work")
        os.makedirs(home)
        os.makedirs(work)
        base = bare_python(opts.runs)
        first = time_to_first_prompt(home, work, opts.runs)
        print("startup: python -c pass %s; python codex.py to first prompt %s (median of %d)" % (_ms(base), _ms(first), opts.runs))
        time_to_first_prompt(home, work, 1, "-m")  # write the byte code cache
        print("startup: python -m codex (cached byte code) to first prompt %s" % _ms(time_to_first_prompt(home, work, opts.runs, "-m")))
        dist = os.path.join(REPO, "dist", "codex")
        if os.path.exists(dist):
            time_to_first_prompt(home, work, 1, dist)  # unpack the zipapp once
            print("startup: dist/codex to first prompt %s (load %.1f)"
                  % (_ms(time_to_first_prompt(home, work, opts.runs, dist)), os.getloadavg()[0]))
            # dist/codex runs `python3 -S` from PATH: what that launcher costs by itself (a
            # pyenv shim, for one, is a shell script that runs pyenv before Python starts)
            here = os.path.dirname(sys.executable)
            print("startup: dist/codex to first prompt with python3 = %s first on PATH %s" % (
                sys.executable, _ms(time_to_first_prompt(home, work, opts.runs, dist,
                                                         here + os.pathsep + os.environ.get("PATH", "")))))
            found = shutil.which("python3") or "python3"
            print("startup: %s -S -c pass %s (this python: %s)" % (
                found, _ms(bare_python(opts.runs, [found, "-S", "-c", "pass"])),
                _ms(bare_python(opts.runs, [sys.executable, "-S", "-c", "pass"]))))
        t0 = time.perf_counter()
        lines = make_history(home, opts.history_gb)
        os.sync()  # let writeback of the new file finish so it does not skew the timings
        print("history: generated %.2f GB in %.1f s" % (os.path.getsize(os.path.join(home, "history.jsonl")) / 2 ** 30, time.perf_counter() - t0))
        first_big = time_to_first_prompt(home, work, opts.runs)
        print("startup: codex to first prompt with that history.jsonl %s" % _ms(first_big))
        up_arrow(home, lines, work)
        reverse_search(home, lines)
        os.unlink(os.path.join(home, "history.jsonl"))
        stream_render()
        file_search(os.path.join(tmp, "tree"), opts.files)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
