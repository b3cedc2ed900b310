"""The REPL in a real terminal emulator (tmux), for checks of what the screen shows.

    with TmuxRepl(argv, env, cwd, size=(100, 30)) as t:
        t.wait_for("›")            # polls `tmux capture-pane` until the text is on the screen
        t.type("hello"); t.keys("Enter")
        t.screen()                 # the visible screen as text (trailing spaces stripped)

pexpect (tests/support/repl_pty.py) sees the byte stream; this sees the result of it, which
is what matters for text that is redrawn in place (the live line of a streamed answer).
"""
import os
import re
import shlex
import shutil
import subprocess
import time
import uuid

import pytest

from support.qa_need import need_installed


def tmux_path():
    """tmux (from .ci/apt-repl.txt): required under CI=true, else skip."""
    return need_installed(shutil.which("tmux") or "/usr/bin/tmux", "tmux is needed for screen checks (.ci/apt-repl.txt)")


class TmuxRepl(object):
    """One program running in a detached tmux session of a fixed size."""

    def __init__(self, argv, env, cwd, size=(100, 30)):
        self.tmux = tmux_path()
        self.sock = "codex-test-%s" % uuid.uuid4().hex[:12]
        full = dict(os.environ)
        full.pop("NO_COLOR", None)
        full.pop("TMUX", None)
        full.update({"TERM": "xterm-256color"})
        full.update(env)
        self.env = full
        cols, rows = size
        # tmux sets TERM for the program it runs; the test's TERM (e.g. dumb) goes in explicitly
        script = "exec env TERM=%s %s" % (shlex.quote(full["TERM"]), " ".join(shlex.quote(str(a)) for a in argv))
        self._tmux("-f", "/dev/null", "new-session", "-d", "-x", str(cols), "-y", str(rows), "-c", str(cwd), script)
        self._tmux("set-option", "-g", "remain-on-exit", "on")

    def _tmux(self, *args):
        return subprocess.run([self.tmux, "-L", self.sock] + list(args), env=self.env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, timeout=20)

    def screen(self, escapes=False):
        """The visible screen, one string, trailing spaces stripped from each line."""
        out = self._tmux("capture-pane", "-p", *(["-e"] if escapes else [])).stdout
        return "\n".join(line.rstrip() for line in out.split("\n")).rstrip("\n")

    def wait_for(self, pattern, timeout=20.0, regex=False):
        """Poll the screen until `pattern` shows; return the screen (fails with it otherwise)."""
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if (re.search(pattern, screen) if regex else pattern in screen):
                return screen
            time.sleep(0.05)
        pytest.fail("not on the screen after %.0fs: %r\n--- screen ---\n%s" % (timeout, pattern, screen))

    def wait_composer(self, prompt=u"\u203a", timeout=20.0):
        """Poll until the composer is back and empty: the cursor stands right after its prompt
        (`› `) and nothing follows it; returns the screen (fails with it otherwise)."""
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            pos = self._tmux("display-message", "-p", "#{cursor_x} #{cursor_y}").stdout.split()
            screen = self.screen()
            lines = screen.split("\n")
            if len(pos) == 2 and int(pos[1]) < len(lines) and lines[int(pos[1])] == prompt \
                    and int(pos[0]) == len(prompt) + 1:
                return screen
            time.sleep(0.05)
        pytest.fail("the composer is not back after %.0fs\n--- screen ---\n%s" % (timeout, screen))

    def type(self, text):
        self._tmux("send-keys", "-l", text)

    def keys(self, *names):
        self._tmux("send-keys", *names)

    def close(self):
        self._tmux("kill-server")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
