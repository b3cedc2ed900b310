"""§04 Layered configuration: system / user / profile / project / -c / flags, requirements.toml
pins that win (also against overrides and the legacy sandbox_permissions), project trust, and
upstream's newer spellings."""
import json
import os
import subprocess
import sys

import pytest

import codex
from support.agent_env import MOCK_KEY_ENV, mock_cli_args
from support.model_server import Turn

pytestmark = pytest.mark.timeout(120)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def layout(tmp_path):
    """system dir, $CODEX_HOME, and a project (with .git) whose subdirectory is the cwd."""
    system, home, project = tmp_path / "etc-codex", tmp_path / "home", tmp_path / "project"
    for d in (system, home, project / ".git", project / ".codex", project / "sub"):
        d.mkdir(parents=True)
    return {"system": system, "home": home, "project": project, "cwd": project / "sub",
            "environ": {"HOME": str(tmp_path), "CODEX_SYSTEM_DIR": str(system)}}


def load(layout, *cli, **flags):
    overrides = codex.ConfigOverrides(cwd=str(layout["cwd"]), **flags)
    return codex.load_config(overrides, list(cli), home=layout["home"], environ=layout["environ"])


def write(path, text):
    path.write_text(text)
    return path


LAYER_FILES = {
    "system": lambda l: l["system"] / "config.toml",
    "config.toml": lambda l: l["home"] / "config.toml",
    "project": lambda l: l["project"] / ".codex" / "config.toml",
}


@pytest.mark.parametrize("top", ["system", "config.toml", "profile p", "project", "-c", "flag"])
def test_precedence_matrix(layout, top):
    """Each layer sets `model`; the highest present one wins and is named as the source."""
    order = ["system", "config.toml", "profile p", "project", "-c", "flag"]
    present = order[:order.index(top) + 1]
    user = 'profile = "p"\n' if "profile p" in present else ""
    if "config.toml" in present:
        user += 'model = "m-config.toml"\n'
    user += '[projects."%s"]\ntrust_level = "trusted"\n' % layout["project"]
    if "profile p" in present:
        user += '[profiles.p]\nmodel = "m-profile p"\n'
    write(layout["home"] / "config.toml", user)
    if "system" in present:
        write(layout["system"] / "config.toml", 'model = "m-system"\n')
    if "project" in present:
        write(layout["project"] / ".codex" / "config.toml", 'model = "m-project"\n')
    cli = ['model="m--c"'] if "-c" in present else []
    flags = {"model": "m-flag"} if "flag" in present else {}
    cfg = load(layout, *cli, **flags)
    assert cfg.model == "m-" + top and cfg.sources["model"] == top


def test_lower_layers_fill_what_higher_ones_leave(layout):
    write(layout["system"] / "config.toml", 'model_reasoning_effort = "low"\nfile_opener = "cursor"\n')
    write(layout["home"] / "config.toml", 'model_reasoning_effort = "high"\n')
    cfg = load(layout)
    assert (cfg.model_reasoning_effort, cfg.sources["model_reasoning_effort"]) == ("high", "config.toml")
    assert (cfg.file_opener, cfg.sources["file_opener"]) == ("cursor", "system")
    assert cfg.layer_paths["system"] == str(layout["system"] / "config.toml")


def test_profile_files_beside_profile_tables(layout):
    write(layout["home"] / "fast.config.toml", 'model = "from-file"\n')
    write(layout["home"] / "config.toml", '[profiles.slow]\nmodel = "from-table"\n')
    assert load(layout, profile="fast").model == "from-file"
    assert load(layout, profile="slow").model == "from-table"
    with pytest.raises(codex.ConfigError, match=r"defined profiles: fast, slow"):
        load(layout, profile="nope")


def test_untrusted_project_config_is_ignored_and_said_so(layout):
    write(layout["project"] / ".codex" / "config.toml", 'model = "project-model"\napproval_policy = "never"\n')
    cfg = load(layout)
    assert cfg.model != "project-model" and cfg.trusted_project_root is None and cfg.project_root == layout["project"]
    assert any("is not trusted" in w and "--trust" in w for w in cfg.warnings)
    assert load(layout, trust=True).model == "project-model"
    write(layout["home"] / "config.toml", '[projects."%s"]\ntrust_level = "untrusted"\n' % layout["project"])
    assert load(layout).model != "project-model"


def test_a_project_cannot_trust_itself(layout, tmp_path):
    other = tmp_path / "other"
    write(layout["project"] / ".codex" / "config.toml",
          'model = "p"\n[projects."%s"]\ntrust_level = "trusted"\n' % other)
    cfg = load(layout, trust=True)
    assert cfg.model == "p" and str(other) not in cfg.projects
    assert any("`projects` is ignored in a project's config" in w for w in cfg.warnings)


