#!/usr/bin/env python3
"""Finding 10 (low, DoS): the model's `timeout_ms` is not capped; `sleep 100000` with
timeout_ms=1e12 holds `codex exec` (a CI job) until killed.  Shown with a 15 s bound.

Run as: python3 docs/attack-pass/10-unbounded-timeout.py   (exit 1 = vulnerable)"""
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Turn, run_model  # noqa: E402

base = tempfile.mkdtemp(prefix="f10-")
ws, home = os.path.join(base, "ws"), os.path.join(base, "home")
os.makedirs(ws)
os.makedirs(home)
call = Turn().function_call("shell", {"command": ["sleep", "100000"], "timeout_ms": 10 ** 12}, call_id="c1")
try:
    run_model([call, Turn().text("done")], ws, home, timeout=15)
    print("not reproduced: codex exec ended")
    code = 0
except subprocess.TimeoutExpired:
    print("VULNERABLE: codex exec still running after 15 s (the command's timeout is the model's 1e12 ms)")
    code = 1
shutil.rmtree(base, ignore_errors=True)
sys.exit(code)
