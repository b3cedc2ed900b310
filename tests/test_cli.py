"""§22 CLI: parsing, precedence of flags, errors, login/logout, logging, the module map."""
import ast
import json
import os
import re
import stat
import subprocess
import sys

import pytest

import codex
from conftest import codex_source, codex_tree

REPO = codex.Path(codex.__file__).resolve().parent


def test_version_and_help(run_codex):
    proc = run_codex("--version")
    assert proc.returncode == 0 and proc.stdout == "codex %s\n" % codex.__version__
    proc = run_codex("--help")
    assert proc.returncode == 0
    for word in ("exec", "mcp", "proto", "proxy", "completion", "debug", "login", "logout",
                 "--full-auto", "--dangerously-bypass-approvals-and-sandbox", "--skip-git-repo-check",
                 "-C DIR", "--oss", "--image", "--profile", "--sandbox", "--ask-for-approval"):
        assert word in proc.stdout, word


def test_prompt_and_subcommands_are_told_apart():
    args = codex._parse_args(["-m", "o3", "fix the tests"])
    assert args.command is None and args.prompt == "fix the tests" and args.model == "o3"
    args = codex._parse_args(["-m", "o3", "exec", "--json", "do it"])
    assert args.command == "exec" and args.prompt == "do it" and args.json and args.model == "o3"
    args = codex._parse_args(["e", "-s", "workspace-write", "x"])
    assert args.command == "exec" and args.sandbox_mode == "workspace-write"
    args = codex._parse_args(["-c", "a=1", "exec", "-c", "b=2", "x"])
    assert args.config_overrides == ["a=1", "b=2"]
    args = codex._parse_args(["-i", "a.png,b.png", "-i", "c.png", "look"])
    assert args.images == ["a.png", "b.png", "c.png"]
    args = codex._parse_args(["--", "-starts-with-dash"])
    assert args.prompt == "-starts-with-dash"


def test_flags_beat_c_and_full_auto(codex_home, tmp_path):
    args = codex._parse_args(["--full-auto", "-c", "model=o3", "-m", "gpt-5", "-C", str(tmp_path), "hi"])
    cfg = codex.config_loader_for(args)()
    assert (cfg.sandbox_mode, cfg.approval_policy, cfg.model) == ("workspace-write", "on-failure", "gpt-5")
    assert cfg.cwd == tmp_path.resolve()
    assert cfg.sources["sandbox_mode"] == "flag"


@pytest.mark.parametrize("argv", [
    ["--dangerously-bypass-approvals-and-sandbox", "--full-auto"],
    ["--yolo", "-a", "never"],
])
def test_bypass_conflicts(run_codex, argv):
    proc = run_codex(*argv)
    assert proc.returncode == 2 and "cannot be combined" in proc.stderr and "Traceback" not in proc.stderr


def test_bad_flag_values_exit_2(run_codex):
    proc = run_codex("-s", "everything")
    assert proc.returncode == 2 and "invalid choice" in proc.stderr
    proc = run_codex("-c", "novalue", "login", "status")
    assert proc.returncode == 2 and "invalid -c override 'novalue'" in proc.stderr


def test_missing_cd_directory(run_codex, tmp_path):
    args = codex._parse_args(["-C", str(tmp_path / "nope"), "hi"])
    with pytest.raises(codex.ConfigError, match="does not exist.*-C/--cd"):
        codex.config_loader_for(args)()


def test_tracebacks_only_when_debugging(run_codex, codex_home):
    (codex_home / "auth.json").write_text("{not json")
    proc = run_codex("login", "status")
    assert proc.returncode == 1 and "auth.json is not valid JSON" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    proc = run_codex("login", "status", env={"CODEX_DEBUG": "1"})
    assert "Traceback" in proc.stderr


def test_login_status_logout_roundtrip(run_codex, codex_home):
    assert run_codex("login", "status").stdout.strip() == "Not logged in"
    proc = run_codex("login", "--api-key", "sk-test-1234567890abcdef")
    assert proc.returncode == 0 and "Successfully logged in" in proc.stdout
    path = codex_home / "auth.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {"OPENAI_API_KEY": "sk-test-1234567890abcdef"}
    proc = run_codex("login", "status")
    assert proc.returncode == 0 and proc.stdout.strip() == "Logged in using an API key - sk-test-***bcdef"
    proc = run_codex("login", "--with-api-key", input="sk-from-stdin-000000000\n")
    assert proc.returncode == 0
    assert json.loads(path.read_text())["OPENAI_API_KEY"] == "sk-from-stdin-000000000"
    proc = run_codex("logout")
    assert proc.returncode == 0 and "Successfully logged out" in proc.stdout and not path.exists()
    assert run_codex("logout").stdout.strip() == "Not logged in"


