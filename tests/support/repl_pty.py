"""Drive the interactive REPL in a real pseudo-terminal (pexpect) from tests.

    pty = ReplPty(argv, env, cwd, log_path)   # spawns; waits for the composer
    pty.submit("text"); pty.expect("answer"); pty.expect_prompt(); pty.quit()

prompt-toolkit asks the terminal for the cursor position (CPR); expect() answers like a
terminal would.  It also paints only the cells that changed, so text that replaces text
is matched with S("...") rather than as a plain substring.
"""
import os
import re
import time

import pexpect

PROMPT = u"\u203a "  #: the composer's prompt
CPR = "\x1b\\[6n"  #: a cursor position request
UP, DOWN, ESC = "\x1b[A", "\x1b[B", "\x1b"
#: bracketed paste turned on: codex's single-key reader (a picker, an approval, a running turn)
#: has the terminal, so keys sent from now on are read as keys
BRACKETED_PASTE_ON = "\x1b\\[\\?2004h"


def S(text):
    """A regex for `text` as prompt-toolkit paints it: unchanged cells are skipped with
    cursor moves (ESC [ C) and style changes may sit between characters."""
    sgr = r"(?:\x1b\[[0-9;]*m)*"
    return sgr.join("(?:%s|\\x1b\\[\\d*C)" % re.escape(c) for c in text)


class ReplPty(object):
    """One REPL process in a pty."""

    def __init__(self, program, args, env, cwd, log_path, wait_prompt=True, size=(40, 120)):
        full_env = dict(os.environ)
        full_env.pop("NO_COLOR", None)
        full_env.update({"TERM": "xterm-256color"})
        full_env.update(env)
        self.log_path = str(log_path)
        self.child = pexpect.spawn(program, list(args), env=full_env, encoding="utf-8", timeout=20,
                                   dimensions=size, cwd=str(cwd))
        self.child.logfile_read = open(self.log_path, "a")
        if wait_prompt:
            self.expect_prompt()

    def expect(self, pattern, timeout=-1):
        """child.expect() that also answers cursor position requests."""
        patterns = pattern if isinstance(pattern, list) else [pattern]
        while True:
            i = self.child.expect(patterns + [CPR], timeout=timeout)
            if i < len(patterns):
                return i
            self.child.send("\x1b[1;1R")

    def expect_prompt(self):
        self.expect(PROMPT)
        time.sleep(0.15)  # let prompt-toolkit finish drawing before keys arrive

    def send(self, text):
        self.child.send(text)

    def control(self, char):
        self.child.sendcontrol(char)

    def submit(self, text):
        self.child.send(text)
        time.sleep(0.1)
        self.child.send("\r")

    def log(self):
        self.child.logfile_read.flush()
        with open(self.log_path, encoding="utf-8", errors="replace") as fh:
            return fh.read()

    def quit(self):
        """Ctrl-D on the empty composer; returns the exit status."""
        self.child.sendcontrol("d")
        self.expect(pexpect.EOF)
        self.child.close()
        return self.child.exitstatus

    def wait_exit(self):
        self.expect(pexpect.EOF)
        self.child.close()
        return self.child.exitstatus
