"""One effective policy (issue 10 item 6): what is enforced is what the model is told, what the
rollout records and what the front ends show, and every front end's override changes it.

Each test changes the policy through one front end and checks ENFORCEMENT: the scripted model
asks for `touch FILE` in the workspace (approval `never`, so nobody is asked) and the file
exists only when the effective policy lets the sandbox write there.
"""
import json
import os
import subprocess
import sys
import time

import pytest

import codex
from conftest import REPO
from support.agent_env import MOCK_KEY_ENV, drain_until, mock_cli_args, mock_overrides, user_input
from support.model_server import Turn

pytestmark = pytest.mark.timeout(120)

LEGACY = 'sandbox_permissions = ["disk-full-read-access", "disk-write-cwd"]\n'  #: the seeds' own example


def _touch_turns(server, name):
    server.enqueue(Turn().function_call("shell", {"command": ["touch", name]}, call_id="t-" + name),
                   Turn().text("done " + name))


def _env_context(request):
    """The last <environment_context> the model was sent in a request."""
    texts = ["".join(p.get("text", "") for p in it.get("content", [])) for it in request.body.get("input", [])
             if it.get("type") == "message"]
    return [t for t in texts if t.startswith("<environment_context>")][-1]


def _shell_description(request):
    return next(t for t in request.body["tools"] if t.get("name") == "shell")["description"]


def _rollout_contexts(home):
    files = sorted((home / "sessions").rglob("rollout-*.jsonl"))
    assert files, "no rollout written"
    records = [json.loads(line) for line in files[-1].read_text().splitlines() if line.strip()]
    return [r["payload"] for r in records if r["type"] == "turn_context"]


def _env(codex_home):
    return dict(os.environ, CODEX_HOME=str(codex_home), **{MOCK_KEY_ENV: "k"})


# -- the context itself ---------------------------------------------------------------------


def test_config_is_immutable_and_overrides_make_a_new_context(codex_home, tmp_path):
    cfg = codex.load_config(codex.ConfigOverrides(cwd=str(tmp_path)), [], home=codex_home)
    with pytest.raises(AttributeError, match="immutable"):
        cfg.sandbox_mode = "danger-full-access"
    with pytest.raises(TypeError):
        cfg.sources["sandbox_mode"] = "x"  # front ends no longer share a mutable dict
    ctx = codex.TurnContext.from_config(cfg)
    assert ctx.sandbox_policy.mode == "read-only" and ctx.approval_policy == "untrusted"
    new = ctx.with_overrides(approval_policy="never", sandbox_policy={"mode": "workspace-write", "network_access": True},
                             model="o3", source="/approvals")
    assert (new.approval_policy, new.sandbox_policy.mode, new.sandbox_policy.has_network(), new.model) == (
        "never", "workspace-write", True, "o3")
    assert new.sources["sandbox_mode"] == "/approvals" and new.family.slug == "o3"
    assert (cfg.model, cfg.sandbox_mode, ctx.sandbox_policy.mode, ctx.model) == ("codex-mini-latest", "read-only", "read-only", "codex-mini-latest")
    with pytest.raises(codex.UsageError):
        ctx.with_overrides(cwd=str(tmp_path / "missing"))


def test_every_config_key_is_a_declared_field():
    assert set(codex.CONFIG_KEYS) - {"profile"} <= set(codex.Config._fields)


def test_legacy_permissions_one_policy_everywhere(server, codex_home, tmp_path, monkeypatch):
    """The legacy list is enforced AND reported: env context, shell tool, rollout, header, doctor."""
    monkeypatch.setenv(MOCK_KEY_ENV, "k")
    (codex_home / "config.toml").write_text(LEGACY)
    ws = tmp_path / "ws"
    ws.mkdir()
    _touch_turns(server, "legacy.txt")
    cfg = codex.load_config(codex.ConfigOverrides(model="gpt-5", approval_policy="on-request", cwd=str(ws)),
                            mock_overrides(server), home=codex_home)
    session = codex.Session(cfg).start()
    try:
        session.submit(user_input("touch it"))
        drain_until(session, "task_complete")
    finally:
        session.shutdown()
    assert (ws / "legacy.txt").exists()  # enforcement: workspace-write
    req = server.model_requests()[0]
    assert "<sandbox_mode>workspace-write</sandbox_mode>" in _env_context(req)
    assert "with_escalated_permissions" in json.dumps(req.body["tools"])  # workspace-write + on-request
    assert "can write only inside the working directory" in _shell_description(req)
    assert _rollout_contexts(codex_home)[0]["sandbox_policy"]["mode"] == "workspace-write"
    assert dict(codex.config_summary(cfg))["sandbox"].startswith("workspace-write [workdir")
    assert "sandbox_mode=workspace-write" in codex.describe_policy(cfg)
    doctor = subprocess.run([sys.executable, str(REPO / "codex.py"), "doctor", "-C", str(ws)], capture_output=True,
                            text=True, env=_env(codex_home), timeout=60)
    assert "sandbox_mode=workspace-write" in doctor.stdout + doctor.stderr