def test_login_keeps_other_auth_fields(run_codex, codex_home):
    (codex_home / "auth.json").write_text(json.dumps({"tokens": {"access_token": "x"}, "last_refresh": "t"}))
    run_codex("login", "--api-key", "sk-abcdefghijklmnop")
    data = json.loads((codex_home / "auth.json").read_text())
    assert data["tokens"] == {"access_token": "x"} and data["OPENAI_API_KEY"] == "sk-abcdefghijklmnop"


def test_login_rejects_empty_key(run_codex):
    proc = run_codex("login", "--with-api-key", input="\n")
    assert proc.returncode == 2 and "empty" in proc.stderr


def test_api_key_from_auth_json_when_env_unset(codex_home, tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    codex.write_auth(codex_home, {"OPENAI_API_KEY": "sk-stored"})
    cfg = codex.load_config(cwd=tmp_path)
    assert cfg.provider.api_key(codex_home) == "sk-stored"


def test_logging_goes_to_codex_home_log_0600_without_secrets(codex_home):
    env = dict(os.environ, CODEX_HOME=str(codex_home), CODEX_LOG="debug")
    code = (
        "import codex; lg = codex.setup_logging(codex.codex_home());"
        "codex.log('info', 'request headers %s', codex.redact_headers({'Authorization': 'Bearer sk-secretsecret'}));"
        "codex.log('debug', 'body api_key=sk-abcdefghijkl and Bearer abcdefghijklmnop')"
    )
    subprocess.run([sys.executable, "-c", code], env=env, cwd=str(REPO), check=True, timeout=30)
    path = codex_home / "log" / "codex.log"
    text = path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "request headers" in text and "body" in text
    assert "sk-secret" not in text and "sk-abcdefghijkl" not in text and "abcdefghijklmnop" not in text


def test_rust_log_is_honoured_and_level_filters(codex_home):
    env = dict(os.environ, CODEX_HOME=str(codex_home), RUST_LOG="codex_core=info")
    env.pop("CODEX_LOG", None)
    code = "import codex; codex.setup_logging(codex.codex_home()); codex.log('info','seen'); codex.log('debug','hidden')"
    subprocess.run([sys.executable, "-c", code], env=env, cwd=str(REPO), check=True, timeout=30)
    text = (codex_home / "log" / "codex.log").read_text()
    assert "seen" in text and "hidden" not in text


def test_no_log_file_without_codex_log(codex_home):
    env = dict(os.environ, CODEX_HOME=str(codex_home))
    env.pop("CODEX_LOG", None)
    env.pop("RUST_LOG", None)
    code = "import codex; codex.setup_logging(codex.codex_home()); codex.log('error','x')"
    subprocess.run([sys.executable, "-c", code], env=env, cwd=str(REPO), check=True, timeout=30)
    assert not (codex_home / "log").exists()


def test_importing_codex_has_no_side_effects(tmp_path):
    env = dict(os.environ, HOME=str(tmp_path), CODEX_HOME="")
    code = "import sys, codex; heavy = {'httpx','rich','prompt_toolkit','asyncio','ssl'} & set(sys.modules); print(sorted(heavy))"
    proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=str(REPO), capture_output=True, text=True, timeout=30)
    assert proc.stdout.strip() == "[]", proc.stdout + proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_module_map_matches_section_banners():
    src = codex_source()
    doc = ast.get_docstring(codex_tree())
    toc = [(n, t.strip()) for n, t in re.findall(r"§(\d+[a-z]?) ([^\n]+)", doc.split("Contents", 1)[1])]
    banners = [(n, t.strip()) for n, t in re.findall(r"^# §(\d+[a-z]?) ([^\n]+)$", src, re.M)]
    assert toc == banners
    assert [n for n, _ in banners] == sorted(n for n, _ in banners)


def test_every_public_function_and_class_has_a_docstring():
    tree = codex_tree()
    missing = [
        node.name for node in tree.body
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_")
        and not ast.get_docstring(node)
    ]
    assert missing == []


def test_no_top_level_name_is_defined_twice():
    """One module, many authors: a second definition would silently replace the first."""
    import collections

    tree = codex_tree()
    seen = collections.Counter()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            seen[node.name] += 1
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    seen[target.id] += 1
    allowed = {"_LOGGER"}
    assert [name for name, n in seen.items() if n > 1 and name not in allowed] == []
