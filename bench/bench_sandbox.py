#!/usr/bin/env python3
"""Per-command cost of the sandbox helper against a plain fork/exec of the same command.

    python3 bench/bench_sandbox.py [-n RUNS] [--json]

Spawns `/bin/true` RUNS times each way (same subprocess call, stdin /dev/null, pipes, new
session) and reports the median and p90 wall time per command and the extra cost over the
plain spawn.  Variants: the compiled helper in read-only mode, in workspace-write mode
(Landlock rules for the roots), workspace-write with a .git to protect (adds the user+mount
namespace and a read-only bind), the same plus --ro-mounts (every other mount read-only: what
codex uses where user namespaces work), that run from a sealed memfd with pinned ancestors (what
codex runs since issue 10), and the Python helper.  Goal: the compiled helper as codex runs it
within +1 ms of the plain spawn.  On a loaded machine medians mostly measure the scheduler:
`min ms` (the fastest run) is the closest to an idle machine's figure, and `extra min` compares
those.

Then apply_patch inside the sandbox, end to end as the agent applies an auto-approved patch
(codex.apply_patch_in_sandbox: the helper, a fresh `python3 -I -S` loading codex's §03 and §10
already compiled, LeanPath for pathlib, the patch applied under Landlock): a one-file update of a small file and a three-file
patch, against applying the same patch in-process.  Goal: within 40 ms per patch.
Results also go to bench/results/bench_sandbox.json.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import codex  # noqa: E402


def time_spawns(argv, runs, env):
    """Wall time (ms) of each of `runs` spawns of argv, waited to completion."""
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True, close_fds=True, env=env)
        proc.communicate()
        out.append((time.perf_counter() - t0) * 1000.0)
        if proc.returncode != 0:
            raise SystemExit("bench: %s exited %d" % (argv[:3], proc.returncode))
    return out


def bench_apply_patch(ws, home, runs):
    """Rows for apply_patch: in-process vs inside the sandbox (C helper), one and three files."""
    cfg = codex.load_config(codex.ConfigOverrides(approval_policy="never", sandbox_mode="workspace-write", cwd=str(ws)),
                            [], home=home)
    for i in range(3):
        (ws / ("f%d.py" % i)).write_text("".join("line %d\n" % n for n in range(200)))

    def patch_text(k, files):
        body = ""
        for i in range(files):
            old, new = ("line 100", "line 100 %d" % k) if k % 2 == 0 else ("line 100 %d" % (k - 1), "line 100")
            body += "*** Update File: f%d.py\n@@\n line 99\n-%s\n+%s\n" % (i, old, new)
        return "*** Begin Patch\n%s*** End Patch\n" % body

    rows = []
    runs += runs % 2  # each pair of patches changes a line and changes it back
    for files in (1, 3):
        for name, fn in (("in-process (unsandboxed)", lambda t: codex.apply_patch(t, ws)),
                         ("inside the sandbox (C helper)", lambda t: codex.apply_patch_in_sandbox(t, ws, cfg))):
            fn(patch_text(0, files))
            fn(patch_text(1, files))
            samples, cpu = [], []
            for k in range(runs):
                text = patch_text(k, files)
                c0 = _cpu_ms()
                t0 = time.perf_counter()
                out = fn(text)
                samples.append((time.perf_counter() - t0) * 1000.0)
                cpu.append(_cpu_ms() - c0)
                if hasattr(out, "exit_code") and out.exit_code != 0:
                    raise SystemExit("bench: apply_patch failed in the sandbox: %s" % out.stderr)
            samples.sort()
            rows.append({"variant": "apply_patch %d file%s, %s" % (files, "s" if files > 1 else "", name),
                         "runs": runs, "median_ms": round(statistics.median(samples), 3),
                         "p90_ms": round(samples[int(len(samples) * 0.9) - 1], 3), "extra_ms": None,
                         "cpu_ms": round(statistics.median(cpu), 3)})
    return rows


def _cpu_ms():
    """CPU time (user + system) of this process and its waited-for children, in ms: unlike wall
    time it does not grow when other processes load the machine."""
    import resource

    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        ru = resource.getrusage(who)
        total += ru.ru_utime + ru.ru_stime
    return total * 1000.0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", "--runs", type=int, default=300)
    ap.add_argument("--python-runs", type=int, default=30)
    ap.add_argument("--patch-runs", type=int, default=40)
    ap.add_argument("--json", action="store_true", help="print JSON only")
    args = ap.parse_args(argv)
    helper = REPO / "build" / "helpers" / ("codex-linux-sandbox-%s" % codex._machine_arch())
    if not helper.exists():
        raise SystemExit("bench: %s missing; run `python3 build.py helpers`" % helper)
    env = {"PATH": "/usr/bin:/bin"}
    cmd = ["/bin/true"]
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp) / "ws"
        (ws / ".git").mkdir(parents=True)
        (ws / "sub" / ".git").mkdir(parents=True)
        os.environ["CODEX_SANDBOX_HELPER"] = str(helper)
        variants = [
            ("plain fork/exec", cmd, args.runs),
            ("C helper, read-only", [str(helper), "--cwd", str(ws), "--"] + cmd, args.runs),
            ("C helper, workspace-write", [str(helper), "--cwd", str(ws), "--writable", str(ws), "--writable", "/tmp",
                                           "--"] + cmd, args.runs),
            ("C helper, workspace-write + .git read-only (userns)",
             [str(helper), "--cwd", str(ws), "--writable", str(ws), "--writable", "/tmp",
              "--read-only", str(ws / ".git"), "--"] + cmd, args.runs),
            ("C helper, as codex runs it (+ --ro-mounts, --max-procs)",
             [str(helper), "--cwd", str(ws), "--writable", str(ws), "--writable", "/tmp",
              "--read-only", str(ws / ".git"), "--ro-mounts", "--max-procs", str(codex.SANDBOX_MAX_PROCS), "--"] + cmd,
             args.runs),
            ("C helper from a sealed memfd, + pinned ancestors (codex today)",
             [str(codex.linux_helper_path(Path(tmp) / "home0")), "--cwd", str(ws), "--writable", str(ws),
              "--writable", "/tmp", "--pin", str(ws / "sub"), "--read-only", str(ws / "sub" / ".git"),
              "--read-only", str(ws / ".git"), "--ro-mounts", "--max-procs", str(codex.SANDBOX_MAX_PROCS), "--"] + cmd,
             args.runs),
            ("Python helper, workspace-write", codex._python_helper_argv() + [
                "--cwd", str(ws), "--writable", str(ws), "--"] + cmd, args.python_runs),
        ]
        for _, argv_, _ in variants:  # warm the page cache
            time_spawns(argv_, 3, env)
        # round-robin, so load from other processes on the machine hits every variant alike
        samples_by = {name: [] for name, _, _ in variants}
        for i in range(args.runs):
            for name, argv_, runs in variants:
                if i < runs:
                    samples_by[name].extend(time_spawns(argv_, 1, env))
        rows = []
        base = base_min = None
        for name, argv_, runs in variants:
            samples = sorted(samples_by[name])
            med = statistics.median(samples)
            p90 = samples[int(len(samples) * 0.9) - 1]
            if base is None:
                base, base_min = med, samples[0]
            rows.append({"variant": name, "runs": runs, "median_ms": round(med, 3), "p90_ms": round(p90, 3),
                         "extra_ms": round(med - base, 3), "min_ms": round(samples[0], 3),
                         "extra_min_ms": round(samples[0] - base_min, 3)})
        # end to end through run_command (policy, protected paths, env, capture), C helper
        home = Path(tmp) / "home"
        home.mkdir()
        for name, mode in (("run_command, danger-full-access (no helper)", "danger-full-access"),
                           ("run_command, workspace-write (C helper)", "workspace-write")):
            cfg = codex.load_config(codex.ConfigOverrides(sandbox_mode=mode, cwd=str(ws)), [], home=home)
            cmd_env = codex.build_command_env(cfg)
            codex.run_command(cmd, ws, cfg, cmd_env)
            samples = []
            for _ in range(max(20, args.runs // 5)):
                t0 = time.perf_counter()
                codex.run_command(cmd, ws, cfg, cmd_env)
                samples.append((time.perf_counter() - t0) * 1000.0)
            samples.sort()
            med = statistics.median(samples)
            rows.append({"variant": name, "runs": len(samples), "median_ms": round(med, 3),
                         "p90_ms": round(samples[int(len(samples) * 0.9) - 1], 3), "extra_ms": round(med - base, 3),
                         "min_ms": round(samples[0], 3), "extra_min_ms": round(samples[0] - base_min, 3)})
        rows.extend(bench_apply_patch(ws, home, args.patch_runs))
    result = {"machine": os.uname().machine, "kernel": os.uname().release, "python": sys.version.split()[0],
              "load_average": os.getloadavg()[0], "command": cmd, "rows": rows}
    out_dir = REPO / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "bench_sandbox.json").write_text(json.dumps(result, indent=2) + "\n")
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print("load average %.1f" % result["load_average"])
    print("%-62s %6s %10s %9s %10s %8s %10s" % ("variant", "runs", "median ms", "p90 ms", "extra ms", "min ms", "extra min"))
    for r in rows:
        extra = "%10.3f" % r["extra_ms"] if r["extra_ms"] is not None else "%10s" % ("cpu %.1f" % r["cpu_ms"])
        mins = ("%8.3f %10.3f" % (r["min_ms"], r["extra_min_ms"])) if "min_ms" in r else ""
        print("%-62s %6d %10.3f %9.3f %s %s" % (r["variant"], r["runs"], r["median_ms"], r["p90_ms"], extra, mins))
    return 0


if __name__ == "__main__":
    sys.exit(main())
