"""§04 Config: config.toml, -c overrides, profiles, providers, validation."""
import os

import pytest

import codex
from codex import ConfigError, ConfigOverrides, load_config, parse_config_override


def write_config(home, text):
    (home / "config.toml").write_text(text, encoding="utf-8")


def test_defaults_without_a_config_file(codex_home, tmp_path):
    cfg = load_config(cwd=tmp_path)
    assert cfg.model == "codex-mini-latest"
    assert cfg.model_provider == "openai"
    assert cfg.provider.wire_api == "responses"
    assert cfg.approval_policy == "untrusted"
    assert cfg.sandbox_mode == "read-only"
    assert cfg.project_doc_max_bytes == 32768
    assert cfg.history == {"persistence": "save-all", "max_bytes": None}
    assert cfg.file_opener == "vscode"
    assert cfg.sources["model"] == "default"
    assert cfg.cwd == tmp_path.resolve()
    assert cfg.network_access is False


def test_every_documented_key_is_accepted(codex_home, tmp_path):
    write_config(codex_home, """
model = "o3"
model_provider = "azure"
approval_policy = "on-request"
sandbox_mode = "workspace-write"
disable_response_storage = true
notify = ["notify-send", "codex"]
file_opener = "cursor"
project_doc_max_bytes = 1000
hide_agent_reasoning = true
show_raw_agent_reasoning = false
model_reasoning_effort = "high"
model_reasoning_summary = "detailed"
model_verbosity = "low"
model_supports_reasoning_summaries = true
model_context_window = 1000
model_max_output_tokens = 100
instructions = "be brief"

[sandbox_workspace_write]
writable_roots = ["/srv/data"]
network_access = true
exclude_tmpdir_env_var = true
exclude_slash_tmp = false

[shell_environment_policy]
inherit = "core"
ignore_default_excludes = false
exclude = ["AWS_*"]
set = { CI = "1" }
include_only = ["PATH", "HOME"]

[history]
persistence = "none"
max_bytes = 1048576

[tui]
disable_mouse_capture = true

[mcp_servers.fs]
command = "npx"
args = ["-y", "@modelcontextprotocol/server-filesystem", "."]
env = { LOG = "1" }
startup_timeout_sec = 20
tool_timeout_sec = 30

[model_providers.azure]
name = "Azure"
base_url = "https://example.openai.azure.com/openai"
env_key = "AZURE_OPENAI_API_KEY"
wire_api = "responses"
query_params = { api-version = "2025-04-01-preview" }
http_headers = { X-Team = "dev" }
env_http_headers = { X-Trace = "TRACE_ID" }
request_max_retries = 7
stream_max_retries = 500
stream_idle_timeout_ms = 1000
""")
    cfg = load_config(cwd=tmp_path)
    assert not cfg.warnings
    assert cfg.model == "o3" and cfg.sources["model"] == "config.toml"
    assert cfg.provider.id == "azure"
    assert cfg.provider.url("/responses") == (
        "https://example.openai.azure.com/openai/responses?api-version=2025-04-01-preview"
    )
    assert cfg.provider.request_max_retries == 7
    assert cfg.provider.stream_max_retries == 100  # capped as upstream
    assert cfg.sandbox_workspace_write["network_access"] is True
    assert cfg.network_access is True
    assert cfg.shell_environment_policy["set"] == {"CI": "1"}
    assert cfg.mcp_servers["fs"]["tool_timeout_sec"] == 30
    assert cfg.mcp_servers["fs"]["enabled"] is True
    assert cfg.history["persistence"] == "none"
    assert cfg.notify == ["notify-send", "codex"]


def test_precedence_flag_over_c_over_profile_over_file(codex_home, tmp_path):
    write_config(codex_home, """
model = "from-file"
approval_policy = "never"
profile = "work"
[profiles.work]
model = "from-profile"
approval_policy = "on-failure"
[profiles.home]
model = "home-model"
""")
    cfg = load_config(cwd=tmp_path)
    assert (cfg.model, cfg.sources["model"]) == ("from-profile", "profile work")
    assert cfg.approval_policy == "on-failure"
    cfg = load_config(cli_overrides=["model=from-c"], cwd=tmp_path)
    assert (cfg.model, cfg.sources["model"]) == ("from-c", "-c")
    cfg = load_config(ConfigOverrides(model="from-flag"), ["model=from-c"], cwd=tmp_path)
    assert (cfg.model, cfg.sources["model"]) == ("from-flag", "flag")
    # --profile beats the file's `profile`, and -c can choose the profile too
    assert load_config(ConfigOverrides(profile="home"), cwd=tmp_path).model == "home-model"
    assert load_config(cli_overrides=["profile=home"], cwd=tmp_path).model == "home-model"


