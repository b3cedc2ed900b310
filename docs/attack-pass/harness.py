"""Tiny harness for the findings: run `codex exec` against the scripted model server.

    from harness import run_model   # sys.path has docs/attack-pass/
    out = run_model(turns, workspace, codex_home, extra_args=[...], env={...})
"""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))  # docs/attack-pass -> the repository
sys.path.insert(0, os.path.join(REPO, "tests"))
from support.model_server import ModelServer, Turn  # noqa: E402

CODEX = os.environ.get("CODEX_BIN") or os.path.join(REPO, "dist", "codex")


def shell(script, call_id="c1", workdir=None):
    args = {"command": ["bash", "-c", script]}
    if workdir:
        args["workdir"] = workdir
    return Turn().function_call("shell", args, call_id=call_id)


def patch(text, call_id="p1"):
    return Turn().function_call("shell", {"command": ["apply_patch", text]}, call_id=call_id)


def run_model(turns, workspace, codex_home, extra_args=(), env=None, prompt="go", sandbox="workspace-write",
              approval=None, timeout=120):
    with ModelServer() as server:
        server.enqueue(*turns)
        argv = [CODEX, "exec", "--skip-git-repo-check", "-s", sandbox, "-C", workspace,
                "-c", 'model_provider="mock"', "-c", 'model_providers.mock.base_url="%s"' % server.url,
                "-c", 'model_providers.mock.wire_api="responses"', "-c", 'model_providers.mock.env_key="K"']
        if approval:
            argv += ["-c", 'approval_policy="%s"' % approval]
        argv += list(extra_args) + [prompt]
        e = dict(os.environ, K="test-key", CODEX_HOME=codex_home)
        e.update(env or {})
        proc = subprocess.run(argv, env=e, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
        outputs = []
        for req in server.model_requests():
            for item in (req.body or {}).get("input", []):
                if isinstance(item, dict) and item.get("type") == "function_call_output":
                    outputs.append(item.get("output"))
        return proc, outputs
