"""§11 Safety: the known-safe list, the approval table, patch decisions."""
import os
from pathlib import Path

import pytest

import codex


def cfg_for(tmp_path, approval="on-request", sandbox="workspace-write", **ww):
    """A real Config for a workspace under tmp_path."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    ws = tmp_path / "ws"
    ws.mkdir(exist_ok=True)
    over = ["sandbox_workspace_write.%s=%s" % (k, str(v).lower() if isinstance(v, bool) else v) for k, v in ww.items()]
    return codex.load_config(codex.ConfigOverrides(approval_policy=approval, sandbox_mode=sandbox, cwd=str(ws)),
                             over, home=home, environ={"HOME": str(tmp_path)})


@pytest.mark.parametrize("argv", [
    ["ls"], ["ls", "-la", "/"], ["cat", "x"], ["grep", "-R", "foo", "."], ["head", "-n", "3", "f"], ["wc", "-l"],
    ["pwd"], ["echo", "hi"], ["true"], ["false"], ["nl", "f"], ["which", "git"], ["/bin/ls"], ["/usr/bin/cat", "f"],
    ["find", ".", "-name", "*.py"], ["rg", "foo"], ["rg", "-n", "foo", "src"],
    ["git", "status"], ["git", "log", "-p", "-3"], ["git", "diff", "HEAD~1"], ["git", "show", "HEAD"],
    ["git", "branch"], ["git", "branch", "--show-current"], ["git", "branch", "-a", "-v"],
    ["sed", "-n", "1,5p", "file.txt"], ["sed", "-n", "10p", "f"], ["sed", "-n", "3p"],
    ["bash", "-lc", "ls && pwd; echo 'hi there' | wc -l"], ["bash", "-lc", 'grep -R "Cargo.toml" -n || true'],
    ["bash", "-lc", "sed -n '1,5p' file.txt"], ["bash", "-lc", "echo 123 456"], ["bash", "-c", "git status"],
    ["zsh", "-lc", "ls"], ["base64", "f"],
])
def test_known_safe(argv):
    assert codex.is_known_safe_command(argv)


@pytest.mark.parametrize("argv", [
    [], ["rm", "-rf", "/"], ["./ls"], ["/tmp/ls"], ["bin/cat"], ["python3", "-c", "print(1)"],
    ["find", ".", "-delete"], ["find", ".", "-exec", "rm", "{}", ";"], ["find", ".", "-fprint", "/etc/x"],
    ["find", ".", "-execdir", "x"], ["find", ".", "-okdir", "x"], ["find", ".", "-fls", "x"],
    ["rg", "--pre", "sh", "x"], ["rg", "--pre=sh", "x"], ["rg", "-z", "x"], ["rg", "--search-zip"],
    ["rg", "--hostname-bin=x", "y"],
    ["git", "commit"], ["git", "push"], ["git", "checkout", "."], ["git", "reset", "--hard"],
    ["git", "-c", "core.pager=sh", "log"], ["git", "-C", "/", "status"], ["git", "--config-env=x=y", "log"],
    ["git", "diff", "--output=/etc/passwd"], ["git", "log", "--output", "x"], ["git", "diff", "--ext-diff"],
    ["git", "show", "--textconv"], ["git", "branch", "-D", "main"], ["git", "branch", "newbranch"],
    ["git", "branch", "-m", "a", "b"], ["git"],
    ["sed", "-i", "s/a/b/", "f"], ["sed", "-n", "1p;w /etc/x", "f"], ["sed", "-n", "1,5p", ""], ["sed", "s/a/b/"],
    ["base64", "-o", "out", "f"], ["base64", "--output=x"], ["cargo", "check"], ["uniq", "a", "b"], ["sort", "-o", "x"],
    ["bash", "-lc", "(ls)"], ["bash", "-lc", "ls || (pwd && echo hi)"], ["bash", "-lc", "ls > out.txt"],
    ["bash", "-lc", "echo hi & echo bye"], ["bash", "-lc", "echo $(pwd)"], ["bash", "-lc", "echo `pwd`"],
    ["bash", "-lc", "echo $HOME"], ["bash", "-lc", 'echo "hi $USER"'], ["bash", "-lc", "FOO=bar ls"],
    ["bash", "-lc", "ls &&"], ["bash", "-lc", "ls && rm -rf /"], ["bash", "-lc", "find . -name file.txt -delete"],
    ["bash", "-lc", "git", "status"], ["bash", "-lc", "'git status'"], ["bash", "-lc", ""], ["bash", "-lc", "ls *"],
    ["bash", "-lc", "cat < /etc/passwd"], ["bash", "-lc", "ls\nrm -rf x"], ["bash", "-lc", "ls |& cat"],
    ["bash", "-lc", "ls; ; pwd"], ["bash", "-lc", "echo 'unterminated"], ["bash", "-lc", "echo a\\ b"],
    ["fish", "-c", "ls"], ["bash", "-x", "ls"], ["bash", "-lc", "{ ls; }"], ["bash", "-lc", "ls ~"],
])
def test_not_known_safe(argv):
    assert not codex.is_known_safe_command(argv)


def test_parse_plain_script_words():
    assert codex.parse_plain_script("ls -l && echo 'a b' | wc -l; true") == [
        ["ls", "-l"], ["echo", "a b"], ["wc", "-l"], ["true"]]
    assert codex.parse_plain_script('grep "x y"z f') == [["grep", "x yz", "f"]]
    assert codex.parse_plain_script("") is None
    assert codex.parse_plain_script("| ls") is None


# -- the approval table ---------------------------------------------------------------------

#: (approval, sandbox, escalated) -> decision for a command that is not known-safe
TABLE = [
    ("untrusted", "read-only", False, "ask-user"),
    ("untrusted", "workspace-write", False, "ask-user"),
    ("untrusted", "danger-full-access", False, "ask-user"),
    ("on-failure", "read-only", False, "auto-approve"),
    ("on-failure", "workspace-write", False, "auto-approve"),
    ("on-failure", "danger-full-access", False, "auto-approve"),
    ("never", "read-only", False, "auto-approve"),
    ("never", "danger-full-access", False, "auto-approve"),
    ("on-request", "workspace-write", False, "auto-approve"),
    ("on-request", "workspace-write", True, "ask-user"),
    ("on-request", "danger-full-access", True, "auto-approve"),
]


@pytest.mark.parametrize("approval,sandbox,escalated,want", TABLE)
def test_approval_table(tmp_path, approval, sandbox, escalated, want):
    cfg = cfg_for(tmp_path, approval, sandbox)
    assert codex.assess_command_safety(["python3", "x.py"], cfg, set(), escalated=escalated) == want


@pytest.mark.parametrize("approval", codex.APPROVAL_POLICIES)
def test_known_safe_is_auto_but_still_sandboxed(tmp_path, approval):
    cfg = cfg_for(tmp_path, approval, "workspace-write")
    assert codex.assess_command_safety(["git", "status"], cfg, set()) == "auto-approve"
    decision, sandboxed, _ = codex._command_plan(["git", "status"], cfg, set())
    assert decision == "auto-approve" and sandboxed  # upstream ran it unsandboxed


def test_session_approved_runs_unasked_and_unsandboxed(tmp_path):
    cfg = cfg_for(tmp_path, "untrusted", "read-only")
    argv = ["python3", "x.py"]
    assert codex.assess_command_safety(argv, cfg, {tuple(argv)}) == "auto-approve"
    assert codex._command_plan(argv, cfg, {tuple(argv)})[1] is False
    assert codex.assess_command_safety(argv + ["y"], cfg, {tuple(argv)}) == "ask-user"


def test_no_sandbox_available_never_rejects(tmp_path, monkeypatch):
    cfg = cfg_for(tmp_path, "never", "workspace-write")
    monkeypatch.setattr(codex, "sandbox_available", lambda home=None: False)
    assert codex.assess_command_safety(["python3"], cfg, set()) == "reject"
    assert codex.assess_command_safety(["ls"], cfg, set()) == "reject"
    cfg = cfg_for(tmp_path, "on-failure", "workspace-write")
    assert codex.assess_command_safety(["python3"], cfg, set()) == "ask-user"


# -- apply_patch ----------------------------------------------------------------------------


def test_patch_inside_workspace_auto(tmp_path):
    cfg = cfg_for(tmp_path, "on-request", "workspace-write")
    assert codex.assess_patch_safety([cfg.cwd / "a.py", cfg.cwd / "sub" / "b.py"], cfg) == "auto-approve"


def test_patch_outside_asks_or_rejects(tmp_path):
    outside = tmp_path / "elsewhere" / "x.py"
    for approval, want in (("on-request", "ask-user"), ("on-failure", "ask-user"), ("never", "reject"),
                           ("untrusted", "ask-user")):
        cfg = cfg_for(tmp_path, approval, "workspace-write", exclude_slash_tmp=True, exclude_tmpdir_env_var=True)
        assert codex.assess_patch_safety([cfg.cwd / "ok.py", outside], cfg) == want


def test_patch_untrusted_always_asks(tmp_path):
    cfg = cfg_for(tmp_path, "untrusted", "workspace-write")
    assert codex.assess_patch_safety([cfg.cwd / "a.py"], cfg) == "ask-user"


def test_patch_read_only_and_full_access(tmp_path):
    cfg = cfg_for(tmp_path, "on-request", "read-only")
    assert codex.assess_patch_safety([cfg.cwd / "a.py"], cfg) == "ask-user"
    cfg = cfg_for(tmp_path, "on-request", "danger-full-access")
    assert codex.assess_patch_safety([Path("/etc/x")], cfg) == "auto-approve"


def test_patch_into_git_or_through_symlink_is_not_auto(tmp_path):
    cfg = cfg_for(tmp_path, "on-request", "workspace-write", exclude_slash_tmp=True, exclude_tmpdir_env_var=True)
    (cfg.cwd / ".git" / "hooks").mkdir(parents=True)
    assert codex.assess_patch_safety([cfg.cwd / ".git" / "hooks" / "pre-commit"], cfg) == "ask-user"
    nested = cfg.cwd / "vendor" / "lib" / ".git"
    nested.mkdir(parents=True)
    codex._NESTED_CACHE.clear()
    assert codex.assess_patch_safety([nested / "config"], cfg) == "ask-user"
    (tmp_path / "outside").mkdir()
    os.symlink(str(tmp_path / "outside"), str(cfg.cwd / "link"))
    assert codex.assess_patch_safety([cfg.cwd / "link" / "x"], cfg) == "ask-user"
    assert codex.assess_patch_safety([cfg.cwd / "sub" / ".." / ".." / "x"], cfg) == "ask-user"


def test_presets_match_cli_flags_and_describe(tmp_path):
    """--full-auto and --yolo are the full-auto and full-access presets; describe_policy names them."""
    import codex as c

    args = c._parse_args(["--full-auto"])
    home = tmp_path / "h"
    home.mkdir()
    cfg = c.load_config(c.ConfigOverrides(approval_policy="on-failure", sandbox_mode="workspace-write",
                                          cwd=str(tmp_path)), [], home=home)
    assert args.full_auto
    assert c.APPROVAL_PRESETS["full-auto"][:3] == (cfg.approval_policy, cfg.sandbox_mode, False)
    assert c.describe_policy(cfg) == ("approval_policy=on-failure (flag), sandbox_mode=workspace-write (flag), "
                                      "network=off [preset full-auto]")
    cfg = c.load_config(c.ConfigOverrides(dangerously_bypass=True, cwd=str(tmp_path)), [], home=home)
    assert c.describe_policy(cfg).endswith("network=on [preset full-access]")
    assert set(c.APPROVAL_PRESETS) == {"read-only", "auto", "full-auto", "full-access"}
    doc = (c.Path(c.__file__).parent / "docs" / "sandbox.md").read_text()
    for name in c.APPROVAL_PRESETS:
        assert "`%s`" % name in doc


def test_known_safe_name_planted_in_the_workspace_is_not_safe(tmp_path):
    """`ls` that PATH finds inside the workspace (e.g. node_modules/.bin) gets no known-safe pass."""
    home = tmp_path / "home"
    home.mkdir()
    ws = tmp_path / "ws"
    (ws / "bin").mkdir(parents=True)
    fake = ws / "bin" / "ls"
    fake.write_text("#!/bin/sh\necho planted\n")
    fake.chmod(0o755)
    over = ['shell_environment_policy.set={PATH="%s:/usr/bin:/bin"}' % (ws / "bin")]
    cfg = codex.load_config(codex.ConfigOverrides(approval_policy="untrusted", sandbox_mode="read-only", cwd=str(ws)),
                            over, home=home, environ={"HOME": str(tmp_path)})
    assert codex.is_known_safe_command(["ls"])  # the name alone is safe...
    assert codex.assess_command_safety(["ls"], cfg, set()) == "ask-user"  # ...but this one is planted
    assert codex.assess_command_safety(["bash", "-lc", "pwd && ls"], cfg, set()) == "ask-user"
    assert codex.assess_command_safety(["pwd"], cfg, set()) == "auto-approve"
    cfg = codex.load_config(codex.ConfigOverrides(approval_policy="untrusted", sandbox_mode="read-only", cwd=str(ws)),
                            [], home=home, environ={"HOME": str(tmp_path)})
    assert codex.assess_command_safety(["ls"], cfg, set()) == "auto-approve"
