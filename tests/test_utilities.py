"""§02 Small utilities: redaction, private files, terminal-safe text."""
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import codex
from support.agent_env import MOCK_KEY_ENV, mock_cli_args
from support.model_server import ModelServer, Turn

REPO = Path(__file__).resolve().parent.parent


def test_redact_hides_keys_and_tokens():
    text = codex.redact("Authorization: Bearer sk-abc123456789 and api_key=xyz987654 and sk-proj-AAAAAAAAAAAA")
    assert "sk-abc" not in text and "xyz987654" not in text and "sk-proj-AAAA" not in text
    assert codex.redact_headers({"Authorization": "Bearer x", "X-Api-Key": "k", "Accept": "a"}) == {
        "Authorization": "***", "X-Api-Key": "***", "Accept": "a"}


def test_write_private_file_is_0600_and_atomic(tmp_path):
    path = tmp_path / "d" / "f.json"
    codex.write_private_file(path, "one")
    codex.write_private_file(path, b"two")
    assert path.read_text() == "two" and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["f.json"]


def test_terminal_safe_keeps_colour_and_defuses_the_rest():
    safe = codex.terminal_safe
    assert safe("plain\ttext\n") == "plain\ttext\n"
    assert safe("\x1b[31mred\x1b[0m") == "\x1b[31mred\x1b[0m"
    out = safe("a\x1b]52;c;ZXZpbA==\x07b\x1b[2Jc\x1bcd\x08\x00\u202eevil")
    assert "\x1b" not in out and "\x07" not in out and "\x08" not in out and "\u202e" not in out
    assert out.startswith("a\\x1b]52;c;ZXZpbA==\\x07b\\x1b[2Jc")
    assert safe("10%\r20%\r\nok") == "10%\n20%\r\nok"
    assert safe({"k": ["\x1b]0;t\x07"], "n": 1}) == {"k": ["\\x1b]0;t\\x07"], "n": 1}


def test_exec_output_cannot_drive_the_terminal(tmp_path, codex_home):
    """Model text and command output with escape sequences reach the terminal defused."""
    with ModelServer() as server:
        server.enqueue(
            Turn().function_call("shell", {"command": ["printf", "\\033]0;owned\\007\\033[31mred\\033[0m\\n"]},
                                 call_id="c1"),
            Turn().text("done \x1b]52;c;ZXZpbA==\x07 \x1b[2J"),
        )
        env = dict(os.environ, CODEX_HOME=str(codex_home), **{MOCK_KEY_ENV: "k"})
        proc = subprocess.run(
            [sys.executable, str(REPO / "codex.py"), "exec", "--skip-git-repo-check", "--color", "always",
             "-s", "danger-full-access", "-C", str(tmp_path)] + mock_cli_args(server) + ["go"],
            capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    stray = [m.group() for m in re.finditer(r"\x1b(?!\[[0-9;]*m)", proc.stderr)]
    assert stray == [], proc.stderr
    assert "\\x1b]0;owned" in proc.stderr and "\\x1b]52;c;" in proc.stderr
    assert "\x1b[31mred" in proc.stderr


def test_directories_codex_creates_are_private(tmp_path):
    home = tmp_path / "home" / ".codex"
    codex.write_private_file(home / "sessions" / "2026" / "11" / "21" / "rollout.jsonl", "{}\n")
    for d in (tmp_path / "home", home, home / "sessions", home / "sessions" / "2026" / "11" / "21"):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700, d
    with codex.open_private_append(home / "log" / "x.log") as fh:
        fh.write(b"x")
    assert stat.S_IMODE((home / "log").stat().st_mode) == 0o700


def test_git_info_matches_git_itself(tmp_path):
    """_git_info reads .git files instead of running git: it must give git's own answers."""
    import shutil
    import subprocess

    if shutil.which("git") is None:
        pytest.skip("git not installed")

    def git(*args, cwd):
        return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@e", "-c", "init.defaultBranch=main"]
                              + list(args), cwd=str(cwd), capture_output=True, text=True, check=True).stdout.strip()

    def truth(cwd):
        return {"commit_hash": git("rev-parse", "HEAD", cwd=cwd), "branch": git("rev-parse", "--abbrev-ref", "HEAD", cwd=cwd),
                "repository_url": git("config", "--get", "remote.origin.url", cwd=cwd)}

    repo = tmp_path / "repo"
    repo.mkdir()
    assert codex._git_info(repo) is None
    git("init", "-q", cwd=repo)
    assert codex._git_info(repo) is None  # no commit yet, no remote
    git("commit", "-q", "--allow-empty", "-m", "one", cwd=repo)
    git("remote", "add", "origin", "https://example.com/a b.git", cwd=repo)
    (repo / "sub").mkdir()
    assert codex._git_info(repo / "sub") == truth(repo)
    git("checkout", "-q", "-b", "feature/x", cwd=repo)
    git("pack-refs", "--all", cwd=repo)  # refs only in packed-refs now
    assert codex._git_info(repo) == truth(repo)
    git("checkout", "-q", "--detach", cwd=repo)
    assert codex._git_info(repo) == truth(repo) and truth(repo)["branch"] == "HEAD"
    git("checkout", "-q", "main", cwd=repo)
    git("worktree", "add", "-q", "-b", "wt", str(tmp_path / "wt"), cwd=repo)  # .git is a gitdir: file
    git("commit", "-q", "--allow-empty", "-m", "two", cwd=tmp_path / "wt")
    assert codex._git_info(tmp_path / "wt") == truth(tmp_path / "wt")
    assert codex._git_info(tmp_path / "wt")["commit_hash"] != codex._git_info(repo)["commit_hash"]
