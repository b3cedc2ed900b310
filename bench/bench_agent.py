"""Agent benchmarks: per-tool-call overhead of a turn, and SSE throughput.

    .venv/bin/python bench/bench_agent.py [--calls N] [--mb M] [--delta BYTES]

1. Tool-call overhead: one model response carrying N function calls, then a final answer,
   through a real Session against the scripted model server on 127.0.0.1.  Measured three
   times: with `update_plan` calls (pure agent overhead: parse, dispatch, events, history),
   with `shell ["true"]` calls unsandboxed (adds spawning a process), and with the same calls
   in the read-only and the workspace-write sandbox (adds the helper: namespaces, Landlock,
   seccomp; workspace-write adds the protected paths, pins and read-only mounts).  Compare with
   the plain row: N plain fork/execs of `true` from Python (the floor under any shell call).
   Each row also gives the CPU time per call (codex, the helper and the command): on a loaded
   machine wall times mostly measure the scheduler, CPU times much less.
2. SSE throughput: M MB of assistant text in DELTA-byte deltas streamed by the server and
   decoded by ResponsesClient (HTTP + SSE parse + JSON + event), and the SSE parser alone.
"""
import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import codex  # noqa: E402
from support.agent_env import drain_until, mock_config, user_input  # noqa: E402
from support.model_server import ModelServer, Turn  # noqa: E402


class RemoteServer(object):
    """A ModelServer in a forked child process, so its work does not share our GIL."""

    def __init__(self, *turns):
        import multiprocessing

        ctx = multiprocessing.get_context("fork")
        parent, child = ctx.Pipe()
        self.proc = ctx.Process(target=self._serve, args=(child, turns), daemon=True)
        self.proc.start()
        self.url = parent.recv()
        self._pipe = parent

    @staticmethod
    def _serve(pipe, turns):
        with ModelServer() as server:
            server.enqueue(*turns)
            pipe.send(server.url)
            pipe.recv()

    def close(self):
        self._pipe.send("stop")
        self.proc.join(5)


def _cpu_seconds():
    """CPU time (user + system) of this process and its waited-for children (the sandbox helper,
    the commands): unlike wall time it hardly grows when other processes load the machine.  The
    model server runs in a child that is reaped only after the timed turn, so it is not counted."""
    import resource

    return sum(ru.ru_utime + ru.ru_stime for ru in (resource.getrusage(resource.RUSAGE_SELF),
                                                     resource.getrusage(resource.RUSAGE_CHILDREN)))


def bench_tool_calls(server, home, cwd, n, name, args, sandbox="danger-full-access", cpu=None):
    """Wall seconds of one turn of n calls; with `cpu` (a list), its CPU seconds are appended to it."""
    turn = Turn()
    for i in range(n):
        turn.function_call(name, args, call_id="c%d" % i)
    server = RemoteServer(Turn().text("warm-up"), turn, Turn().text("done"))
    # the same call n times on purpose: the loop guards (issue 12) would stop the turn after a few
    cfg = mock_config(server, home, cwd, sandbox=sandbox, max_repeated_tool_calls=0, max_tool_calls_per_turn=0)
    session = codex.Session(cfg, record_rollout=True).start()
    session.next_event(timeout=5)
    # The first request pays for importing httpx and building the TLS context: not timed.
    session.submit(user_input("warm up"))
    drain_until(session, "task_complete", timeout=60)
    c0, t0 = _cpu_seconds(), time.perf_counter()
    session.submit(user_input("go"))
    drain_until(session, "task_complete", timeout=600)
    elapsed = time.perf_counter() - t0
    if cpu is not None:
        cpu.append(_cpu_seconds() - c0)
    session.shutdown()
    server.close()
    return elapsed


def bench_plain_spawn(n):
    import subprocess

    t0 = time.perf_counter()
    for _ in range(n):
        subprocess.run(["true"])
    return time.perf_counter() - t0