def test_project_root_markers(layout):
    (layout["project"] / ".git").rmdir()
    write(layout["project"] / "pyproject.toml", "")
    write(layout["project"] / ".codex" / "config.toml", 'model = "p"\n')
    assert load(layout, trust=True).model != "p"  # no .git: not a project
    cfg = load(layout, 'project_root_markers=["pyproject.toml"]', trust=True)
    assert cfg.model == "p" and cfg.project_root == layout["project"]


# -- requirements ---------------------------------------------------------------------------------


def test_pins_fall_back_to_the_nearest_allowed_value_with_one_warning(layout):
    write(layout["system"] / "requirements.toml",
          'allowed_approval_policies = ["untrusted", "on-request"]\nallowed_sandbox_modes = ["read-only", "workspace-write"]\n')
    cfg = load(layout, approval_policy="never", sandbox_mode="danger-full-access")
    assert (cfg.approval_policy, cfg.sandbox_mode) == ("on-request", "workspace-write")
    assert cfg.sources["approval_policy"] == cfg.sources["sandbox_mode"] == "requirements"
    assert sum("not allowed by" in w for w in cfg.warnings) == 2
    assert cfg.sandbox_policy.mode == "workspace-write"
    cfg = load(layout, approval_policy="on-request", sandbox_mode="read-only")
    assert (cfg.approval_policy, cfg.sandbox_mode) == ("on-request", "read-only") and not cfg.warnings


def test_pins_hold_against_the_legacy_list_and_turn_overrides(layout):
    write(layout["system"] / "requirements.toml", 'allowed_sandbox_modes = ["read-only"]\n'
          'allowed_approval_policies = ["untrusted"]\n')
    write(layout["home"] / "config.toml", 'sandbox_permissions = ["disk-full-write-access", "network-full-access"]\n')
    cfg = load(layout)
    assert cfg.sandbox_policy.mode == "read-only"
    ctx = codex.TurnContext.from_config(cfg)
    with pytest.raises(codex.UsageError, match="sandbox mode 'danger-full-access' is not allowed"):
        ctx.with_overrides(sandbox_policy="danger-full-access")
    with pytest.raises(codex.UsageError, match="approval policy 'never' is not allowed"):
        ctx.with_overrides(approval_policy="never")
    assert ctx.with_overrides(sandbox_policy="read-only").sandbox_policy.mode == "read-only"


def test_user_requirements_only_fill_what_the_system_leaves(layout):
    write(layout["system"] / "requirements.toml", 'allowed_sandbox_modes = ["read-only"]\n')
    write(layout["home"] / "requirements.toml", 'allowed_sandbox_modes = ["danger-full-access"]\n'
          'allowed_approval_policies = ["on-request"]\n')
    req = load(layout).requirements
    assert req.allowed_sandbox_modes == ("read-only",) and req.allowed_approval_policies == ("on-request",)


def test_mcp_allow_list_and_required_provider(layout):
    write(layout["system"] / "requirements.toml",
          'model_provider = "corp"\n[mcp_servers.docs]\ncommand = "docs-server"\n')
    write(layout["home"] / "config.toml",
          '[model_providers.corp]\nbase_url = "http://127.0.0.1:9/v1"\n'
          '[mcp_servers.docs]\ncommand = "docs-server"\n[mcp_servers.evil]\ncommand = "evil"\n')
    cfg = load(layout, model_provider="openai")
    assert cfg.model_provider == "corp" and cfg.provider.id == "corp"
    assert sorted(cfg.mcp_servers) == ["docs"]
    assert any("`evil` is not on the allow-list" in w for w in cfg.warnings)
    # the right name with another identity is not the approved server
    write(layout["home"] / "config.toml", '[model_providers.corp]\nbase_url = "http://127.0.0.1:9/v1"\n'
          '[mcp_servers.docs]\ncommand = "impostor"\n')
    assert load(layout).mcp_servers == {}


def test_bad_requirements_file_is_one_line(layout):
    write(layout["system"] / "requirements.toml", 'allowed_sandbox_modes = ["everything"]\n')
    with pytest.raises(codex.ConfigError, match=r"requirements.toml.*allowed_sandbox_modes") as err:
        load(layout)
    assert "\n" not in str(err.value)


def run(layout, *args, input=None):
    env = dict(os.environ, CODEX_HOME=str(layout["home"]), CODEX_SYSTEM_DIR=str(layout["system"]),
               **{MOCK_KEY_ENV: "test-key"})
    return subprocess.run([sys.executable, os.path.join(REPO, "codex.py")] + list(args), cwd=str(layout["cwd"]),
                          env=env, capture_output=True, text=True, timeout=60, input=input)


