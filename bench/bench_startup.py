#!/usr/bin/env python3
"""Startup time of `codex --version` / `--help` / `exec` against a bare `python3 -c pass`.

    python3 bench/bench_startup.py [-n RUNS] [--dist PATH] [--python PYTHON] [--check]

Rows: bare python; `python3 codex.py` (a script: compiled on every run); `python3 -m codex`
(cached byte code, like an installed `codex`); dist/codex after it has unpacked itself once
(run through its `#!/usr/bin/env python3` line, as a user does), and its --help before that.
Each command runs RUNS times, taking turns (median reported; RUNS is capped at 200).  The
table shows the overhead over bare python in wall time and in CPU time (user+sys of the
child, which a machine busy with other work inflates far less; the verdict uses it).
The `exec` row is a whole `codex exec` turn with a one-message answer from the scripted model
server (tests/support/model_server.py, in this process, on 127.0.0.1).
Budget: <= 30 ms over bare python for --version and --help, <= 100 ms for the exec turn.
--check exits 1 when over.
"""
import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUDGET_MS = 30.0  #: allowed overhead over bare python for --version and --help
EXEC_BUDGET_MS = 100.0  #: allowed overhead over bare python for a one-answer `codex exec`
MAX_RUNS = 200


def _children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def medians_ms(cmds, runs, envs):
    """Median (wall, CPU) time of each command in milliseconds.

    The commands take turns (one warm-up round first), so a busy machine slows them alike.
    """
    times = [([], []) for _ in cmds]
    for round_no in range(runs + 1):
        for i, (cmd, env) in enumerate(zip(cmds, envs)):
            c0, t0 = _children_cpu(), time.perf_counter()
            proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, timeout=60)
            wall, cpu = (time.perf_counter() - t0) * 1000, (_children_cpu() - c0) * 1000
            if proc.returncode != 0:
                raise SystemExit("bench: %s failed (exit %d): %s"
                                 % (" ".join(cmd), proc.returncode, proc.stderr.decode()[-300:]))
            if round_no:
                times[i][0].append(wall)
                times[i][1].append(cpu)
    return [(statistics.median(w), statistics.median(c)) for w, c in times]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", "--runs", type=int, default=20, help="runs per command (median; max %d)" % MAX_RUNS)
    ap.add_argument("--python", default=shutil.which("python3") or sys.executable, help="interpreter (default python3)")
    ap.add_argument("--dist", default=os.environ.get("CODEX_DIST") or str(ROOT / "dist" / "codex"), help="the zipapp")
    ap.add_argument("--check", action="store_true", help="exit 1 when a command is over budget")
    args = ap.parse_args(argv)
    runs = max(1, min(args.runs, MAX_RUNS))
    tmp = tempfile.mkdtemp(prefix="codex-bench-")
    # like a user's machine: byte code is written, and codex has unpacked itself once before
    env = dict(os.environ, CODEX_HOME=tmp, SHIV_ROOT=os.path.join(tmp, "shiv"))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    py = args.python
    rows = [("python3 -c pass", [py, "-c", "pass"], env)]
    # a script is compiled on every run; `-m` (like an installed `codex`) uses cached byte code
    in_repo = dict(env, PYTHONPATH=str(ROOT))
    for flag in ("--version", "--help"):
        rows.append(("python3 codex.py " + flag, [py, str(ROOT / "codex.py"), flag], env))
        rows.append(("python3 -m codex " + flag, [py, "-m", "codex", flag], in_repo))
    if Path(args.dist).exists():
        subprocess.run([args.dist, "logout"], stdout=subprocess.DEVNULL, env=env, timeout=120)  # unpacks
        for flag in ("--version", "--help"):
            rows.append(("dist/codex " + flag, [args.dist, flag], env))
        never = dict(env, SHIV_ROOT=os.path.join(tmp, "empty"))
        rows.append(("dist/codex --help (1st run)", [args.dist, "--help"], never))
        sys.path[:0] = [str(ROOT / "tests"), str(ROOT)]
        from support.model_server import ModelServer, Turn

        server = ModelServer(default=Turn().text("hi")).start()
        overrides = ['model_provider="mock"', 'model_providers.mock.base_url="%s"' % server.url,
                     'model_providers.mock.env_key="CODEX_BENCH_KEY"']
        cmd = [args.dist, "exec", "--skip-git-repo-check"] + [a for o in overrides for a in ("-c", o)] + ["hello"]
        rows.append(("dist/codex exec (one answer)", cmd, dict(env, CODEX_BENCH_KEY="k")))
    else:
        print("bench: %s not built (python3 build.py); zipapp rows left out" % args.dist)
    times = medians_ms([cmd for _, cmd, _ in rows], runs, [e for _, _, e in rows])
    results = list(zip([label for label, _, _ in rows], times))
    bare_wall, bare_cpu = results[0][1]
    print("%s, median of %d runs, budgets over bare python judged on CPU time" % (
        subprocess.run([py, "--version"], capture_output=True, text=True).stdout.strip(), runs))
    print("%-28s %8s %8s %8s %8s  %s" % ("command", "wall ms", "over", "cpu ms", "over", ""))
    over_budget = False
    for label, (wall, cpu) in results:
        extra = cpu - bare_cpu
        budget = EXEC_BUDGET_MS if " exec" in label else BUDGET_MS
        if label == results[0][0]:
            verdict = ""
        elif "1st run" in label:
            verdict = "(before codex has unpacked itself; not budgeted)"
        else:
            verdict = ("ok" if extra <= budget else "OVER BUDGET") + " (%d ms)" % budget
        over_budget |= verdict == "OVER BUDGET"
        print("%-28s %8.1f %+8.1f %8.1f %+8.1f  %s" % (label, wall, wall - bare_wall, cpu, extra, verdict))
    shutil.rmtree(tmp, ignore_errors=True)
    return 1 if (args.check and over_budget) else 0


if __name__ == "__main__":
    sys.exit(main())
