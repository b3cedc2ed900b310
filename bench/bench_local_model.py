#!/usr/bin/env python3
"""codex with a real local model: small coding tasks, solved or not, seconds per task.

    .venv/bin/python bench/bench_local_model.py [--modes stock,native] [--tasks a,b] [--n-ctx 4096]

Serves Qwen2.5-Coder-1.5B-Instruct Q4_K_M (fetched once into ~/.cache/codex-tests, see
tests/support/local_model.py) with llama.cpp's own server (the xllamacpp wheel from
requirements/test.lock) on 127.0.0.1 at temperature 0, and runs `codex exec` on each task in
a fresh git repository, in two modes:

    stock    the model's own chat template: the model writes tool calls as text (a fenced
             JSON block) and codex recovers them
    native   the same template with its tool-call lines using a ```json block instead of
             <tool_call> tags, which llama.cpp parses into real `tool_calls` (derived from the
             stock template the server reports on /props)

The tasks are TASKS in tests/support/local_model.py (shared with tests/test_local_model_e2e.py).
A task is solved when its check passes (files, program output, the final answer).  Prints a
Markdown table (figures for the README) and, with --json, the raw results.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from support.local_model import TASKS, LlamaServer, ensure_model  # noqa: E402


def native_template(stock):
    """The stock Qwen2.5 template with its tool-call lines using a ```json block, not <tool_call> tags."""
    out = stock.replace(
        'within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{{\\"name\\": <function-name>, \\"arguments\\": '
        '<args-json-object>}}\\n</tool_call>',
        'in a ```json code block:\\n```json\\n{{\\"name\\": <function-name>, \\"arguments\\": <args-json-object>}}\\n```')
    out = out.replace("'\\n<tool_call>\\n{\"name\": \"'", "'\\n```json\\n{\"name\": \"'")
    out = out.replace("'}\\n</tool_call>'", "'}\\n```'")
    if out == stock or "<tool_call>" in out:
        raise SystemExit("bench: the served chat template is not the Qwen2.5 one this bench knows how to change")
    return out


def codex_command():
    dist = ROOT / "dist" / "codex"
    if os.environ.get("CODEX_DIST"):
        return [os.environ["CODEX_DIST"]]
    if dist.is_file():
        return [str(dist)]
    return [sys.executable, str(ROOT / "codex.py")]


def run_task(server, home, task, limit):
    name, prompt, setup, check = task
    work = Path(tempfile.mkdtemp(prefix="bench-%s-" % name))
    subprocess.run(["git", "init", "-q", str(work)], check=True)
    setup(work)
    cmd = codex_command() + ["exec", "--json", "-s", "workspace-write", "-C", str(work),
                             "-c", 'model_provider="local"', "-c", 'model_providers.local.base_url="%s"' % server.url,
                             "-c", 'model="local"', prompt]
    started = time.monotonic()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=limit, env=dict(os.environ, CODEX_HOME=str(home)))
        stdout, code = proc.stdout, proc.returncode
    except subprocess.TimeoutExpired as exc:
        stdout, code = (exc.stdout or b"").decode("utf-8", "replace") if isinstance(exc.stdout, bytes) else (exc.stdout or ""), None
    took = time.monotonic() - started
    events = [json.loads(l) for l in stdout.splitlines() if l.startswith("{")]
    done = [e["item"] for e in events if e["type"] == "item.completed"]
    messages = [i["text"] for i in done if i["type"] == "agent_message"]
    calls = [i for i in done if i["type"] in ("command_execution", "file_change")]
    usage = next((e.get("usage") for e in events if e["type"] == "turn.completed"), None) or {}
    return {"task": name, "solved": bool(check(work, messages[-1] if messages else "")), "seconds": round(took, 1),
            "exit": code, "tool_calls": len(calls), "recovered": len([c for c in calls if c.get("recovered_from")]),
            "input_tokens": usage.get("input_tokens"), "cached_input_tokens": usage.get("cached_input_tokens")}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--modes", default="stock,native")
    ap.add_argument("--tasks", default=",".join(t[0] for t in TASKS))
    ap.add_argument("--n-ctx", type=int, default=4096)
    ap.add_argument("--threads", type=int, default=None, help="llama.cpp threads (default: all CPUs when idle, 1 when busy)")
    ap.add_argument("--limit", type=float, default=600, help="seconds one task may take")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    tasks = [t for t in TASKS if t[0] in args.tasks.split(",")]
    model = ensure_model(log=lambda m: print("bench: " + m, file=sys.stderr))
    load_before = os.getloadavg()
    began = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    results = {}
    servers = {}
    stock = None
    for mode in args.modes.split(","):
        template = None
        if mode == "native":
            if stock is None:
                with LlamaServer(model, n_ctx=512, threads=args.threads) as probe:
                    stock = json.load(urllib.request.urlopen(probe.base + "/props"))["chat_template"]
            fd, template = tempfile.mkstemp(suffix=".jinja")
            os.write(fd, native_template(stock).encode("utf-8"))
            os.close(fd)
        elif mode != "stock":
            raise SystemExit("bench: unknown mode %r (stock, native)" % mode)
        home = Path(tempfile.mkdtemp(prefix="bench-home-"))
        t0 = time.monotonic()
        with LlamaServer(model, n_ctx=args.n_ctx, threads=args.threads, template=template) as server:
            ready = time.monotonic() - t0
            servers[mode] = {"ready_s": round(ready, 1), "threads": server.threads}
            if mode == "stock" and stock is None:
                stock = json.load(urllib.request.urlopen(server.base + "/props"))["chat_template"]
            print("bench: %s server ready in %.1fs" % (mode, ready), file=sys.stderr)
            results[mode] = []
            for task in tasks:
                r = run_task(server, home, task, args.limit)
                print("bench: %s %s" % (mode, json.dumps(r)), file=sys.stderr)
                results[mode].append(r)
        if template:
            os.unlink(template)
    load_after = os.getloadavg()
    machine = {"date": began, "cpus": os.cpu_count(), "load_before": [round(x, 2) for x in load_before],
               "load_after": [round(x, 2) for x in load_after], "model": model.name, "n_ctx": args.n_ctx,
               "servers": servers}
    if args.json:
        print(json.dumps({"machine": machine, "results": results}, indent=1))
    print("%s, %d CPUs, load average %.1f before and %.1f after (1 min), %s, n_ctx %d, llama.cpp threads %s"
          % (began, machine["cpus"], load_before[0], load_after[0], model.name, args.n_ctx,
             ", ".join("%s %s" % (m, v["threads"]) for m, v in servers.items())))
    print("| task | " + " | ".join("%s: solved, s (calls, recovered)" % m for m in results) + " |")
    print("|---|" + "---|" * len(results))
    for i, task in enumerate(tasks):
        cells = []
        for mode in results:
            r = results[mode][i]
            cells.append("%s %.0f s (%d, %d)" % ("yes" if r["solved"] else "NO", r["seconds"], r["tool_calls"], r["recovered"]))
        print("| %s | %s |" % (task[0], " | ".join(cells)))
    for mode in results:
        solved = sum(r["solved"] for r in results[mode])
        took = sum(r["seconds"] for r in results[mode])
        print("%s: %d/%d solved, %.0f s in all, %.0f s per task" % (mode, solved, len(tasks), took, took / max(1, len(tasks))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
