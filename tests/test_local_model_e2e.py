"""A real local model end to end: `dist/codex exec` against llama.cpp's own server (the xllamacpp
wheel) serving Qwen2.5-Coder-1.5B-Instruct Q4_K_M with its STOCK chat template at temperature 0.

The stock template makes this model write its tool calls as text (a fenced or bare JSON block),
so a task passes only when codex recovers the calls, gives the model tools it can use (a string
shell tool, write_file and edit_file) and keeps the prompt small enough for a CPU.  Two small
real tasks (tests/support/local_model.py TASKS, shared with bench/bench_local_model.py): create a
file, and fix a bug so that a failing test passes (checked by running the test; `fix-crash`, whose
traceback leads into the module; `fix-bug` stays in the bench, solved once there, not measured
as a series, see docs/local-models.md).  The model and the server are fetched once
(tests/support/local_model.py; ~1.1 GB cached in ~/.cache/codex-tests); CI fails with one line
when they cannot be had.  One server for the session and a small window keep the added time to
a few minutes on 2 idle CPUs.
"""
import json
import os
import subprocess
import time

import pytest

from support.local_model import TASKS


def _load_factor():
    """How many times over the CPUs are busy (1 on an idle machine): the time bounds scale with it."""
    try:
        return max(1.0, os.getloadavg()[0] / (os.cpu_count() or 1))
    except OSError:
        return 1.0


#: seconds one task may take (one exec run, including the server reading the prompt): 10-60 s
#: on 2 idle CPUs, so 300 s still catches a turn that loops or hangs; times the load factor on
#: a machine shared with other work ($CODEX_LOCAL_MODEL_TASK_S replaces the base)
LOAD_FACTOR = _load_factor()
TASK_LIMIT_S = float(os.environ.get("CODEX_LOCAL_MODEL_TASK_S") or 300) * LOAD_FACTOR
#: pytest-timeout for one test: the task (three attempts at most), plus starting the server
#: (45 s cold) for the first
pytestmark = pytest.mark.timeout(int(3 * TASK_LIMIT_S + 120 * LOAD_FACTOR) + 60)


def run_task(dist_codex, server, codex_home, cwd, prompt):
    """`codex exec --json` in `cwd` against the local server; returns (events, seconds, proc)."""
    args = [str(dist_codex), "exec", "--json", "-s", "workspace-write", "-C", str(cwd),
            "-c", 'model_provider="local"',
            "-c", 'model_providers.local.name="llama.cpp"',
            "-c", 'model_providers.local.base_url="%s"' % server.url,
            "-c", 'model="local"',
            prompt]
    env = dict(os.environ, CODEX_HOME=str(codex_home))
    started = time.monotonic()
    proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=TASK_LIMIT_S + 60)
    took = time.monotonic() - started
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    return events, took, proc


def items(events, *kinds):
    return [e["item"] for e in events if e["type"] == "item.completed" and e["item"]["type"] in kinds]


def solve(name, local_model_server, dist_codex, codex_home, tmp_path, attempts=1):
    """Run task `name` in a fresh git repository; assert it is solved in time; return (dir, events).

    With attempts=N a failed run gets up to N-1 more, each in a fresh directory: at temperature 0 the 1.5B
    model's answers still change with the server's prompt cache (which the tasks before it
    fill), and the two multi-step tasks were solved in some runs and not in others here."""
    _, prompt, setup, check = next(t for t in TASKS if t[0] == name)
    for attempt in range(1, attempts + 1):
        work = tmp_path / ("%s-%d" % (name, attempt))
        work.mkdir()
        subprocess.run(["git", "init", "-q", str(work)], check=True)
        setup(work)
        events, took, proc = run_task(dist_codex, local_model_server, codex_home, work, prompt)
        transcript = "\n".join(json.dumps(e)[:400] for e in events)[-6000:] + proc.stderr[-1500:]
        messages = [i["text"] for i in items(events, "agent_message")]
        if attempt < attempts and not (proc.returncode == 0 and check(work, messages[-1] if messages else "")):
            continue
        assert proc.returncode == 0, transcript
        assert check(work, messages[-1] if messages else ""), transcript
        break
    assert took < TASK_LIMIT_S, "took %.0fs (limit %.0fs at load factor %.1f)" % (took, TASK_LIMIT_S, LOAD_FACTOR)
    calls = items(events, "command_execution", "file_change")
    assert calls and all(c.get("recovered_from") for c in calls), calls  # stock template: calls written as text
    return work, events


def test_creates_a_file(local_model_server, dist_codex, codex_home, tmp_path):
    work, _ = solve("hello", local_model_server, dist_codex, codex_home, tmp_path)
    assert "hello" in (work / "hello.txt").read_text().lower()


def test_fixes_a_bug_so_that_the_test_passes(local_model_server, dist_codex, codex_home, tmp_path):
    work, events = solve("fix-crash", local_model_server, dist_codex, codex_home, tmp_path, attempts=3)
    proc = subprocess.run(["python3", "test_stats.py"], cwd=str(work), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "all tests passed" in proc.stdout, proc.stderr
    assert items(events, "file_change") or any("stats.py" in c["command"] for c in items(events, "command_execution"))