# -- through each front end -----------------------------------------------------------------


@pytest.mark.parametrize("flags, written", [
    ([], False),
    (["-s", "workspace-write"], True),
    (["--full-auto"], True),
    (["-c", 'sandbox_permissions=["disk-full-read-access", "disk-write-cwd"]'], True),
    (["-s", "read-only", "-c", 'sandbox_permissions=["disk-write-cwd"]'], False),  # the flag beats the list
])
def test_exec_flags_change_what_is_enforced(server, codex_home, tmp_path, flags, written):
    ws = tmp_path / "ws"
    ws.mkdir()
    _touch_turns(server, "exec.txt")
    proc = subprocess.run([sys.executable, str(REPO / "codex.py"), "exec", "--skip-git-repo-check", "-C", str(ws),
                           "-m", "gpt-5"] + mock_cli_args(server) + flags + ["touch it"],
                          capture_output=True, text=True, env=_env(codex_home), timeout=90)
    assert proc.returncode == 0, proc.stderr
    assert (ws / "exec.txt").exists() == written
    mode = "workspace-write" if written else "read-only"
    assert "sandbox: %s" % mode in proc.stderr  # the header
    assert "<sandbox_mode>%s</sandbox_mode>" % mode in _env_context(server.model_requests()[0])
    assert _rollout_contexts(codex_home)[0]["sandbox_policy"]["mode"] == mode


def test_proto_override_turn_context_changes_enforcement(server, codex_home, tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    _touch_turns(server, "before.txt")
    _touch_turns(server, "after.txt")
    argv = [sys.executable, str(REPO / "codex.py"), "proto", "-C", str(ws), "-m", "gpt-5", "-a", "never",
            "-s", "read-only"] + mock_cli_args(server)
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_env(codex_home), bufsize=1)

    def send(obj):
        proc.stdin.write(json.dumps(obj) + "\n")
        proc.stdin.flush()

    def until(kind, sub_id):
        end = time.monotonic() + 60
        while time.monotonic() < end:
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
            ev = json.loads(line)
            if ev["msg"]["type"] == kind and ev["id"] == sub_id:
                return ev
        raise AssertionError("no %s" % kind)

    try:
        send({"id": "1", "op": {"type": "user_input", "items": [{"type": "text", "text": "touch"}]}})
        until("task_complete", "1")
        assert not (ws / "before.txt").exists()
        send({"id": "2", "op": {"type": "override_turn_context", "sandbox_policy": {"mode": "workspace-write"}}})
        send({"id": "3", "op": {"type": "user_input", "items": [{"type": "text", "text": "touch"}]}})
        until("task_complete", "3")
        assert (ws / "after.txt").exists()
        send({"id": "4", "op": {"type": "shutdown"}})
        until("shutdown_complete", "")
    finally:
        proc.kill()
        proc.wait(10)
    reqs = server.model_requests()
    assert "<sandbox_mode>read-only</sandbox_mode>" in _env_context(reqs[0])
    assert "<sandbox_mode>workspace-write</sandbox_mode>" in _env_context(reqs[2])
    assert [c["sandbox_policy"]["mode"] for c in _rollout_contexts(codex_home)] == ["read-only", "workspace-write"]