def bench_sse(server, home, cwd, total_bytes, delta):
    text = ("abcdefghij" * (delta // 10 + 1))[:delta]
    chunks = [text] * (total_bytes // delta)
    server = RemoteServer(Turn().text("warm-up"), Turn().text("".join(chunks), chunks=chunks))
    client = codex.ResponsesClient(mock_config(server, home, cwd), "bench")
    list(client.stream(codex.Prompt([], [], "x")))
    t0 = time.perf_counter()
    got = 0
    for kind, payload in client.stream(codex.Prompt([], [], "x")):
        if kind == "text_delta":
            got += len(payload)
    elapsed = time.perf_counter() - t0
    client.close()
    server.close()
    assert got == len(chunks) * delta, got
    return elapsed, len(chunks)


def bench_parser(total_bytes, delta):
    payload = json.dumps({"type": "response.output_text.delta", "delta": "x" * delta})
    frame = ("event: response.output_text.delta\ndata: %s\n\n" % payload).encode()
    raw = frame * (total_bytes // delta)
    pieces = [raw[i:i + 16384] for i in range(0, len(raw), 16384)]
    parser = codex.SseParser()
    t0 = time.perf_counter()
    n = 0
    for piece in pieces:
        for ev in parser.feed(piece):
            json.loads(ev.data)
            n += 1
    return time.perf_counter() - t0, n, len(raw)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--mb", type=float, default=1.0)
    ap.add_argument("--delta", type=int, default=8)
    opts = ap.parse_args()
    os.environ.setdefault("CODEX_TEST_MOCK_KEY", "bench")
    with tempfile.TemporaryDirectory() as tmp, ModelServer() as server:
        home, cwd = Path(tmp) / "home", Path(tmp) / "work"
        home.mkdir()
        cwd.mkdir()
        n = opts.calls
        plan = {"plan": [{"step": "a", "status": "in_progress"}]}
        print("load average %.2f (wall times grow with it; CPU times hardly)" % os.getloadavg()[0])
        cpu = []
        t_plan = bench_tool_calls(server, home, cwd, n, "update_plan", plan, cpu=cpu)
        print("tool calls: %d update_plan calls in one turn: %.1f ms total, %.3f ms/call (CPU %.3f ms/call)"
              % (n, t_plan * 1000, t_plan * 1000 / n, cpu[-1] * 1000 / n))
        for what, sandbox in (("", "danger-full-access"), ("sandboxed (read-only) ", "read-only"),
                              ("sandboxed (workspace-write) ", "workspace-write")):
            t = bench_tool_calls(server, home, cwd, n, "shell", {"command": ["true"]}, sandbox=sandbox, cpu=cpu)
            print("tool calls: %d %sshell [\"true\"] calls in one turn: %.1f ms total, %.2f ms/call (CPU %.2f ms/call)"
                  % (n, what, t * 1000, t * 1000 / n, cpu[-1] * 1000 / n))
        t_plain = bench_plain_spawn(n)
        print("plain subprocess.run([\"true\"]) x %d: %.2f ms each" % (n, t_plain * 1000 / n))
        total = int(opts.mb * 1024 * 1024)
        elapsed, deltas = bench_sse(server, home, cwd, total, opts.delta)
        print("SSE end to end: %.2f MB of text in %d deltas of %d bytes: %.2f s, %.2f MB/s of text, %.0f deltas/s"
              % (total / 1048576.0, deltas, opts.delta, elapsed, total / 1048576.0 / elapsed, deltas / elapsed))
        elapsed, events, raw = bench_parser(total, opts.delta)
        print("SSE parser alone (+json.loads): %d events, %.1f MB of SSE: %.2f s, %.1f MB/s, %.0f events/s"
              % (events, raw / 1048576.0, elapsed, raw / 1048576.0 / elapsed, events / elapsed))


if __name__ == "__main__":
    main()
