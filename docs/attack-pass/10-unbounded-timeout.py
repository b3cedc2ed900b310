#!/usr/bin/env python3
"""Finding 10 (low, DoS): the model's `timeout_ms` is not capped; `sleep 100000` with
timeout_ms=1e12 holds `codex exec` (a CI job) until killed.  Shown with a 15 s bound.
Fixed: the model's timeout_ms is capped at max_command_timeout_ms (default 1 h; 3 s here).

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
# since the fix the cap is max_command_timeout_ms (default 1 h): set to 3 s here to see it in 15 s
try:
    proc, outs = run_model([call, Turn().text("done")], ws, home, timeout=15,
                           extra_args=["-c", "max_command_timeout_ms=3000"])
    print("not reproduced: codex exec ended; the model was told:", outs[0][:160] if outs else outs)
    code = 0
except subprocess.TimeoutExpired:
    print("VULNERABLE: codex exec still running after 15 s (the command's timeout is the model's 1e12 ms)")
    code = 1
shutil.rmtree(base, ignore_errors=True)
sys.exit(code)
