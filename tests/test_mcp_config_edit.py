"""`codex mcp add|get|remove`: config.toml edited in place (comments, order, formatting kept),
atomically and 0600, never a file that does not parse; real processes, real files."""
import json
import os
import stat
import sys

import pytest

import codex

pytestmark = pytest.mark.timeout(120)

ORIGINAL = '''# my codex config -- hand written
model = "o3"   # the model I like

# --- providers ---
[model_providers.corp]
name = "Corp"
base_url = "https://llm.corp.example/v1"   # via the gateway
wire_api = "chat"

# the notes server, keep it first
[mcp_servers.notes]
command = "npx"
args = [
  "-y",
  "[mcp_servers.fake]",   # not a header: inside an array
]
description = """
[mcp_servers.also_fake]
"""

# its environment
[mcp_servers.notes.env]
NOTES_DIR = "/home/me/notes"

# trailing remark about history
[history]
persistence = "none"
'''


def read(home):
    return (home / "config.toml").read_text()


def parse(home):
    return codex.parse_toml(read(home), "config.toml")


def test_add_appends_tables_and_keeps_every_other_byte(run_codex, codex_home):
    (codex_home / "config.toml").write_text(ORIGINAL)
    os.chmod(codex_home / "config.toml", 0o644)
    out = run_codex("mcp", "add", "fs", "--env", "LOG=warn", "--env", "EQ=a=b", "--",
                    "npx", "-y", "@modelcontextprotocol/server-filesystem", "--flag", "/tmp/a b")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "Added MCP server `fs` to %s." % (codex_home / "config.toml")
    out = run_codex("mcp", "add", "wiki", "--url", "https://wiki.corp.example/mcp", "--bearer-token-env-var", "WIKI_TOKEN",
                    env={"WIKI_TOKEN": ""})
    assert out.returncode == 0, out.stderr
    assert "Set WIKI_TOKEN" in out.stdout
    text = read(codex_home)
    assert text.startswith(ORIGINAL)  # nothing before was touched
    assert text[len(ORIGINAL):] == (
        '\n[mcp_servers.fs]\ncommand = "npx"\nargs = ["-y", "@modelcontextprotocol/server-filesystem", "--flag", "/tmp/a b"]\n'
        'env = { LOG = "warn", EQ = "a=b" }\n'
        '\n[mcp_servers.wiki]\nurl = "https://wiki.corp.example/mcp"\nbearer_token_env_var = "WIKI_TOKEN"\n')
    tree = parse(codex_home)
    assert tree["mcp_servers"]["fs"]["args"][-1] == "/tmp/a b"
    assert tree["mcp_servers"]["notes"]["env"] == {"NOTES_DIR": "/home/me/notes"}
    assert stat.S_IMODE((codex_home / "config.toml").stat().st_mode) == 0o600
    assert not [p for p in codex_home.iterdir() if p.name.startswith(".config.toml")]  # no temp file left
    # the config as codex loads it
    cfg = codex.load_config(home=codex_home, cwd=codex_home)
    assert cfg.mcp_servers["wiki"]["transport"] == "streamable_http"
    assert cfg.mcp_servers["fs"]["env"] == {"LOG": "warn", "EQ": "a=b"}


def test_remove_takes_the_table_its_subtables_and_its_comment_only(run_codex, codex_home):
    (codex_home / "config.toml").write_text(ORIGINAL)
    out = run_codex("mcp", "remove", "notes")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "Removed MCP server `notes` from %s." % (codex_home / "config.toml")
    text = read(codex_home)
    head = ORIGINAL[:ORIGINAL.index("# the notes server")]
    tail = ORIGINAL[ORIGINAL.index("# trailing remark"):]
    assert text == head + tail
    assert "mcp_servers" not in parse(codex_home)
    out = run_codex("mcp", "remove", "notes")
    assert out.returncode == 1 and "no MCP server named `notes`" in out.stderr
    assert read(codex_home) == head + tail


def test_add_over_an_existing_server_replaces_it_where_it_was(run_codex, codex_home):
    (codex_home / "config.toml").write_text(ORIGINAL)
    out = run_codex("mcp", "add", "notes", "--url", "http://127.0.0.1:8123/mcp")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("Replaced MCP server `notes`")
    text = read(codex_home)
    head = ORIGINAL[:ORIGINAL.index("# the notes server")]
    tail = ORIGINAL[ORIGINAL.index("# trailing remark"):]
    assert text == head + '[mcp_servers.notes]\nurl = "http://127.0.0.1:8123/mcp"\n\n' + tail
    assert parse(codex_home)["mcp_servers"] == {"notes": {"url": "http://127.0.0.1:8123/mcp"}}