def test_repl_approvals_changes_enforcement(server, codex_home, tmp_path):
    pexpect = pytest.importorskip("pexpect")
    from support.repl_pty import BRACKETED_PASTE_ON, ReplPty

    ws = tmp_path / "ws"
    ws.mkdir()
    subprocess.run(["git", "init", "-q", str(ws)], check=True)
    _touch_turns(server, "before.txt")
    _touch_turns(server, "after.txt")
    argv = [str(REPO / "codex.py"), "-C", str(ws), "-m", "gpt-5", "-s", "read-only", "-a", "never"] + mock_cli_args(server)
    r = ReplPty(sys.executable, argv, {"CODEX_HOME": str(codex_home), MOCK_KEY_ENV: "k"}, ws, tmp_path / "pty.log")
    r.submit("touch before")
    r.expect("done before.txt")
    r.expect_prompt()
    assert not (ws / "before.txt").exists()
    r.submit("/approvals")
    r.expect("Full Access")
    r.expect(BRACKETED_PASTE_ON)  # the picker reads single keys now
    r.send("2")  # Auto: on-request + workspace-write
    r.expect("approvals: Auto")
    r.expect_prompt()
    r.submit("touch after")
    r.expect("done after.txt")
    r.expect_prompt()
    assert (ws / "after.txt").exists()
    r.submit("/status")
    r.expect("workspace-write")
    r.expect(r"\(/approvals\)")
    r.expect_prompt()
    r.submit("/quit")
    r.child.expect(pexpect.EOF)
    assert "<sandbox_mode>workspace-write</sandbox_mode>" in _env_context(server.model_requests()[2])


@pytest.mark.parametrize("params, written", [
    ({}, False),
    ({"sandbox": "workspace-write"}, True),
    ({"sandbox-permissions": ["disk-full-read-access", "disk-write-cwd"]}, True),
])
def test_mcp_server_codex_tool_params_change_enforcement(server, codex_home, tmp_path, params, written):
    from support.mcp_jsonrpc_client import RawMcpClient

    ws = tmp_path / "ws"
    ws.mkdir()
    _touch_turns(server, "mcp.txt")
    argv = [sys.executable, str(REPO / "codex.py"), "mcp", "-m", "gpt-5"] + mock_cli_args(server)
    c = RawMcpClient(argv, env=_env(codex_home))
    try:
        c.initialize()
        r = c.call("tools/call", {"name": "codex", "arguments": dict(
            {"prompt": "touch it", "cwd": str(ws), "approval-policy": "never"}, **params)}, timeout=90)
        assert "done mcp.txt" in json.dumps(r)
    finally:
        c.close()
    assert (ws / "mcp.txt").exists() == written
    mode = "workspace-write" if written else "read-only"
    assert "<sandbox_mode>%s</sandbox_mode>" % mode in _env_context(server.model_requests()[0])


# -- the tool registry ----------------------------------------------------------------------


def test_a_tool_is_one_registry_entry(server, codex_home, tmp_path, monkeypatch):
    """Registering a Tool is all it takes: offered per turn, parsed, assessed, run, its events shown."""
    monkeypatch.setenv(MOCK_KEY_ENV, "k")
    seen = []

    def run(runner, task, call_id, params):
        seen.append((params, runner.assess(task, "count_words", params), task.ctx.sandbox_policy.mode))
        runner._task_emit(task, "background_event", message="counted %d words" % len(params["text"].split()))
        return str(len(params["text"].split()))

    def parse(arguments, ctx, environ):
        args = json.loads(arguments or "{}")
        if not isinstance(args.get("text"), str):
            raise codex.ToolArgumentError("`text` must be a string")
        return {"text": args["text"]}

    tool = codex.Tool(name="count_words", parse=parse, run=run, events=("background_event",),
                      spec=lambda ctx: None if ctx.approval_policy == "untrusted" else {
                          "type": "function", "name": "count_words", "description": "Counts words.", "strict": False,
                          "parameters": {"type": "object", "properties": {"text": {"type": "string"}}}},
                      assess=lambda ctx, params, approved: "auto-approve")
    monkeypatch.setitem(codex.TOOLS, "count_words", tool)
    monkeypatch.setitem(codex._TOOL_NAMES, "count_words", tool)
    with pytest.raises(ValueError, match="EVENT_TYPES"):
        codex.register_tool(tool.replace(name="bad", events=("no_such_event",)))
    server.enqueue(Turn().function_call("count_words", {"text": "one two three"}, call_id="w1"),
                   Turn().function_call("count_words", {"text": 3}, call_id="w2"),
                   Turn().text("three"))
    cfg = codex.load_config(codex.ConfigOverrides(model="gpt-5", approval_policy="never", cwd=str(tmp_path)),
                            mock_overrides(server), home=codex_home)
    session = codex.Session(cfg).start()
    try:
        session.submit(user_input("count"))
        msgs = drain_until(session, "task_complete")
    finally:
        session.shutdown()
    assert seen == [({"text": "one two three"}, "auto-approve", "read-only")]
    assert any(m.get("message") == "counted 3 words" for m in msgs)
    reqs = server.model_requests()
    assert "count_words" in [t["name"] for t in reqs[0].body["tools"]]
    outputs = [i["output"] for i in reqs[2].body["input"] if i["type"] == "function_call_output"]
    assert outputs == ["3", "`text` must be a string"]
    untrusted = codex.TurnContext.from_config(cfg).with_overrides(approval_policy="untrusted")
    assert "count_words" not in [t["name"] for t in codex.build_tools(untrusted)]