def test_c_override_values_are_toml_with_string_fallback():
    assert parse_config_override("model=o3") == (["model"], "o3")
    assert parse_config_override('model="o3"') == (["model"], "o3")
    assert parse_config_override("a.b.c=true") == (["a", "b", "c"], True)
    assert parse_config_override("x=[1, 2]") == (["x"], [1, 2])
    assert parse_config_override("x={a = 1}") == (["x"], {"a": 1})
    assert parse_config_override(" k = 42 ") == (["k"], 42)
    assert parse_config_override("k=a=b") == (["k"], "a=b")
    for bad in ("novalue", "=1", "a..b=1"):
        with pytest.raises(ConfigError):
            parse_config_override(bad)


def test_c_override_reaches_nested_tables(codex_home, tmp_path):
    write_config(codex_home, "[sandbox_workspace_write]\nwritable_roots = ['/a']\n")
    cfg = load_config(cli_overrides=["sandbox_workspace_write.network_access=true", "sandbox_mode=workspace-write"], cwd=tmp_path)
    assert cfg.sandbox_workspace_write == {
        "writable_roots": ["/a"], "network_access": True,
        "exclude_tmpdir_env_var": False, "exclude_slash_tmp": False,
    }
    assert cfg.network_access is True


def test_toml_syntax_error_names_file_line_and_column(codex_home, tmp_path):
    write_config(codex_home, 'model = "o3"\napproval_policy = \n')
    with pytest.raises(ConfigError) as err:
        load_config(cwd=tmp_path)
    assert str(err.value).startswith(str(codex_home / "config.toml") + ":2:")


def test_bad_enum_names_key_value_and_choices(codex_home, tmp_path):
    write_config(codex_home, 'sandbox_mode = "sometimes"\n')
    with pytest.raises(ConfigError) as err:
        load_config(cwd=tmp_path)
    msg = str(err.value)
    assert "sandbox_mode" in msg and "'sometimes'" in msg
    assert "read-only, workspace-write, danger-full-access" in msg


def test_bad_type_is_reported(codex_home, tmp_path):
    write_config(codex_home, 'project_doc_max_bytes = "lots"\n')
    with pytest.raises(ConfigError, match="project_doc_max_bytes.*integer"):
        load_config(cwd=tmp_path)


def test_missing_profile_lists_defined_ones(codex_home, tmp_path):
    write_config(codex_home, "[profiles.a]\nmodel='x'\n[profiles.b]\nmodel='y'\n")
    with pytest.raises(ConfigError, match="profile `nope` not found.*defined profiles: a, b"):
        load_config(ConfigOverrides(profile="nope"), cwd=tmp_path)


def test_unknown_keys_warn_and_strict_makes_them_errors(codex_home, tmp_path):
    write_config(codex_home, 'modle = "o3"\n[history]\npersistance = "none"\n')
    cfg = load_config(cwd=tmp_path)
    assert any("`modle`" in w for w in cfg.warnings)
    assert any("history.persistance" in w for w in cfg.warnings)
    with pytest.raises(ConfigError, match="modle.*strict-config"):
        load_config(strict=True, cwd=tmp_path)


def test_unknown_provider_is_an_error(codex_home, tmp_path):
    write_config(codex_home, 'model_provider = "mine"\n')
    with pytest.raises(ConfigError, match="model provider `mine` not found"):
        load_config(cwd=tmp_path)


def test_user_provider_needs_base_url_and_valid_wire_api(codex_home, tmp_path):
    write_config(codex_home, '[model_providers.x]\nname = "X"\n')
    with pytest.raises(ConfigError, match="model_providers.x.base_url"):
        load_config(cwd=tmp_path)
    write_config(codex_home, '[model_providers.x]\nbase_url = "http://h/v1"\nwire_api = "grpc"\n')
    with pytest.raises(ConfigError, match="wire_api.*responses, chat"):
        load_config(cwd=tmp_path)


