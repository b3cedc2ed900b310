"""Run one command the way the agent does (load_config -> build_command_env -> run_command),
as whichever user runs this script, and print the result as JSON.

    python sandbox_run.py '{"ws": DIR, "home": DIR, "mode": "workspace-write", "argv": [...],
                            "overrides": ["k=v", ...], "environ": {...}, "max_procs": N}'
    (@CODEX_PID@ in argv becomes this process's pid: the codex a command would attack)

tests/test_sandbox_isolation.py runs it as root and, through setpriv, as an unprivileged user:
the two differ exactly where capabilities and RLIMIT_NPROC do.  CODEX_SANDBOX_HELPER picks
the helper as in codex.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import codex  # noqa: E402


def main(spec):
    if spec.get("max_procs"):
        codex.SANDBOX_MAX_PROCS = int(spec["max_procs"])
    environ = dict(os.environ)
    environ.update(spec.get("environ") or {})
    cfg = codex.load_config(codex.ConfigOverrides(approval_policy="never", sandbox_mode=spec.get("mode", "workspace-write"),
                                                  cwd=spec["ws"]),
                            spec.get("overrides") or [], home=spec["home"], environ=environ)
    env = codex.build_command_env(cfg, environ)
    argv = [a.replace("@CODEX_PID@", str(os.getpid())) for a in spec["argv"]]  # this process is codex
    r = codex.run_command(argv, spec["ws"], cfg, env, timeout_ms=spec.get("timeout_ms", 30000))
    print(json.dumps({"exit_code": r.exit_code, "stdout": r.stdout, "stderr": r.stderr, "sandbox_type": r.sandbox_type,
                      "timed_out": r.timed_out}))


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