def test_a_registered_tool_renders_in_exec_without_front_end_changes(server, codex_home, tmp_path, monkeypatch):
    """A Tool with a render (§09) shows in exec's human progress and in `--json` through the
    registry: tool_call_begin/tool_call_end events, the tool's hooks, no front-end edit."""
    import io

    monkeypatch.setenv(MOCK_KEY_ENV, "k")

    def parse(arguments, ctx, environ):
        return {"text": json.loads(arguments or "{}").get("text", "")}

    spec = {"type": "function", "name": "shout", "description": "Shouts.", "strict": False,
            "parameters": {"type": "object", "properties": {"text": {"type": "string"}}}}
    render = codex.ToolRender(human=lambda msg: "shouting %r" % msg["arguments"]["text"] if msg["type"] == "tool_call_begin"
                              else "shouted %s" % msg["output"],
                              item=lambda msg: {"loudness": len(msg["arguments"]["text"])})
    for name, tool_render in (("shout", render), ("whisper", codex.ToolRender())):
        tool = codex.Tool(name=name, parse=parse, run=lambda runner, task, call_id, params: params["text"].upper(),
                          spec=lambda ctx, n=name: dict(spec, name=n), render=tool_render)
        monkeypatch.setitem(codex.TOOLS, name, tool)
        monkeypatch.setitem(codex._TOOL_NAMES, name, tool)
    cfg = codex.load_config(codex.ConfigOverrides(model="gpt-5", approval_policy="never", cwd=str(tmp_path)),
                            mock_overrides(server), home=codex_home)
    runs = {}
    for as_json in (False, True):
        server.enqueue(Turn().function_call("shout", {"text": "hey"}, call_id="s1")
                             .function_call("whisper", {"text": "psst"}, call_id="s2"),
                       Turn().text("done"))
        out, err = io.StringIO(), io.StringIO()
        assert codex.run_exec(cfg, "go", as_json=as_json, color="never", out=out, err=err, skip_git_repo_check=True) == 0
        runs[as_json] = (out.getvalue(), err.getvalue())
    human = runs[False][1]
    assert "tool shouting 'hey'" in human and "tool shouted HEY" in human
    assert "tool whisper {\"text\": \"psst\"}" in human and "tool whisper succeeded: PSST" in human
    lines = [json.loads(line) for line in runs[True][0].splitlines()]
    started = [l["item"] for l in lines if l["type"] == "item.started" and l["item"]["type"] == "tool_call"]
    done = [l["item"] for l in lines if l["type"] == "item.completed" and l["item"]["type"] == "tool_call"]
    assert [(i["tool"], i["status"]) for i in started] == [("shout", "in_progress"), ("whisper", "in_progress")]
    assert [(i["tool"], i["status"], i["output"]) for i in done] == [("shout", "completed", "HEY"), ("whisper", "completed", "PSST")]
    assert done[0]["loudness"] == 3 and done[0]["arguments"] == {"text": "hey"} and "loudness" not in done[1]
    assert done[0]["id"] == started[0]["id"]