def test_builtin_providers_and_env_overrides(codex_home, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("CODEX_OSS_PORT", "12345")
    cfg = load_config(cwd=tmp_path)
    assert cfg.providers["openai"].base_url == "http://127.0.0.1:9/v1"
    assert cfg.providers["oss"].base_url == "http://localhost:12345/v1"
    assert cfg.providers["ollama"].wire_api == "chat"
    cfg = load_config(ConfigOverrides(oss=True), cwd=tmp_path)
    assert cfg.provider.id == "oss" and cfg.model == "gpt-oss:20b"


def test_overriding_a_builtin_provider_updates_its_fields(codex_home, tmp_path):
    # upstream silently ignored [model_providers.openai]; we apply it
    write_config(codex_home, '[model_providers.openai]\nbase_url = "http://127.0.0.1:1/v1"\n')
    cfg = load_config(cwd=tmp_path)
    assert cfg.provider.base_url == "http://127.0.0.1:1/v1"
    assert cfg.provider.wire_api == "responses" and cfg.provider.env_key == "OPENAI_API_KEY"


def test_provider_headers_and_auth(codex_home, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_ORGANIZATION", "org-1")
    monkeypatch.delenv("OPENAI_PROJECT", raising=False)
    cfg = load_config(cwd=tmp_path)
    with pytest.raises(codex.AuthError, match="OPENAI_API_KEY"):
        cfg.provider.headers(codex_home)
    codex.write_auth(codex_home, {"OPENAI_API_KEY": "sk-from-auth-json"})
    headers = cfg.provider.headers(codex_home)
    assert headers["Authorization"] == "Bearer sk-from-auth-json"
    assert headers["OpenAI-Organization"] == "org-1" and "OpenAI-Project" not in headers
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    assert cfg.provider.headers(codex_home)["Authorization"] == "Bearer sk-from-env"
    # a provider without env_key sends no Authorization at all
    assert "Authorization" not in cfg.providers["ollama"].headers(codex_home)


def test_legacy_sandbox_permissions_and_approval_alias(codex_home, tmp_path):
    write_config(codex_home, 'approval_policy = "unless-allow-listed"\n'
                 'sandbox_permissions = ["disk-full-read-access", "disk-write-folder=/tmp/x"]\n')
    cfg = load_config(cwd=tmp_path)
    assert cfg.approval_policy == "untrusted"
    assert cfg.sandbox_permissions == ["disk-full-read-access", "disk-write-folder=/tmp/x"]
    write_config(codex_home, 'sandbox_permissions = ["disk-write-everything"]\n')
    with pytest.raises(ConfigError, match="sandbox_permissions.*disk-write-everything"):
        load_config(cwd=tmp_path)


def test_dangerous_bypass_sets_never_and_full_access(codex_home, tmp_path):
    cfg = load_config(ConfigOverrides(dangerously_bypass=True), cwd=tmp_path)
    assert (cfg.approval_policy, cfg.sandbox_mode) == ("never", "danger-full-access")


def test_codex_home_must_exist_when_set(tmp_path, monkeypatch):
    monkeypatch.setenv("CODEX_HOME", str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="CODEX_HOME=.*missing.*does not exist"):
        codex.codex_home()
    monkeypatch.delenv("CODEX_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert codex.codex_home() == tmp_path / ".codex"


def test_instructions_file(codex_home, tmp_path):
    (tmp_path / "prompt.md").write_text("You are terse.")
    write_config(codex_home, 'experimental_instructions_file = "prompt.md"\n')
    assert load_config(cwd=tmp_path).base_instructions == "You are terse."
    (tmp_path / "prompt.md").write_text("  \n")
    with pytest.raises(ConfigError, match="is empty"):
        load_config(cwd=tmp_path)


def test_unusable_mcp_servers_are_skipped_with_one_warning_each(codex_home, tmp_path):
    write_config(codex_home, """
[mcp_servers.nothing]
args = []
[mcp_servers.badurl]
url = "ftp://example.com/mcp"
[mcp_servers.sse]
url = "http://127.0.0.1:9/sse"
transport = "sse"
[mcp_servers.both]
command = "x"
url = "http://127.0.0.1:9/mcp"
[mcp_servers.inline]
url = "http://127.0.0.1:9/mcp"
bearer_token = "secret-in-file"
[mcp_servers.badtype]
command = "x"
args = "not a list"
[mcp_servers.good]
command = "x"
[mcp_servers.remote]
url = "https://mcp.example.com/mcp"
bearer_token_env_var = "TOKEN_VAR"
http_headers = { X-Team = "a" }
env_http_headers = { X-From-Env = "FROM_ENV" }
enabled_tools = ["a"]
disabled_tools = ["b"]
""")
    cfg = load_config(cwd=tmp_path)
    assert sorted(cfg.mcp_servers) == ["good", "remote"]
    assert cfg.mcp_servers["good"]["transport"] == "stdio"
    remote = cfg.mcp_servers["remote"]
    assert (remote["transport"], remote["bearer_token_env_var"], remote["enabled_tools"]) == ("streamable_http", "TOKEN_VAR", ["a"])
    skipped = [w for w in cfg.warnings if "skipped" in w]
    for name in ("nothing", "badurl", "sse", "both", "inline", "badtype"):
        assert len([w for w in skipped if "server `%s` skipped" % name in w]) == 1, (name, skipped)
    assert len(skipped) == 6
    assert not any("secret-in-file" in w for w in cfg.warnings)
    assert any("bearer_token_env_var" in w and "inline" in w for w in skipped)
    assert any("needs `command`" in w and "`mcp_servers.nothing`" in w for w in skipped)


def test_unusable_mcp_server_does_not_break_the_command(run_codex, codex_home, tmp_path):
    write_config(codex_home, '[mcp_servers.remote]\nurl = "not a url"\n')
    proc = run_codex("mcp", "list", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("mcp_servers.remote") == 1 and "skipped" in proc.stderr


def test_bad_value_is_reported_even_when_a_flag_overrides_it(codex_home, tmp_path):
    write_config(codex_home, 'approval_policy = "sometimes"\n')
    with pytest.raises(ConfigError, match="config.toml: `approval_policy` = 'sometimes'"):
        load_config(ConfigOverrides(approval_policy="never"), cwd=tmp_path)


def test_bad_value_in_a_profile_names_the_profile(codex_home, tmp_path):
    write_config(codex_home, '[profiles.p]\nmodel_reasoning_effort = "max"\n')
    with pytest.raises(ConfigError, match=r"\[profiles.p\]: `model_reasoning_effort` = 'max'"):
        load_config(ConfigOverrides(profile="p"), cwd=tmp_path)


def test_cli_reports_config_errors_in_one_line(run_codex, codex_home, tmp_path):
    write_config(codex_home, 'approval_policy = "sometimes"\n')
    for argv in (["exec", "hi", "--skip-git-repo-check"], ["-c", "sandbox_mode=open", "exec", "hi"]):
        if "sandbox_mode=open" in argv:
            write_config(codex_home, "")
        proc = run_codex(*argv, cwd=tmp_path)
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in proc.stderr
        assert ("approval_policy" in lines[0]) or ("-c: `sandbox_mode` = 'open'" in lines[0])


def test_unknown_dash_c_key_names_the_closest_known_one(run_codex, codex_home, tmp_path):
    proc = run_codex("-c", "model_reasoning_efort=high", "-c", "sandbox_workspace_write.network_acces=true",
                     "-c", "zzz_nothing_like_it=1", "login", "status", cwd=tmp_path)
    lines = [l for l in proc.stderr.splitlines() if "unknown key" in l]
    assert sorted(lines) == [
        "codex: warning: -c: unknown key `model_reasoning_efort` (ignored); did you mean `model_reasoning_effort`?",
        "codex: warning: -c: unknown key `sandbox_workspace_write.network_acces` (ignored); "
        "did you mean `sandbox_workspace_write.network_access`?",
        "codex: warning: -c: unknown key `zzz_nothing_like_it` (ignored)",
    ], proc.stderr
    (codex_home / "config.toml").write_text('modle = "o3"\n')
    proc = run_codex("login", "status", cwd=tmp_path)
    assert "unknown key `modle` (ignored); did you mean `model`?" in proc.stderr
