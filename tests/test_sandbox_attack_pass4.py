"""The fourth attack pass's findings on secrets (docs/attack-pass/fourth/README.md: 07, 01, 02,
11, 12, 13), each attacked through the real path: `codex exec` against the scripted model
server, the real helpers (compiled and Python, the `impl` fixture) on this kernel, with and
without user namespaces, real files.  docs/sandbox.md maps each class to its mechanism.
"""
import json
import os
import subprocess
import sys

import pytest

import codex
from conftest import REPO, codex_py_argv

pytestmark = [pytest.mark.timeout(180), pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux sandbox")]

NO_USERNS = REPO / "tests" / "support" / "no_userns.py"


@pytest.fixture(params=["userns", "landlock-only"])
def wrap(request):
    """How the helper starts: with user namespaces, or where the kernel refuses them."""
    return [] if request.param == "userns" else [sys.executable, str(NO_USERNS)]


def _sandbox(wrap, ws, script, mode="read-only", env=None):
    return subprocess.run(wrap + codex_py_argv() + ["sandbox", "-s", mode, "-C", str(ws), "--", "sh", "-c", script],
                          cwd=str(ws), capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60,
                          env=env)


# ---------------------------------------------------------------------------------------------
# 07: the instructions file (and every config-named file codex sends) read as project docs are
# ---------------------------------------------------------------------------------------------


def test_a_command_cannot_turn_the_instructions_file_into_auth_json_or_a_fifo(run_codex, server, tmp_path, codex_home):
    from support.agent_env import MOCK_KEY_ENV, mock_cli_args
    from support.model_server import Turn

    ws = tmp_path / "ws"
    (ws / "prompts").mkdir(parents=True)
    (ws / "prompts" / "system.md").write_text("You are our team's agent.\n")
    codex.write_auth(codex_home, {"OPENAI_API_KEY": "sk-instr-5e3a9d01"})
    args = ["-C", str(ws), "--skip-git-repo-check", "-c", 'model_instructions_file="prompts/system.md"'] + mock_cli_args(server)
    server.enqueue(Turn().function_call("shell", {"command": ["sh", "-c", 'ln -sf "$CODEX_HOME/auth.json" prompts/system.md']},
                                        call_id="c1"), Turn().text("ok"))
    first = run_codex("exec", "-s", "workspace-write", *(args + ["go"]), env={MOCK_KEY_ENV: "k"})
    assert first.returncode == 0, first.stderr
    assert "You are our team's agent." in json.dumps(server.model_requests()[0].body)
    assert os.readlink(str(ws / "prompts" / "system.md")).endswith("auth.json")  # the plant is real
    n = len(server.model_requests())
    server.enqueue(Turn().text("ok"))
    second = run_codex("exec", *(args + ["again"]), env={MOCK_KEY_ENV: "k"})
    assert second.returncode == 2 and "$CODEX_HOME" in second.stderr and "Traceback" not in second.stderr, second.stderr
    assert not any("sk-instr-5e3a9d01" in json.dumps(r.body) for r in server.model_requests()[n:])
    # a link out of the workspace to what a command may read is refused too (it left the repository)
    os.unlink(str(ws / "prompts" / "system.md"))
    os.symlink(str(tmp_path / "elsewhere.md"), str(ws / "prompts" / "system.md"))
    (tmp_path / "elsewhere.md").write_text("elsewhere\n")
    third = run_codex("exec", *(args + ["again"]), env={MOCK_KEY_ENV: "k"})
    assert third.returncode == 2 and "outside" in third.stderr, third.stderr
    # a FIFO: the start fails at once, it does not block
    os.unlink(str(ws / "prompts" / "system.md"))
    os.mkfifo(str(ws / "prompts" / "system.md"))
    fifo = run_codex("exec", *(args + ["again"]), env={MOCK_KEY_ENV: "k"}, timeout=30)
    assert fifo.returncode == 2 and "not a regular file" in fifo.stderr, fifo.stderr


def test_config_named_files_in_codex_home_are_read_but_never_its_private_ones(tmp_path, codex_home):
    # the user's own instructions file in $CODEX_HOME is fine; auth.json, history and sessions are not
    (codex_home / "inst.md").write_text("mine\n")
    cfg = codex.load_config(codex.ConfigOverrides(cwd=str(tmp_path)), ['model_instructions_file="%s"' % (codex_home / "inst.md")],
                            home=str(codex_home), environ=dict(os.environ))
    assert cfg.base_instructions == "mine\n"
    codex.write_auth(codex_home, {"OPENAI_API_KEY": "sk-home-1"})
    (codex_home / "sessions").mkdir()
    (codex_home / "sessions" / "s.jsonl").write_text("transcript\n")
    for name in ("auth.json", "history.jsonl", "sessions/s.jsonl"):
        if not (codex_home / name).exists():
            (codex_home / name).write_text("private\n")
        with pytest.raises(codex.ConfigError, match="private to codex"):
            codex.load_config(codex.ConfigOverrides(cwd=str(tmp_path)),
                              ['model_instructions_file="%s"' % (codex_home / name)], home=str(codex_home),
                              environ=dict(os.environ))
    # $CODEX_HOME/AGENTS.md and a prompt file as links to auth.json: not read
    (codex_home / "AGENTS.md").symlink_to(codex_home / "auth.json")
    (codex_home / "prompts").mkdir()
    (codex_home / "prompts" / "leak.md").symlink_to(codex_home / "auth.json")
    (codex_home / "prompts" / "ok.md").write_text("fine\n")
    cfg = codex.load_config(codex.ConfigOverrides(cwd=str(tmp_path)), [], home=str(codex_home), environ=dict(os.environ))
    assert "sk-home-1" not in (codex.load_user_instructions(cfg) or "")
    prompts = codex.load_custom_prompts(codex.prompt_dirs(cfg), cfg.codex_home)
    assert "leak" not in prompts and prompts["ok"].body == "fine"


# ---------------------------------------------------------------------------------------------
# 02 and 11: what the config names as a credential, and credentials known by their shape, never
# reach a command's environment
# ---------------------------------------------------------------------------------------------

_SHAPED_SECRETS = {
    "DEPLOY_SSH": "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU=\n-----END OPENSSH PRIVATE KEY-----",
    "GH_ACCESS": "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8",
    "GH_FINE": "github_pat_" + "11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
    "GITLAB_CI_PUSH": "glpat-" + "xY9zW8vU7tS6rQ5pO4nM",
    "BUNDLE_GITHUB__COM": "x-access-token:" + "ghs_" + "Zz9Yy8Xx7Ww6Vv5Uu4Tt3Ss2Rr1Qq0Pp",
    "SLACK_BOT": "xoxb-" + "1234567890-0987654321-AbCdEfGhIjKlMnOpQrStUvWx",
    "STRIPE_LIVE": "sk_live_" + "51HqLyjWDarjtT1zdp7dcXYZ",
    "AWS_ACCESS": "AKIA" + "IOSFODNN7EXAMPLE",
    "LDAP_BIND_PW": "Corr3ct-H0rse-Battery",
    "SONAR_LOGIN": "squ_" + "4f1e2d3c4b5a69788796a5b4c3d2e1f0a9b8c7d6",
}


@pytest.mark.parametrize("name", sorted(_SHAPED_SECRETS))
def test_credentials_are_known_by_their_shape(name):
    assert codex.is_secret_env_var(name, _SHAPED_SECRETS[name])


@pytest.mark.parametrize("name,value", [
    ("PW_TEST_HTML_REPORT_OPEN", "never"), ("BUNDLE_PATH", "vendor/bundle"), ("GIT_SHA", "a" * 40),
    ("IMAGE", "ghcr.io/org/app:sha-1234567"), ("CFLAGS", "-O2 -pipe -fstack-protector-strong"),
    ("BRANCH", "sk-feature-branch"), ("HOSTNAME", "akia-runner-01"),
])
def test_ordinary_values_and_names_are_kept(name, value):
    assert not codex.is_secret_env_var(name, value)


def test_variables_the_config_names_as_credentials_never_reach_a_command(run_codex, server, tmp_path, codex_home):
    # the repro of 02 end to end: an MCP server's bearer token and header variables (names no
    # pattern catches), its env_vars passthroughs, and the provider's own header variables
    from support.agent_env import MOCK_KEY_ENV, mock_cli_args
    from support.model_server import Turn

    ws = tmp_path / "ws"
    ws.mkdir()
    (codex_home / "config.toml").write_text(
        '[mcp_servers.linear]\nurl = "http://127.0.0.1:9/mcp"\nbearer_token_env_var = "LINEAR_MCP"\n'
        'env_http_headers = { "X-Workspace" = "LINEAR_WORKSPACE_HDR" }\nenabled = false\n'
        '[mcp_servers.gh]\ncommand = "true"\nenv_vars = ["GH_PASSTHRU", "HOME"]\nenabled = false\n')
    server.enqueue(Turn().function_call("shell", {"command": ["env"]}, call_id="c1"), Turn().text("ok"))
    secrets = {"LINEAR_MCP": "lin_oauth_8d1f0c55e2", "LINEAR_WORKSPACE_HDR": "hdr_7a1be2c0", "GH_PASSTHRU": "pass_61c2e0"}
    env = dict(secrets, **{MOCK_KEY_ENV: "k", "PLAIN_SETTING": "kept_3e8f"})
    env.update(_SHAPED_SECRETS)
    r = run_codex("exec", "-s", "workspace-write", "--skip-git-repo-check", "-C", str(ws), *(mock_cli_args(server) + ["go"]),
                  env=env)
    assert r.returncode == 0, r.stderr
    seen = server.model_requests()[1].body["input"][-1]["output"]
    assert "kept_3e8f" in seen and "HOME=" in seen, seen  # the command did run `env`
    for value in list(secrets.values()) + list(_SHAPED_SECRETS.values()):
        assert value.split("\n")[0] not in seen, (value, seen)