def test_pinned_sandbox_is_enforced_not_just_reported(layout, server):
    """exec asks for full access; the pin keeps commands read-only, checked by a real write."""
    write(layout["system"] / "requirements.toml", 'allowed_sandbox_modes = ["read-only"]\n')
    target = layout["cwd"] / "written.txt"
    server.enqueue(Turn().function_call("shell", {"command": ["bash", "-c", "echo x > %s" % target]}, call_id="c1"),
                   Turn().text("done"))
    r = run(layout, "exec", "-s", "danger-full-access", *mock_cli_args(server), "write it")
    assert r.returncode == 0, r.stderr
    assert not target.exists()
    assert "sandbox: read-only" in r.stderr and "not allowed by" in r.stderr


def test_config_show_and_doctor_name_the_layers_and_pins(layout):
    write(layout["system"] / "config.toml", 'file_opener = "cursor"\n')
    write(layout["system"] / "requirements.toml", 'allowed_approval_policies = ["on-request"]\n')
    write(layout["home"] / "config.toml", 'model = "user-model"\n')
    r = run(layout, "config", "show", "--json")
    assert r.returncode == 0, r.stderr
    shown = json.loads(r.stdout)
    assert shown["values"]["model"] == {"value": "user-model", "layer": "config.toml", "file": str(layout["home"] / "config.toml")}
    assert shown["values"]["file_opener"]["layer"] == "system"
    assert shown["values"]["approval_policy"] == {"value": "on-request", "layer": "requirements",
                                                  "file": str(layout["system"] / "requirements.toml")}
    assert shown["requirements"] == {"approval_policy": "on-request"}
    r = run(layout, "config")
    assert r.returncode == 0 and "user-model" in r.stdout and "pinned by" in r.stdout
    r = run(layout, "doctor")
    assert "pinned" in r.stdout and "approval_policy: on-request" in r.stdout


# -- compatibility with upstream's newer spellings ----------------------------------------------


def test_model_instructions_file_alias(layout):
    write(layout["cwd"] / "inst.md", "Be terse.\n")
    cfg = load(layout, 'model_instructions_file="inst.md"')
    assert cfg.base_instructions == "Be terse.\n"
    cfg = load(layout, 'experimental_instructions_file="inst.md"')
    assert cfg.base_instructions == "Be terse.\n"


def test_agents_override_and_fallback_filenames(layout):
    write(layout["project"] / "AGENTS.md", "root agents\n")
    write(layout["project"] / "AGENTS.override.md", "root override\n")
    write(layout["cwd"] / "CLAUDE.md", "sub claude\n")
    cfg = load(layout)
    text = codex.load_user_instructions(cfg)
    assert "root override" in text and "root agents" not in text and "sub claude" not in text
    cfg = load(layout, 'project_doc_fallback_filenames=["CLAUDE.md"]')
    text = codex.load_user_instructions(cfg)
    assert text.index("root override") < text.index("sub claude")
    write(layout["home"] / "AGENTS.override.md", "home override\n")
    assert codex.load_user_instructions(cfg).startswith("home override")


def test_trusted_project_prompts_and_hooks(layout):
    prompts = layout["project"] / ".codex" / "prompts"
    prompts.mkdir()
    write(prompts / "ship.md", "Ship it\n")
    write(layout["project"] / ".codex" / "hooks.json",
          json.dumps({"hooks": {"Stop": [{"hooks": [{"type": "command", "command": "true"}]}]}}))
    untrusted = load(layout)
    assert "ship" not in codex.load_custom_prompts(codex.prompt_dirs(untrusted)) and not untrusted.hooks
    trusted = load(layout, trust=True)
    assert "ship" in codex.load_custom_prompts(codex.prompt_dirs(trusted))
    assert [h.event for h in trusted.hooks] == ["Stop"]


@pytest.mark.slow  # a real REPL in a pty
def test_repl_asks_once_whether_to_trust_the_project(layout, server):
    pexpect = pytest.importorskip("pexpect")
    from support.repl_pty import ReplPty

    write(layout["project"] / ".codex" / "config.toml", 'model = "project-model"\n')
    server.enqueue(Turn().text("hi there"))
    env = {"CODEX_HOME": str(layout["home"]), "CODEX_SYSTEM_DIR": str(layout["system"]), MOCK_KEY_ENV: "test-key"}
    argv = [os.path.join(REPO, "codex.py"), "-a", "never"] + mock_cli_args(server)
    r = ReplPty(sys.executable, argv, env, layout["cwd"], layout["home"] / "pty.log", wait_prompt=False)
    r.expect(r"Trust this project")
    r.send("y")
    r.expect_prompt()
    r.submit("hello")
    r.expect("hi there")
    r.expect_prompt()
    r.submit("/quit")
    assert r.wait_exit() == 0
    assert server.model_requests()[0].body["model"] == "project-model"
    user_config = (layout["home"] / "config.toml").read_text()
    assert '[projects."%s"]' % layout["project"] in user_config and 'trust_level = "trusted"' in user_config
    assert load(layout).trusted_project_root == layout["project"]