def test_get_text_and_json(run_codex, codex_home):
    (codex_home / "config.toml").write_text(ORIGINAL + '\n[mcp_servers.wiki]\nurl = "https://w/mcp"\n'
                                            'http_headers = { X-Api-Key = "secret-value-1" }\n'
                                            'env_http_headers = { X-Tenant = "TENANT_VAR" }\nenabled_tools = ["search"]\n')
    out = run_codex("mcp", "get", "notes")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "notes" and "  transport: stdio" in lines and "  command: npx" in lines
    assert "  env: NOTES_DIR=***" in lines and "/home/me/notes" not in out.stdout
    assert lines[-1] == "  remove: codex mcp remove notes"
    out = run_codex("mcp", "get", "wiki")
    assert "  transport: streamable_http" in out.stdout and "secret-value-1" not in out.stdout
    assert "  env_http_headers: X-Tenant=TENANT_VAR" in out.stdout and "  enabled_tools: search" in out.stdout
    js = json.loads(run_codex("mcp", "get", "wiki", "--json").stdout)
    assert js["transport"] == {"type": "streamable_http", "url": "https://w/mcp", "bearer_token_env_var": None,
                               "http_headers": {"X-Api-Key": "secret-value-1"}, "env_http_headers": {"X-Tenant": "TENANT_VAR"}}
    assert js["enabled_tools"] == ["search"] and js["problem"] is None
    out = run_codex("mcp", "get", "nosuch")
    assert out.returncode == 1 and "configured: notes, wiki" in out.stderr


def test_refuses_files_it_cannot_parse_or_rewrite(run_codex, codex_home):
    broken = ORIGINAL + "\n[mcp_servers.x\ncommand = 1\n"
    (codex_home / "config.toml").write_text(broken)
    for argv in (("mcp", "add", "y", "--", "cmd"), ("mcp", "remove", "notes")):
        out = run_codex(*argv)
        assert out.returncode == 2 and "does not parse" in out.stderr and "Traceback" not in out.stderr
        assert len(out.stderr.strip().splitlines()) == 1
        assert read(codex_home) == broken
    inline = '[mcp_servers]\nfs = { command = "x" }  # inline\n'
    (codex_home / "config.toml").write_text(inline)
    out = run_codex("mcp", "remove", "fs")
    assert out.returncode == 2 and "edit it by hand" in out.stderr
    assert read(codex_home) == inline
    dotted = 'mcp_servers.fs.command = "x"\n'
    (codex_home / "config.toml").write_text(dotted)
    out = run_codex("mcp", "add", "fs", "--", "y")
    assert out.returncode == 2 and "edit it by hand" in out.stderr
    assert read(codex_home) == dotted


def test_bad_usage_is_one_line(run_codex, codex_home):
    for argv, words in ((("mcp", "add", "x"), "either"), (("mcp", "add", "x", "--url", "ftp://h"), "http"),
                        (("mcp", "add", "bad name", "--", "x"), "invalid MCP server name"),
                        (("mcp", "add", "x", "--env", "NOEQUALS", "--", "cmd"), "KEY=VALUE"),
                        (("mcp", "add", "x", "--url", "http://h/mcp", "--env", "A=1"), "--env"),
                        (("mcp", "add", "x", "--bearer-token-env-var", "T", "--", "cmd"), "--url")):
        out = run_codex(*argv)
        assert out.returncode == 2, (argv, out.stderr)
        assert words in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert not (codex_home / "config.toml").exists()


def test_global_options_before_mcp_add_and_prompts_with_dashes(run_codex, codex_home):
    out = run_codex("-c", "model=o3", "mcp", "add", "x", "--", "cmd", "-c", "add")
    assert out.returncode == 0, out.stderr
    assert parse(codex_home)["mcp_servers"]["x"] == {"command": "cmd", "args": ["-c", "add"]}


def test_edits_go_through_a_symlink_and_create_a_missing_file(run_codex, codex_home, tmp_path):
    out = run_codex("mcp", "add", "first", "--", "cmd")
    assert out.returncode == 0, out.stderr
    assert read(codex_home) == '[mcp_servers.first]\ncommand = "cmd"\n'
    dotfiles = tmp_path / "dotfiles"
    dotfiles.mkdir()
    target = dotfiles / "codex.toml"
    target.write_text("# managed by my dotfiles\n")
    (codex_home / "config.toml").unlink()
    (codex_home / "config.toml").symlink_to(target)
    assert run_codex("mcp", "add", "s", "--", sys.executable).returncode == 0
    assert (codex_home / "config.toml").is_symlink()
    assert target.read_text() == '# managed by my dotfiles\n\n[mcp_servers.s]\ncommand = %s\n' % json.dumps(sys.executable)
    assert run_codex("mcp", "remove", "s").returncode == 0
    assert target.read_text() == "# managed by my dotfiles\n"


def test_quoted_names_and_values_round_trip(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[mcp_servers."odd-name"]  # quoted header\ncommand = "a"\n\n[other]\nx = 1\n')
    assert codex.edit_config_table(path, ["mcp_servers", "odd-name"], None) is True
    assert path.read_text() == "[other]\nx = 1\n"
    value = 'quote " backslash \\ tab \t newline \n del \x7f unicode é'
    codex.edit_config_table(path, ["mcp_servers", "v"], ["command = %s" % codex.toml_value(value)])
    assert codex.parse_toml(path.read_text(), "x")["mcp_servers"]["v"]["command"] == value
