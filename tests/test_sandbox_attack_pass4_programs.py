"""The fourth attack pass's findings 09 and 10 (docs/attack-pass/fourth/README.md): programs codex
itself starts outside the sandbox -- hooks, MCP stdio servers, `notify` -- must never be files a
sandboxed command could have written: found on a PATH entry inside a writable root (09), or a
hook script kept in the project (10).  One check, codex.trusted_program, guards every such start;
a project's .claude/ (where Claude Code keeps hooks) stays read-only for commands like .codex/.
Attacked through the real path: `codex exec` against the scripted model, the real helpers on this
kernel (with and without user namespaces), real files and processes.
"""
import json
import os
import subprocess
import sys

import pytest

import codex
from conftest import REPO, codex_py_argv
from support.agent_env import MOCK_KEY_ENV, mock_cli_args
from support.model_server import Turn

pytestmark = [pytest.mark.timeout(180), pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux sandbox")]

NO_USERNS = REPO / "tests" / "support" / "no_userns.py"


@pytest.fixture(params=["userns", "landlock-only"])
def wrap(request):
    """How codex's sandbox starts: with user namespaces, or where the kernel refuses them."""
    return [] if request.param == "userns" else [sys.executable, str(NO_USERNS)]


def _exec(wrap, server, codex_home, ws, prompt, env=None):
    full_env = dict(os.environ, CODEX_HOME=str(codex_home), **{MOCK_KEY_ENV: "k"})
    full_env.update(env or {})
    argv = wrap + codex_py_argv() + ["exec", "--skip-git-repo-check", "-C", str(ws), "-s", "workspace-write",
                                     "-c", 'approval_policy="never"'] + mock_cli_args(server) + [prompt]
    return subprocess.run(argv, env=full_env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
                          cwd=str(ws))


def _outputs(server):
    return {i["call_id"]: i["output"] for r in server.model_requests() for i in r.body["input"]
            if i.get("type") == "function_call_output"}


# -- 09: a program planted on PATH inside a writable root -----------------------------------------


def test_notify_and_mcp_programs_planted_on_path_never_run(wrap, server, tmp_path, codex_home):
    """The repro of 09: ~/.cargo is a writable root with ~/.cargo/bin first on PATH (what rustup
    sets up); a command drops `notify-send` and `npx` there.  Neither runs: notify at the end of
    that turn says why in one line; the MCP server of the next start fails with that line."""
    ws, home, ran = tmp_path / "ws", tmp_path / "home", tmp_path / "ran"
    cargo_bin = home / ".cargo" / "bin"
    for d in (ws, cargo_bin, ran):
        d.mkdir(parents=True)
    (codex_home / "config.toml").write_text(
        'notify = ["codex-test-notify", "Codex"]\n[sandbox_workspace_write]\nwritable_roots = ["%s"]\n'
        '[mcp_servers.github]\ncommand = "codex-test-npx"\nargs = ["-y", "@modelcontextprotocol/server-github"]\n'
        % (home / ".cargo"))
    # names no machine has (a real `npx` would fetch a package at the first start: loopback only)
    plant = ('for n in codex-test-npx codex-test-notify; do printf "#!/bin/sh\\ntouch %s/\\$(basename \\$0)\\n" > "$HOME/.cargo/bin/$n"; '
             'chmod +x "$HOME/.cargo/bin/$n"; done; ls "$HOME/.cargo/bin"' % ran)
    env = {"HOME": str(home), "PATH": "%s:%s" % (cargo_bin, os.environ["PATH"])}
    server.enqueue(Turn().function_call("shell", {"command": ["sh", "-c", plant]}, call_id="c1"), Turn().text("ok"))
    first = _exec(wrap, server, codex_home, ws, "plant", env)
    assert first.returncode == 0, first.stderr
    assert sorted(os.listdir(cargo_bin)) == ["codex-test-notify", "codex-test-npx"], _outputs(server)  # the plant is real
    assert os.listdir(ran) == []
    said = first.stdout + first.stderr
    assert "not running `codex-test-notify` (notify)" in said and str(cargo_bin / "codex-test-notify") in said, said
    server.enqueue(Turn().text("hello"))
    second = _exec(wrap, server, codex_home, ws, "again", env)
    assert second.returncode == 0, second.stderr
    assert os.listdir(ran) == []
    said = second.stdout + second.stderr
    assert "not running `codex-test-npx` (mcp_servers.github.command)" in said, said


def test_programs_resolve_past_path_entries_commands_may_write(tmp_path, codex_home):
    ws, planted, safe = tmp_path / "ws", tmp_path / "ws" / "node_modules" / ".bin", codex_home / "bin"
    for d in (planted, safe):
        d.mkdir(parents=True)
    for d in (planted, safe):
        (d / "tool").write_text("#!/bin/sh\n")
        (d / "tool").chmod(0o755)
    env = {"PATH": "%s:relative/bin:%s:/usr/bin:/bin" % (planted, safe)}
    argv, path = codex.trusted_program(["tool", "--x"], "notify", cwd=ws, env=env, home=codex_home, workspace=ws)
    assert argv == [str(safe / "tool"), "--x"]
    assert path.split(":") == [str(safe), "/usr/bin", "/bin"]  # what the program itself gets
    (safe / "tool").unlink()
    with pytest.raises(codex.UntrustedProgramError) as err:
        codex.trusted_program(["tool"], "notify", cwd=ws, env=env, home=codex_home, workspace=ws)
    text = str(err.value)
    assert text.startswith("not running `tool` (notify): the only one on PATH is %s" % (planted / "tool"))
    assert "\n" not in text and "absolute path in notify" in text


# -- 10: hook scripts in the project ---------------------------------------------------------------


def _project_hook(ws, codex_home, log):
    hooks = ws / ".claude" / "hooks"
    hooks.mkdir(parents=True)
    (hooks / "format.sh").write_text("#!/bin/sh\necho legit >> %s\n" % log)
    (hooks / "format.sh").chmod(0o755)
    (codex_home / "hooks.json").write_text(json.dumps({"hooks": {"PostToolUse": [{"matcher": "", "hooks": [
        {"type": "command", "command": "\"$CLAUDE_PROJECT_DIR\"/.claude/hooks/format.sh", "timeout": 10}]}]}}))


def test_a_project_hook_cannot_be_rewritten_by_a_command_and_still_runs(wrap, server, tmp_path, codex_home):
    """The repro of 10: the model rewrites .claude/hooks/format.sh (the hook codex runs after
    every tool call); .claude is read-only for commands, so the write fails and the user's hook
    still runs, unsandboxed, as configured."""
    ws, log = tmp_path / "ws", tmp_path / "hook.log"
    ws.mkdir()
    _project_hook(ws, codex_home, log)
    attack = "printf '#!/bin/sh\\necho pwned >> %s\\n' > .claude/hooks/format.sh; echo rc=$?" % log
    server.enqueue(Turn().function_call("shell", {"command": ["sh", "-c", attack]}, call_id="c1"), Turn().text("ok"))
    r = _exec(wrap, server, codex_home, ws, "go")
    assert r.returncode == 0, r.stderr
    assert "rc=0" not in _outputs(server)["c1"], _outputs(server)
    assert (ws / ".claude" / "hooks" / "format.sh").read_text().endswith("legit >> %s\n" % log)
    assert log.read_text().split() == ["legit"]  # the PostToolUse hook ran once, the user's own


def test_a_dot_claude_a_command_creates_is_moved_aside(impl, tmp_path, codex_home):
    """No .claude yet: a command that makes one (to plant the hook a hooks.json names) finds it
    moved aside when it ends (user namespaces), or cannot make it (Landlock alone)."""
    ws = tmp_path / "ws"
    ws.mkdir()
    cfg = codex.load_config(codex.ConfigOverrides(approval_policy="never", sandbox_mode="workspace-write", cwd=str(ws)),
                            [], home=str(codex_home), environ=dict(os.environ))
    r = codex.run_command(["sh", "-c", "mkdir -p .claude/hooks && echo x > .claude/hooks/format.sh; echo done"],
                          str(ws), cfg, codex.build_command_env(cfg), timeout_ms=30000)
    assert "done" in r.stdout, r.aggregated_output
    assert not (ws / ".claude").exists(), os.listdir(ws)


@pytest.mark.parametrize("argv", [
    ["bash", "{ws}/x.sh"],
    ["python3", "-u", "{ws}/x.py", "--flag"],
    ["node", "x.js"],  # relative: against the program's working directory (the workspace here)
    ["/bin/sh", "-c", "\"$CLAUDE_PROJECT_DIR\"/x.sh --fix"],
    ["/bin/sh", "-c", "cd /; FOO=1 python3 {ws}/x.py | tee /tmp/log"],
    ["/bin/sh", "-c", "true && ${{CODEX_PROJECT_DIR}}/x.sh"],
    ["{ws}/x.sh"],
    ["{tmp}/x.sh"],
])
def test_a_script_where_commands_may_write_is_refused(tmp_path, codex_home, argv):
    ws = tmp_path / "ws"
    ws.mkdir()
    for name in ("x.sh", "x.py", "x.js"):
        (ws / name).write_text("#!/bin/sh\n")
        (ws / name).chmod(0o755)
    (tmp_path / "x.sh").write_text("#!/bin/sh\n")
    argv = [a.format(ws=ws, tmp=tmp_path) for a in argv]
    env = dict(os.environ, CLAUDE_PROJECT_DIR=str(ws), CODEX_PROJECT_DIR=str(ws))
    with pytest.raises(codex.UntrustedProgramError, match="^not running .*x\\.(sh|py|js) \\(hooks.json: hooks.Stop\\[0\\]\\): "
                       "it lies where sandboxed commands may write"):
        codex.trusted_program(argv, "hooks.json: hooks.Stop[0]", cwd=ws, env=env, home=codex_home, workspace=ws)


@pytest.mark.parametrize("argv", [
    ["/bin/sh", "-c", "\"$CLAUDE_PROJECT_DIR\"/.claude/hooks/ok.sh"],
    ["bash", "{ws}/.codex/ok.sh"],
    ["python3", "{home}/ok.py"],
    ["/bin/sh", "-c", "echo done | tee /tmp/x > {ws}/out.txt"],  # data files, no program
    ["npx", "-y", "@modelcontextprotocol/server-github"],
])
def test_programs_commands_cannot_write_run(tmp_path, codex_home, argv):
    ws = tmp_path / "ws"
    for d in (ws / ".claude" / "hooks", ws / ".codex"):
        d.mkdir(parents=True)
    for f in (ws / ".claude" / "hooks" / "ok.sh", ws / ".codex" / "ok.sh", codex_home / "ok.py", ws / "out.txt"):
        f.write_text("#!/bin/sh\n")
    if argv[0] == "npx" and not any(os.access(os.path.join(d, "npx"), os.X_OK) for d in os.environ["PATH"].split(":")):
        argv = ["sh"] + argv[1:]
    argv = [a.format(ws=ws, home=codex_home) for a in argv]
    env = dict(os.environ, CLAUDE_PROJECT_DIR=str(ws))
    out, _path = codex.trusted_program(argv, "hooks.json: hooks.Stop[0]", cwd=ws, env=env, home=codex_home, workspace=ws)
    assert os.path.isabs(out[0]) and out[1:] == argv[1:]


def test_a_hook_and_an_mcp_server_in_the_workspace_are_refused_in_one_line(run_codex, server, tmp_path, codex_home):
    """A hook or MCP server kept in the workspace outside .claude/.codex (`python3 scripts/x.py`):
    refused with one line naming the program and its config key; the hook fails closed."""
    ws = tmp_path / "ws"
    (ws / "scripts").mkdir(parents=True)
    marker = tmp_path / "ran"
    for name in ("hook.py", "mcp.py"):
        (ws / "scripts" / name).write_text("open(%r, 'a').write(%r)\n" % (str(marker), name))
    (codex_home / "hooks.json").write_text(json.dumps({"hooks": {"PreToolUse": [{"hooks": [
        {"type": "command", "command": "python3 $CLAUDE_PROJECT_DIR/scripts/hook.py"}]}]}}))
    (codex_home / "config.toml").write_text('[mcp_servers.local]\ncommand = "python3"\nargs = ["scripts/mcp.py"]\n'
                                           'cwd = "%s"\n' % ws)
    server.enqueue(Turn().function_call("shell", {"command": ["true"]}, call_id="c1"), Turn().text("ok"))
    r = run_codex("exec", "--skip-git-repo-check", "-C", str(ws), "-s", "workspace-write", *mock_cli_args(server),
                  "go", env={MOCK_KEY_ENV: "k"}, cwd=str(ws))
    assert r.returncode == 0, r.stderr
    assert not marker.exists()
    out = _outputs(server)["c1"]
    assert out.startswith("blocked by a PreToolUse hook: ") and "not running %s" % (ws / "scripts" / "hook.py") in out, out
    said = [l for l in (r.stdout + r.stderr).splitlines() if "mcp.py" in l and "mcp_servers.local.command" in l]
    assert said and "lies where sandboxed commands may write" in said[0], r.stdout + r.stderr
